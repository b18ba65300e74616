"""The OMNIX domain core: entities, events, ports and services. Imports only the standard library
and numeric libraries; everything that talks to the outside world lives in adapters/."""
