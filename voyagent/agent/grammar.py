"""The offline agent's grammar (chat-and-agent.md §8.1–§8.3): one message → one command or an explanation.

The contract fixes which tool the offline agent calls and with which input; the wording of its replies is free,
so an ``Explain`` carries a stable ``reason`` code and a plain English ``text``. Rules are tried in the order of
§8.1 on the trimmed, whitespace-collapsed message; the first match wins.

Time is linear in the message (README "Request validation"; the body allows 10,000 characters): every pattern
below does bounded work per start position, or anchors at the start and backtracks over a bounded tail (rule 3's
lazy name tries the ≤30-character passport group once per extension), except §8.3's city pattern. Run by
Python's ``re``, that lazy ``[A-Za-z' -]*?`` scan restarts at every ``hotel in`` of the message, quadratic
(``"hotel in " * 1111 + "!"`` takes 0.36 s); ``find_city`` computes the same first match in one pass.
``bench/grammar_bench.py`` measures the worst adversarial parse.

``voyagent.agent.offline`` turns a command into its tool call through the gateway and writes the reply text.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import re
from typing import Any, ClassVar

from voyagent.agent.sandbox import normalise_city

MAX_NIGHTS = 30
MAX_NAME = 120
MAX_CITY = 80
PARTY_RANGE = range(1, 10)  # adults / guests 1–9

_I = re.IGNORECASE
_OFFER = r"(?P<id>(?:FLT|HTL)-[0-9A-F]{8})"
_HELP = re.compile(r"(help|\?)", _I)
_ADD_PASSENGER = re.compile(r"add passenger (?P<name>.+?)(?: passport (?P<pp>[A-Za-z0-9]{5,20}))?", _I)
_ADD = re.compile(rf"add {_OFFER}", _I)
_HOLD = re.compile(rf"hold {_OFFER}", _I)
_BOOK = re.compile(rf"book {_OFFER}", _I)
_INVOICE = re.compile(r"(?:issue (?:an? )?)?invoice(?: (?:to|for) (?P<name>.+))?", _I)
_ITINERARY = re.compile(r"(?:show |view )?(?:my |the )?itinerary", _I)
_HOTELS = re.compile(r"\bhotels?\b", _I)
_ROUTE = re.compile(r"\b(?P<o>[A-Z]{3})(?: [Tt][Oo] | ?- ?)(?P<d>[A-Z]{3})\b")  # codes case-sensitive (rule 10)
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_ADULTS = re.compile(r"\b(\d{1,2}) ?(?:adults?|pax|passengers?|travell?ers?|people|persons?)\b", _I)
_PREMIUM = re.compile(r"premium economy", _I)
_BUSINESS = re.compile(r"\bbusiness\b", _I)
_FIRST = re.compile(r"\bfirst class\b", _I)
_NIGHTS = re.compile(r"\bfor (\d{1,2}) nights?\b", _I)
_GUESTS = re.compile(r"\b(\d{1,2}) ?(?:guests?|adults?|people|persons?|pax)\b", _I)

# §8.3's city pattern as published; ``find_city`` is its linear-time equivalent (the tests compare them).
CITY_PATTERN = (r"\bhotels? in (?P<city>[A-Za-z][A-Za-z' -]*?)"
                r"(?=(?: (?:from|on|for|between|check|checking|with)\b)|[,.;]| \d|$)")
_CITY_START = re.compile(r"\bhotels? in ", _I)
_CITY_FIRST = re.compile(r"[A-Za-z]", _I)
_CITY_RUN = re.compile(r"[A-Za-z' -]+", _I)
_CITY_END = re.compile(r"(?=(?: (?:from|on|for|between|check|checking|with)\b)|[,.;]| \d|$)", _I)


# Commands: one per action of §8.1, each with the tool it calls and that tool's input (every property sent,
# defaults filled in, §6.1).

@dataclasses.dataclass(frozen=True, slots=True)
class NoCommand:
    """Rule 1: empty message; the turn only resumes decided approvals."""


@dataclasses.dataclass(frozen=True, slots=True)
class Help:
    """Rule 2 (asked for) or rule 11 (not understood): the help text."""

    asked: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Explain:
    """A recognised command with missing or invalid data: a reply, no tool. ``reason`` is a stable code."""

    reason: str
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class AddPassenger:
    tool: ClassVar[str] = "add_passenger"
    full_name: str
    passport_number: str | None

    def tool_input(self) -> dict[str, Any]:
        return {"full_name": self.full_name, "passport_number": self.passport_number}


@dataclasses.dataclass(frozen=True, slots=True)
class _OfferCommand:
    """Rules 4–6: one offer id, upper-cased."""

    offer_id: str

    def tool_input(self) -> dict[str, Any]:
        return {"offer_id": self.offer_id}


@dataclasses.dataclass(frozen=True, slots=True)
class AddToItinerary(_OfferCommand):
    tool: ClassVar[str] = "add_to_itinerary"


@dataclasses.dataclass(frozen=True, slots=True)
class HoldOffer(_OfferCommand):
    tool: ClassVar[str] = "hold_offer"


@dataclasses.dataclass(frozen=True, slots=True)
class BookOffer(_OfferCommand):
    tool: ClassVar[str] = "book_offer"


@dataclasses.dataclass(frozen=True, slots=True)
class IssueInvoice:
    """Rule 7. The tool input needs the session's data (§9.5): ``offer_ids`` and, when ``customer_name`` is None
    here, the enquiry's or first passenger's name; the runtime completes it with ``tool_input``."""

    tool: ClassVar[str] = "issue_invoice"
    customer_name: str | None

    def tool_input(self, customer_name: str, offer_ids: list[str]) -> dict[str, Any]:
        return {"customer_name": customer_name, "offer_ids": list(offer_ids)}


@dataclasses.dataclass(frozen=True, slots=True)
class GetItinerary:
    tool: ClassVar[str] = "get_itinerary"

    def tool_input(self) -> dict[str, Any]:
        return {}


@dataclasses.dataclass(frozen=True, slots=True)
class SearchFlights:
    tool: ClassVar[str] = "search_flights"
    origin: str
    destination: str
    depart_date: dt.date
    adults: int
    cabin: str

    def tool_input(self) -> dict[str, Any]:
        return {"origin": self.origin, "destination": self.destination, "depart_date": self.depart_date.isoformat(),
                "adults": self.adults, "cabin": self.cabin}


@dataclasses.dataclass(frozen=True, slots=True)
class SearchHotels:
    tool: ClassVar[str] = "search_hotels"
    city: str
    check_in: dt.date
    check_out: dt.date
    guests: int

    def tool_input(self) -> dict[str, Any]:
        return {"city": self.city, "check_in": self.check_in.isoformat(), "check_out": self.check_out.isoformat(),
                "guests": self.guests}


Command = (NoCommand | Help | Explain | AddPassenger | AddToItinerary | HoldOffer | BookOffer | IssueInvoice
           | GetItinerary | SearchFlights | SearchHotels)


def normalise_message(message: str) -> str:
    """``s`` of §8.1: trimmed, each run of whitespace one space."""
    return " ".join(message.split())


def parse(message: str) -> Command:
    """The command of §8.1 for a user message (rules in order, first match wins)."""
    s = normalise_message(message)
    if not s:
        return NoCommand()
    if _HELP.fullmatch(s):
        return Help(asked=True)
    if match := _ADD_PASSENGER.fullmatch(s):
        return _add_passenger(match["name"], match["pp"])
    for pattern, command in ((_ADD, AddToItinerary), (_HOLD, HoldOffer), (_BOOK, BookOffer)):
        if match := pattern.fullmatch(s):
            return command(match["id"].upper())
    if match := _INVOICE.fullmatch(s):
        name = match["name"].strip() if match["name"] is not None else None
        return IssueInvoice(name or None)  # length is the tool schema's check (§8.4: invalid input → tool_result)
    if _ITINERARY.fullmatch(s):
        return GetItinerary()
    if _HOTELS.search(s):
        return _hotel_search(s)
    if match := _ROUTE.search(s):
        return _flight_search(s, match["o"], match["d"])
    return Help(asked=False)


def _add_passenger(name: str, passport: str | None) -> Command:
    if not 1 <= len(name) <= MAX_NAME:
        return Explain("name_length", f"A passenger's name is 1 to {MAX_NAME} characters long.")
    return AddPassenger(name, passport.upper() if passport is not None else None)


def _calendar_date(match: re.Match[str]) -> dt.date | None:
    """The date a ``_DATE`` match names, or None when it is not a real calendar date (2026-02-30)."""
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _party_size(pattern: re.Pattern[str], s: str) -> int:
    match = pattern.search(s)
    return int(match[1]) if match is not None else 1


def _cabin(s: str) -> str:
    if _PREMIUM.search(s):
        return "premium_economy"
    if _BUSINESS.search(s):
        return "business"
    if _FIRST.search(s):
        return "first"
    return "economy"


def _flight_search(s: str, origin: str, destination: str) -> Command:
    """§8.2."""
    if origin == destination:
        return Explain("same_origin_destination", "The origin and the destination must be different airports.")
    date_match = _DATE.search(s)
    if date_match is None:
        return Explain("date_missing", "On which date? Please give it as YYYY-MM-DD.")
    depart_date = _calendar_date(date_match)
    if depart_date is None:
        return Explain("date_invalid", f"{date_match[0]} is not a calendar date.")
    adults = _party_size(_ADULTS, s)
    if adults not in PARTY_RANGE:
        return Explain("adults_out_of_range", "Flights can be searched for 1 to 9 adults.")
    return SearchFlights(origin, destination, depart_date, adults, _cabin(s))


def _hotel_search(s: str) -> Command:
    """§8.3."""
    found = find_city(s)
    if found is None:
        return Explain("city_missing", "In which city? For example: hotels in Dubai from 2026-07-01 for 3 nights.")
    city = normalise_city(found)
    if len(city) > MAX_CITY:
        return Explain("city_too_long", f"A city name is at most {MAX_CITY} characters long.")
    dates = list(_DATE.finditer(s))
    if not dates:
        return Explain("dates_missing", "From which date? Please give it as YYYY-MM-DD.")
    check_in = _calendar_date(dates[0])
    if check_in is None:
        return Explain("check_in_invalid", f"{dates[0][0]} is not a calendar date.")
    if len(dates) > 1:
        check_out = _calendar_date(dates[1])
        if check_out is None:
            return Explain("check_out_invalid", f"{dates[1][0]} is not a calendar date.")
    else:
        nights = _NIGHTS.search(s)
        try:
            check_out = check_in + dt.timedelta(days=int(nights[1]) if nights is not None else 1)
        except OverflowError:  # past year 9999
            return Explain("check_out_invalid", "The stay would end after the last date of the calendar.")
    if check_out <= check_in:
        return Explain("check_out_not_after_check_in", "The check-out date must come after the check-in date.")
    if (check_out - check_in).days > MAX_NIGHTS:
        return Explain("too_many_nights", f"A stay is at most {MAX_NIGHTS} nights.")
    guests = _party_size(_GUESTS, s)
    if guests not in PARTY_RANGE:
        return Explain("guests_out_of_range", "Hotels can be searched for 1 to 9 guests.")
    return SearchHotels(city, check_in, check_out, guests)


def find_city(s: str) -> str | None:
    """The ``city`` group of the first match of CITY_PATTERN in ``s`` (as ``re.search`` finds it), in linear time.

    The lazy group is the shortest ``s[q:e]`` (``e > q``) that starts with a letter, stays within the city
    characters, and is followed by a stop (the lookahead). So: the stop positions and the runs of city
    characters are listed once, and each ``hotels in`` (they cannot overlap) looks up its first stop after
    ``q + 1`` and checks it lies within the run that starts at ``q``. Every pattern here does bounded work per
    position.
    """
    starts = list(_CITY_START.finditer(s))
    if not starts:
        return None
    stops = [m.start() for m in _CITY_END.finditer(s)]  # zero-width: every position where the lookahead holds
    run_ends = [(m.start(), m.end()) for m in _CITY_RUN.finditer(s)]  # maximal runs of city characters
    run_starts = [start for start, _ in run_ends]
    for start in starts:
        q = start.end()
        if not _CITY_FIRST.match(s, q):
            continue
        run = run_ends[bisect.bisect_right(run_starts, q) - 1]  # s[q] is a letter, so a run contains q
        i = bisect.bisect_left(stops, q + 1)
        if i < len(stops) and stops[i] <= run[1]:
            return s[q:stops[i]]
    return None
