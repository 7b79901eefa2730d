"""Chat sessions whose turns really run through the offline agent, dated across the demo's year.

Each session starts from an enquiry (promoted the way ``POST /enquiries/{id}/promote-to-session`` does) and
follows one of a few fates: a search that went nowhere, an itinerary left planned, an offer held, a booking and
its invoice, a booking the admin rejected, one whose approval expired, and — for the last few days only — an
approval still waiting for a human. Decisions are taken by the member whose role may take them, through the
same resolution the API uses. The agent's clock is the session's simulated time, so bills, invoices and their
journal entries carry the dates of that time and fall into every aging bucket.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from typing import Any, Awaitable, Callable, Protocol

from voyagent import edge
from voyagent.demo import plan
from voyagent.demo.people import Agency, Member
from voyagent.services import enquiries

FATES = ("search_only", "planned", "held", "booked", "rejected", "expired")
FATE_WEIGHTS = (10, 15, 10, 45, 10, 10)
RECENT_DAYS = 3  # sessions this recent end with an approval still pending
DECISION_DELAY = dt.timedelta(hours=2)
EXPIRY_WAIT = dt.timedelta(days=8)  # longer than the demo's approval lifetime (voyagent.demo.run)


class Agent(Protocol):
    async def say(self, session_id: uuid.UUID, member: Member, message: str, at: dt.datetime) -> list[dict[str, Any]]:
        """Run one turn of ``member`` in the session at simulated time ``at``; the turn's events."""


@dataclasses.dataclass(slots=True)
class Conversation:
    """One session being played: its id, the enquiry it came from, its clock and the events so far."""

    session_id: uuid.UUID
    enquiry: Any
    now: dt.datetime
    agent: Agent
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    async def say(self, member: Member, message: str, *, after: dt.timedelta = dt.timedelta(minutes=3)
                  ) -> list[dict[str, Any]]:
        self.now += after
        turn = await self.agent.say(self.session_id, member, message, self.now)
        self.events.extend(turn)
        return turn


def first(events: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((ev for ev in events if ev["kind"] == kind), None)


def cheapest_offer(events: list[dict[str, Any]]) -> str | None:
    """The first (cheapest, §11.3) offer of the turn's search result."""
    result = first(events, "tool_result")
    offers = (result or {}).get("tool_output", {}).get("offers") or []
    return offers[0]["offer_id"] if offers else None


async def plan_trip(talk: Conversation, member: Member, rng: random.Random) -> list[str]:
    """Search a flight (and often a hotel), add the cheapest offers and the passenger; the offer ids added."""
    enquiry = talk.enquiry
    depart = enquiry["depart_date"]
    pax = enquiry["pax_count"] or 1
    cabin = rng.choice(("", "", "", " business"))
    found = await talk.say(member, f"flights {enquiry['origin']} to {enquiry['destination']} on {depart} "
                                   f"for {pax} adults{cabin}")
    flight = cheapest_offer(found)
    if flight is None:
        return []
    added = [flight]
    await talk.say(member, f"add {flight}")
    await talk.say(member, f"add passenger {enquiry['customer_name']} passport P{rng.randrange(10**6, 10**7)}")
    city = plan.CITIES.get(enquiry["destination"])
    if city and rng.random() < 0.6:
        back = enquiry["return_date"] or depart + dt.timedelta(days=3)
        hotel = cheapest_offer(await talk.say(member, f"hotels in {city} from {depart} to {back} for {pax} guests"))
        if hotel is not None:
            await talk.say(member, f"add {hotel}")
            added.append(hotel)
    return added


Decide = Callable[[Conversation, str, Member, bool], Awaitable[None]]


async def play(talk: Conversation, agency: Agency, fate: str, rng: random.Random, decide: Decide) -> None:
    """One session's whole story."""
    agent_member = rng.choice([m for m in agency.members if m.role in ("agent", "ticketing_lead")])
    if fate == "search_only":
        await talk.say(agent_member, f"flights {talk.enquiry['origin']} to {talk.enquiry['destination']} on "
                                     f"{talk.enquiry['depart_date']}")
        return
    offers = await plan_trip(talk, agent_member, rng)
    if not offers or fate == "planned":
        await talk.say(agent_member, "show my itinerary")
        return
    if fate == "held":
        await request_and_decide(talk, agent_member, f"hold {offers[0]}", agent_member, True, decide)
        return
    ticketing, admin = agency.member("ticketing_lead"), agency.admin
    if fate == "pending":
        await talk.say(agent_member, f"book {offers[0]}")
        return
    if fate == "rejected":
        await request_and_decide(talk, agent_member, f"book {offers[0]}", admin, False, decide)
        return
    if fate == "expired":
        await talk.say(agent_member, f"book {offers[0]}")
        await talk.say(agent_member, "", after=EXPIRY_WAIT)  # nobody decided in time
        return
    for offer in offers:
        await request_and_decide(talk, ticketing, f"book {offer}", ticketing, True, decide)
    accounts = agency.member("accounting_lead")
    await request_and_decide(talk, accounts, f"invoice to {talk.enquiry['customer_name']}", accounts, True, decide)


async def request_and_decide(talk: Conversation, asker: Member, message: str, decider: Member, granted: bool,
                             decide: Decide) -> None:
    """Ask for an approval, let ``decider`` take the decision, and continue the conversation with an empty
    message (the resume step acts on it)."""
    request = first(await talk.say(asker, message), "approval_request")
    if request is None:
        return
    talk.now += DECISION_DELAY
    await decide(talk, request["approval_id"], decider, granted)
    await talk.say(asker, "")


def fate_of(rng: random.Random, started: dt.datetime, now: dt.datetime) -> str:
    if now - started < dt.timedelta(days=RECENT_DAYS):
        return "pending"
    fate = rng.choices(FATES, FATE_WEIGHTS)[0]
    if fate == "expired" and started + EXPIRY_WAIT + dt.timedelta(days=1) > now:
        return "rejected"
    return fate


async def promote(database: Any, sql: Any, agency: Agency, enquiry_id: Any, member: Member) -> Any:
    """The enquiry linked to a new session, as ``POST /enquiries/{id}/promote-to-session`` does it."""
    async with database.transaction() as conn:
        return await enquiries.promote_to_session(conn, sql, tenant_id=agency.tenant_id, enquiry_id=str(enquiry_id),
                                                  actor_id=member.user_id)


def resolver(database: Any, sql: Any, agency: Agency) -> Decide:
    async def decide(talk: Conversation, approval_id: str, member: Member, granted: bool) -> None:
        await edge.resolve_approval(database, sql, tenant_id=agency.tenant_id, approval_id=approval_id,
                                    granted=granted, reason=None if granted else "Over the customer's budget",
                                    resolver_id=member.user_id, resolver_role=member.role, now=talk.now)
    return decide


SESSIONS = 120
RECENT_SESSIONS = 4
OPENING_DELAY = dt.timedelta(hours=1)  # an enquiry is worked on an hour after it came in


def choose_enquiries(made: list[tuple[Any, dt.datetime]], rng: random.Random, now: dt.datetime
                     ) -> list[tuple[Any, dt.datetime]]:
    """The enquiries that become sessions: quoted and booked ones across the year, plus a few of the last days
    (whose approvals stay pending), in the order they came in."""
    recent = [item for item in made if now - item[1] < dt.timedelta(days=RECENT_DAYS)][-RECENT_SESSIONS:]
    older = [item for item in made if now - item[1] >= dt.timedelta(days=10)
             and item[0]["status"] in ("quoted", "booked")]
    chosen = rng.sample(older, min(len(older), SESSIONS - len(recent))) + recent
    return sorted(chosen, key=lambda item: item[1])


async def play_sessions(database: Any, sql: Any, agency: Agency, agent: Agent, made: list[tuple[Any, dt.datetime]],
                        rng: random.Random, now: dt.datetime, step: Any) -> dict[str, int]:
    """Promote, play and date each chosen enquiry's session; how many sessions met each fate."""
    decide = resolver(database, sql, agency)
    workers = [member for member in agency.members if member.role in ("agent", "ticketing_lead")]
    fates: dict[str, int] = {}
    for enquiry, came_in in choose_enquiries(made, rng, now):
        started = min(came_in + OPENING_DELAY, now - dt.timedelta(hours=3))
        promoted = await promote(database, sql, agency, enquiry["id"], rng.choice(workers))
        talk = Conversation(uuid.UUID(promoted["session_id"]), promoted, started, agent)
        fate = fate_of(rng, started, now)
        await play(talk, agency, fate, rng, decide)
        async with database.transaction() as conn:
            await sql.demo_date_session(conn, session_id=talk.session_id, tenant_id=agency.tenant_id,
                                        started_at=started, ended_at=talk.now)
        fates[fate] = fates.get(fate, 0) + 1
        step.advance()
    return fates
