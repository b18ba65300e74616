"""Driven adapters, each implementing a domain port: embedded defaults and production services."""
