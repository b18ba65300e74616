"""Domain services: the use cases the API, the command line and the workers call."""
