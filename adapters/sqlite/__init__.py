"""The embedded store: one SQLite file holding customers, the catalogue, purchases, idempotency
claims and the event log, used from worker threads so the event loop never blocks on it."""
