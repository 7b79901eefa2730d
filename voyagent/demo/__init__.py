"""``voyagent demo``: a living demo agency in one command (operations.md §1).

Stages, each through the services the API uses: the agency and one member per role, a year of enquiries, chat
sessions whose turns really run through the offline agent (searches, itineraries, holds, bookings, invoices,
approvals in every state), and customer and supplier payments spread over every aging bucket. Idempotent: when
the demo agency exists, nothing is changed and the sign-in details are printed again.
"""

from voyagent.demo.run import DemoOutcome, run_demo

__all__ = ["DemoOutcome", "run_demo"]
