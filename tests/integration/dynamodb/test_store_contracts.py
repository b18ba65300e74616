"""The store contracts, run against the DynamoDB stores on moto (fixtures in conftest.py)."""

from tests.contracts.customer_store import *  # noqa: F403
from tests.contracts.product_store import *  # noqa: F403
from tests.contracts.purchase_store import *  # noqa: F403
