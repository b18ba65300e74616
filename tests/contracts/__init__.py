"""Contract tests: one body per port, run against every adapter of it.

Each module holds plain async test functions that take the port's adapter as fixtures. An adapter's
test module imports them (``from tests.contracts.event_log import *``) and defines the fixtures:
the embedded adapters from tests/unit/adapters, the server-backed ones from tests/integration.
"""
