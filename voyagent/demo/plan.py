"""The demo's made-up world: customers, routes and dates, drawn from one seeded generator so every demo
database looks the same (a bug report about "the demo" can be reproduced)."""

from __future__ import annotations

import datetime as dt
import random

SEED = 2026
FIRST_NAMES = ("Aarav", "Ananya", "Arjun", "Diya", "Farah", "Ishaan", "Kavya", "Leela", "Manav", "Nisha", "Omar",
               "Pooja", "Rahul", "Sara", "Tara", "Uday", "Vivaan", "Zoya", "Nikhil", "Anika", "Dev", "Riya")
LAST_NAMES = ("Sharma", "Patel", "Khan", "Reddy", "Menon", "Gupta", "Bose", "Kapoor", "Joshi", "Pillai", "Chopra",
              "Fernandes", "Banerjee", "Malhotra", "Qureshi", "Saxena", "Verma", "Nair")
ROUTES = (("DEL", "DXB"), ("BOM", "LHR"), ("BLR", "SIN"), ("DEL", "BKK"), ("MAA", "KUL"), ("BOM", "DXB"),
          ("DEL", "CDG"), ("HYD", "DOH"), ("CCU", "BKK"), ("BLR", "FRA"), ("DEL", "JFK"), ("COK", "DXB"))
CITIES = {"DXB": "Dubai", "LHR": "London", "SIN": "Singapore", "BKK": "Bangkok", "KUL": "Kuala Lumpur",
          "CDG": "Paris", "DOH": "Doha", "FRA": "Frankfurt", "JFK": "New York"}
NOTES = ("Prefers morning departures.", "Honeymoon: ask about upgrades.", "Corporate travel, invoice to company.",
         "Vegetarian meals.", "Travelling with an infant.", "Flexible by a day or two.", None, None, None)
STATUSES = ("new", "quoted", "booked", "cancelled")
STATUS_WEIGHTS = (35, 30, 25, 10)


def generator() -> random.Random:
    return random.Random(SEED)


def customer_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def email_of(name: str, rng: random.Random) -> str:
    return f"{name.lower().replace(' ', '.')}{rng.randrange(1, 99)}@mail.example"


def moment_in_past_year(rng: random.Random, now: dt.datetime) -> dt.datetime:
    """A time within the 365 days before ``now``, during office hours (UTC+5:30 09:00–19:00)."""
    day = now.date() - dt.timedelta(days=rng.randrange(0, 365))
    minutes = rng.randrange(3 * 60 + 30, 13 * 60 + 30)  # 09:00–19:00 IST in UTC
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc) + dt.timedelta(minutes=minutes,
                                                                              seconds=rng.randrange(60))
