"""Fake but plausible names and unique email addresses for demo customers."""

from __future__ import annotations

import unicodedata

import numpy as np

# fmt: off
FIRST_NAMES = (
    "Emma", "Olivia", "Sophie", "Mia", "Amelia", "Isla", "Ava", "Grace", "Lily", "Freya",
    "Chloe", "Ella", "Lucy", "Hannah", "Sara", "Julia", "Lena", "Nora", "Zoe", "Maya",
    "Ines", "Chiara", "Aisha", "Priya", "Mei", "Yuki", "Fatima", "Elif", "Marta", "Anna",
    "Oliver", "George", "Noah", "Arthur", "Leo", "Oscar", "Harry", "Jack", "Thomas", "James",
    "Lucas", "Daniel", "Samuel", "Adam", "Max", "Felix", "Hugo", "Elias", "Jonas", "Luca",
    "Mateo", "Omar", "Yusuf", "Arjun", "Ravi", "Kenji", "Wei", "Tomas", "Pieter", "Sven",
)

LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Hughes", "Edwards", "Turner", "Martin", "Cooper", "Hill",
    "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen",
    "James", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett", "Young",
    "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey", "Collins",
    "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Khan", "Ahmed", "Nguyen", "Kim",
    "Garcia", "Rossi", "Müller", "Schmidt", "Novak", "Kowalski", "Jansen", "de Vries",
    "Dubois", "Lefèvre", "Fernández", "Silva", "Costa", "Andersson", "Nielsen", "O'Brien",
)
# fmt: on

# Reserved for documentation by RFC 2606, so demo addresses can never reach a real inbox.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")


def _ascii_local(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def fake_people(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """``n`` (name, email) pairs; emails are unique and lower case."""
    firsts = rng.integers(0, len(FIRST_NAMES), n)
    lasts = rng.integers(0, len(LAST_NAMES), n)
    styles = rng.integers(0, 4, n)
    domains = rng.integers(0, len(EMAIL_DOMAINS), n)
    taken: set[str] = set()
    people: list[tuple[str, str]] = []
    for i in range(n):
        first, last = FIRST_NAMES[firsts[i]], LAST_NAMES[lasts[i]]
        f, la = _ascii_local(first), _ascii_local(last)
        local = (f"{f}.{la}", f"{f}{la}", f"{f[0]}.{la}", f"{la}.{f}")[styles[i]]
        domain = EMAIL_DOMAINS[domains[i]]
        email, suffix = f"{local}@{domain}", 1
        while email in taken:
            suffix += 1
            email = f"{local}{suffix}@{domain}"
        taken.add(email)
        people.append((f"{first} {last}", email))
    return people
