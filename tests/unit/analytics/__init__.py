"""Unit tests of the customer analytics models."""
