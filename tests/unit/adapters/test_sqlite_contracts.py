"""The store and event-log contracts, run against the SQLite adapters (fixtures in conftest.py)."""

from tests.contracts.customer_store import *  # noqa: F403
from tests.contracts.event_log import *  # noqa: F403
from tests.contracts.product_store import *  # noqa: F403
from tests.contracts.purchase_store import *  # noqa: F403
