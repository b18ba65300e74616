"""Deterministic demo data: a grocery catalogue, customers with known habits and a year of their
baskets, plus the seeding that writes them through the store ports."""

from domain.demo.catalogue import CATEGORIES, FAMILIES, build_catalogue
from domain.demo.generator import CustomerHabits, DemoData, StapleHabit, generate
from domain.demo.seeding import SeedReport, seed, write

__all__ = [
    "CATEGORIES",
    "FAMILIES",
    "CustomerHabits",
    "DemoData",
    "SeedReport",
    "StapleHabit",
    "build_catalogue",
    "generate",
    "seed",
    "write",
]
