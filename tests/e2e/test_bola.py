"""The BOLA matrix: every route of every service × every kind of caller → the status it must answer,
on the running services (real Kafka and PostgreSQL).

The expected statuses below are written BY HAND from the access spec (issue 7: "Routes and their
policies"), never derived from the code's own policy declarations. A route that a service's
/openapi.json serves but the table lacks fails `test_every_served_route_is_in_the_table`: a change
that adds a route extends the table.

Principals (columns):
- `anon`: no credentials at all.
- `orgA`: an organiser key of region A (twente), the region every resource under test belongs to.
- `orgB`: an organiser key of region B (groningen).
- `natl`: a national key. `admin`: an admin key.
- `linkX`, `linkY`: participants X and Y of region A, holding a valid link of the route's purpose.
- `expd`: X's link of the route's purpose, issued 61 days ago (longer than `link_max_age_hours`, 60 days).
- `tamp`: X's valid link with one character of its signature changed.

How each principal calls a route:
- Bearer routes (everything but /links/...): the four key holders send `Authorization: Bearer <key>`;
  `anon` and the four link principals send no Authorization header (a link is not a credential for
  a bearer route: they are anonymous there).
- Link routes (/links/...): link principals put their token in the path, with no Authorization header.
  The five bearer principals (anon included) put X's bare sign-up id where the token goes, each with
  their own credentials: the question is whether a key (even admin's) plus an id opens a participant's
  link route. It must not: 404, the page of an unknown link.

The resource under test belongs to region A and, where a row names a participant, to X. Rows that change
state get fresh resources, so no cell depends on another: a fresh edition per principal to create,
close or match; a fresh offer or sign-up per principal to cancel or withdraw; for each row that answers
a seat offer, an edition of its own in which X and Y hold open seat offers (the organiser's
accept/decline row: admin answers Y's, everybody else X's). Within a row the principals that must be
refused go first and those that may act last (`EXEC_ORDER`), so a refused call that wrongly acted
would also show in the cells after it.

The rows of issues 10 and 11 follow the same rule:
- The relay is one national plan with one baton (one leg holds it at a time), so the early hand-over
  cannot give every acting principal a holding leg at once: the set-up plans three legs after every leg
  already planned (A and B of twente, then C of groningen) and waits until A holds the baton. Everybody
  but admin hands over A (the refused ones first, then orgA, which hands it to B); admin hands over B
  (which B holds only after orgA's cell). orgB's answer is 403 (`forbidden_region`), not 404: the plan,
  each leg's region and who holds the baton are public (`GET /relay/legs`), so there is nothing to hide,
  and registration's README names 403 for another region's organiser. Planning a leg
  (`PUT /relay/legs/{leg_id}`) is the national coordinator's (and admin's): each principal plans a leg
  of its own, at its own position and day after C.
- Knowledge items: each principal approves (and rejects) a shareable feedback of its own, given in the
  set-up through the feedback link (`share_publicly`).
- People: each principal edits a sign-up of its own (`PATCH`), admits its own person late (an edition
  whose deadline passed: `override_deadline` with a reason) and imports its own offer and sign-up rows.
- Overrides: each principal forbids its own participant an offer, and removes its own override that the
  set-up made (admin).
- Webhooks: each principal registers an endpoint of twente (the body names the region: an admin must,
  an organiser may name only their own) and deletes its own one that the set-up made; the deliveries
  and the redelivery are those of one endpoint of twente that received an `OfferPublished`.

Beyond the statuses, the matrix test checks what the cells did (`_effects`: the cells whose expected
status is 2xx acted, the others changed nothing) and that lists are filtered by region
(`_scoping_of_lists`). It reports every mismatching cell in one failure, and prints the number of cells.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.portal import ENV, Portal, SeatOfferEdition, give_feedback, relay_legs, unique, until
from tests.support import SERVICES, Infra, services

pytestmark = pytest.mark.e2e

PRINCIPALS = ("anon", "orgA", "orgB", "natl", "admin", "linkX", "linkY", "expd", "tamp")
BEARERS = ("anon", "orgA", "orgB", "natl", "admin")
#: Refused principals first, acting ones last.
EXEC_ORDER = ("anon", "orgB", "natl", "expd", "tamp", "linkY", "orgA", "admin", "linkX")
LINK_AGE_SECONDS = 61 * 24 * 3600

# service       method path                                                  anon orgA orgB natl admin linkX linkY expd tamp
EXPECTED_TABLE = """
registration    GET    /regions                                              200  200  200  200  200   200   200   200  200
registration    POST   /editions                                             401  201  403  403  201   401   401   401  401
registration    GET    /editions/{edition_id}                                200  200  200  200  200   200   200   200  200
registration    POST   /editions/{edition_id}/close                          401  204  404  403  204   401   401   401  401
registration    POST   /editions/{edition_id}/cancel                         401  204  404  403  204   401   401   401  401
registration    POST   /editions/{edition_id}/organisations                  401  201  404  403  201   401   401   401  401
registration    GET    /editions/{edition_id}/organisations                  401  200  404  403  200   401   401   401  401
registration    POST   /editions/{edition_id}/offers                         401  201  404  403  201   401   401   401  401
registration    GET    /editions/{edition_id}/offers                         200  200  200  200  200   200   200   200  200
registration    DELETE /editions/{edition_id}/offers/{offer_id}              401  204  404  403  204   401   401   401  401
registration    PATCH  /editions/{edition_id}/offers/{offer_id}              401  200  404  403  200   401   401   401  401
registration    POST   /editions/{edition_id}/signups                        201  201  201  201  201   201   201   201  201
registration    DELETE /editions/{edition_id}/signups/{signup_id}            401  204  404  403  204   401   401   401  401
registration    DELETE /signups/{signup_id}/personal-data                    401  204  404  403  204   401   401   401  401
registration    GET    /links/signup/{token}                                 404  404  404  404  404   200   200   410  404
registration    POST   /links/signup/{token}/withdraw                        404  404  404  404  404   200   200   410  404
registration    POST   /links/signup/{token}/choices                         404  404  404  404  404   200   200   410  404
registration    GET    /links/approval/{token}                               404  404  404  404  404   200   200   410  404
registration    POST   /links/approval/{token}/approve                       404  404  404  404  404   200   200   410  404
registration    POST   /links/approval/{token}/refuse                        404  404  404  404  404   200   200   410  404
registration    GET    /links/feedback/{token}                               404  404  404  404  404   200   200   410  404
registration    POST   /links/feedback/{token}                               404  404  404  404  404   200   200   410  404
matching        GET    /editions/{edition_id}                                401  200  404  403  200   401   401   401  401
matching        GET    /editions/{edition_id}/match-runs                     401  200  404  403  200   401   401   401  401
matching        POST   /editions/{edition_id}/match-runs                     401  202  404  403  202   401   401   401  401
matching        GET    /match-runs/{run_id}                                  401  200  404  403  200   401   401   401  401
matching        GET    /editions/{edition_id}/assignments                    401  200  404  403  200   401   401   401  401
matching        GET    /editions/{edition_id}/seat-offers                    401  200  404  403  200   401   401   401  401
matching        POST   /editions/{edition_id}/seat-offers/{signup_id}/accept  401  200  404  403  200   401   401   401  401
matching        POST   /editions/{edition_id}/seat-offers/{signup_id}/decline 401  200  404  403  200   401   401   401  401
matching        GET    /links/seat-offers/{token}/accept                     404  404  404  404  404   200   200   410  404
matching        POST   /links/seat-offers/{token}/accept                     404  404  404  404  404   200   200   410  404
matching        GET    /links/seat-offers/{token}/decline                    404  404  404  404  404   200   200   410  404
matching        POST   /links/seat-offers/{token}/decline                    404  404  404  404  404   200   200   410  404
notifications   GET    /notifications                                        401  200  200  403  200   401   401   401  401
notifications   GET    /notifications/{notification_id}                      401  200  404  403  200   401   401   401  401
reporting       GET    /reports/editions/{edition_id}                        401  200  404  200  200   401   401   401  401
reporting       GET    /reports/regions                                      401  200  200  200  200   401   401   401  401
reporting       GET    /dashboard                                            200  200  200  200  200   200   200   200  200
registration    GET    /relay/legs                                           200  200  200  200  200   200   200   200  200
registration    PUT    /relay/legs/{leg_id}                                  401  403  403  200  200   401   401   401  401
registration    POST   /relay/legs/{leg_id}/handover                         401  200  403  403  200   401   401   401  401
registration    GET    /editions/{edition_id}/knowledge-items                401  200  404  403  200   401   401   401  401
registration    POST   /editions/{edition_id}/knowledge-items/{feedback_id}/approve  401  200  404  403  200   401   401   401  401
registration    POST   /editions/{edition_id}/knowledge-items/{feedback_id}/reject   401  200  404  403  200   401   401   401  401
registration    GET    /editions/{edition_id}/people                         401  200  404  403  200   401   401   401  401
registration    POST   /editions/{edition_id}/people                         401  201  404  403  201   401   401   401  401
registration    GET    /editions/{edition_id}/people/{signup_id}             401  200  404  403  200   401   401   401  401
registration    PATCH  /editions/{edition_id}/people/{signup_id}             401  200  404  403  200   401   401   401  401
registration    GET    /editions/{edition_id}/offers/{offer_id}/visitors     401  200  404  403  200   401   401   401  401
registration    POST   /editions/{edition_id}/imports/offers                 401  200  404  403  200   401   401   401  401
registration    POST   /editions/{edition_id}/imports/signups                401  200  404  403  200   401   401   401  401
registration    GET    /editions/{edition_id}/exports/{kind}                 401  200  404  403  200   401   401   401  401
registration    GET    /editions/{edition_id}/recommendations                200  200  200  200  200   200   200   200  200
matching        POST   /editions/{edition_id}/overrides                      401  201  404  403  201   401   401   401  401
matching        GET    /editions/{edition_id}/overrides                      401  200  404  403  200   401   401   401  401
matching        DELETE /editions/{edition_id}/overrides/{override_id}        401  200  404  403  200   401   401   401  401
matching        POST   /editions/{edition_id}/match-preview                  401  200  404  403  200   401   401   401  401
matching        GET    /match-runs/{run_id}/explanations                     401  200  404  403  200   401   401   401  401
notifications   POST   /webhooks                                             401  201  403  403  201   401   401   401  401
notifications   GET    /webhooks                                             401  200  200  403  200   401   401   401  401
notifications   DELETE /webhooks/{endpoint_id}                               401  204  404  403  204   401   401   401  401
notifications   GET    /webhooks/{endpoint_id}/deliveries                    401  200  404  403  200   401   401   401  401
notifications   POST   /webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver  401  202  404  403  202   401   401   401  401
reporting       GET    /relay                                                200  200  200  200  200   200   200   200  200
reporting       GET    /relay/feed.json                                      200  200  200  200  200   200   200   200  200
reporting       GET    /relay/feed.atom                                      200  200  200  200  200   200   200   200  200
reporting       GET    /feeds/dashboard                                      200  200  200  200  200   200   200   200  200
reporting       GET    /dashboard/events                                     200  200  200  200  200   200   200   200  200
"""

Route = tuple[str, str, str]  # (service, method, path template)


def _parse(table: str) -> dict[Route, dict[str, int]]:
    rows: dict[Route, dict[str, int]] = {}
    for line in table.strip().splitlines():
        service, method, path, *statuses = line.split()
        assert len(statuses) == len(PRINCIPALS), f"row needs {len(PRINCIPALS)} statuses: {line}"
        assert (service, method, path) not in rows, f"row twice: {line}"
        rows[(service, method, path)] = dict(zip(PRINCIPALS, map(int, statuses), strict=True))
    return rows


EXPECTED = _parse(EXPECTED_TABLE)
CELLS = len(EXPECTED) * len(PRINCIPALS)


def tampered(token: str) -> str:
    """The token with one character in the middle of its signature (the last part) changed."""
    i = len(token) - 10
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


@dataclass(frozen=True)
class LinkResource:
    purpose: str
    edition_id: str
    x: str
    y: str
    #: What the link is for within the sign-up: an organisation (approval), an offer (feedback).
    ref: str | None = None
    #: The form a person would post on the page (None: no body).
    form: dict[str, str] | None = None

    def token(self, principal: str) -> str:
        signup_id = self.y if principal == "linkY" else self.x
        if principal in BEARERS:
            return signup_id  # a bare sign-up id where the token goes
        age = LINK_AGE_SECONDS if principal == "expd" else 0
        token = Infra.link(self.purpose, signup_id, self.edition_id, age_seconds=age, ref=self.ref)
        return tampered(token) if principal == "tamp" else token


@dataclass(frozen=True)
class Relay:
    """Three legs planned after every leg planned before (see the module docstring)."""

    first: str  # A, of twente: holds the baton after the set-up
    second: str  # B, of twente: holds it after orgA's early hand-over
    third: str  # C, of groningen: holds it after admin's
    position: int  # the first position after C (the cells plan theirs from here)
    day: date  # the first day after C (likewise)


@dataclass(frozen=True)
class Tools:
    """What the rows of issues 10 and 11 act on (per-principal ids are in `World.per_principal`)."""

    relay: Relay
    knowledge: str  # an edition with a shareable feedback per principal to approve and one to reject
    people: str  # an edition with a sign-up per principal to edit; the imports go here
    people_offer: str
    late: str  # an edition whose sign-up deadline has passed: admissions are late
    late_offer: str
    overrides: str  # an edition known to matching, a sign-up per principal choosing both offers
    override_offer: str  # the offer the cells forbid (the set-up forbade the other one)
    webhook: str  # an endpoint of twente for OfferPublished, with a delivery
    delivery: str
    main_runs: int  # match runs of `main` before the cells (its previews must add none)


@dataclass(frozen=True)
class Raw:
    """A request body that is not JSON (an import's CSV file)."""

    content: bytes
    content_type: str


@dataclass
class World:
    """Everything the cells act on; see the module docstring."""

    main: SeatOfferEdition  # X = holders[0], Y = holders[1], both holding an open seat offer
    accept_link: SeatOfferEdition
    decline_link: SeatOfferEdition
    accept_org: SeatOfferEdition
    decline_org: SeatOfferEdition
    scratch: str  # an edition for new offers and sign-ups
    scratch_offer: str
    withdraw_link: LinkResource  # fresh X and Y who withdraw through their links
    choices_link: LinkResource  # fresh X and Y who change their choice to the edition's second offer
    approve_link: LinkResource  # X and Y whose employer (the link's ref) approves through the link
    refuse_link: LinkResource  # X and Y whose employer refuses through the link
    feedback_link: LinkResource  # X and Y who give feedback on an offer (the link's ref)
    edition_b: str  # groningen: organiser B's own
    notification_x: str  # a notification about X in `main`
    tools: Tools  # issues 10 and 11
    per_principal: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> principal -> id

    @property
    def x(self) -> str:
        return self.main.holders[0]


Call = tuple[str, dict | Raw | None]  # (path, JSON body or a raw one)


def _new_edition(w: World, p: str) -> Call:
    return "/editions", {"id": w.per_principal["new_edition"][p], "region": "twente", "name": "Nieuw",
                         "signup_deadline": "2099-04-01T00:00:00Z", "starts_on": "2099-05-31", "ends_on": "2099-06-04"}


def _new_offer(w: World, p: str) -> Call:
    return f"/editions/{w.scratch}/offers", {"id": w.per_principal["new_offer"][p], "host_org": "bakker-bart",
                                             "title": "Bakkerij", "date": "2099-06-01", "capacity": 2}


def _new_signup(w: World, p: str) -> Call:
    return f"/editions/{w.scratch}/signups", {"org": "gemeente", "name": f"Nieuw {p}", "language": "nl",
                                              "email": f"{unique(p.lower())}@example.org", "choices": [w.scratch_offer], "consent": True}


def _new_organisation(w: World, p: str) -> Call:
    return f"/editions/{w.scratch}/organisations", {
        "id": w.per_principal["new_organisation"][p], "name": f"Organisatie {p}",
        "contact": {"name": "Contact", "email": f"contact-{p.lower()}@example.org", "language": "nl"}}


def _answer(answer: str) -> Callable[[World, str], Call]:
    """The organiser's answer to a seat offer: admin answers Y's, everybody else X's."""

    def call(w: World, p: str) -> Call:
        edition = w.accept_org if answer == "accept" else w.decline_org
        signup_id = edition.holders[1] if p == "admin" else edition.holders[0]
        return f"/editions/{edition.edition_id}/seat-offers/{signup_id}/{answer}", None

    return call


# --- issues 10 and 11 ---
def _plan_leg(w: World, p: str) -> Call:
    """Each principal plans a leg of its own: its own position and day after leg C."""
    i = PRINCIPALS.index(p)
    day = str(w.tools.relay.day + timedelta(days=2 * i))
    return f"/relay/legs/{w.per_principal['leg'][p]}", {
        "region": "twente", "edition": "bola-relay", "first_day": day, "last_day": day,
        "activity": f"Estafette ({p})", "position": w.tools.relay.position + i, "allow_gap": True}


def _hand_over(w: World, p: str) -> Call:
    """Admin hands over B, everybody else A (B holds the baton only after orgA handed A over)."""
    return f"/relay/legs/{w.tools.relay.second if p == 'admin' else w.tools.relay.first}/handover", None


def _moderate(answer: str) -> Callable[[World, str], Call]:
    def call(w: World, p: str) -> Call:
        body = {"text": f"Iemand leerde plannen ({p})"} if answer == "approve" else {"reason": f"niet openbaar ({p})"}
        return f"/editions/{w.tools.knowledge}/knowledge-items/{w.per_principal[answer][p]}/{answer}", body

    return call


def _admit_late(w: World, p: str) -> Call:
    return f"/editions/{w.tools.late}/people", {
        "org": "gemeente", "name": f"Laat {p}", "email": w.per_principal["admit_email"][p], "language": "nl",
        "choices": [w.tools.late_offer], "consent": True, "override_deadline": True, "reason": f"ziek geweest ({p})"}


def _import_offers(w: World, p: str) -> Call:
    csv = f"id,host_org,title,date,capacity\n{w.per_principal['import_offer'][p]},bakker-bart,Import {p},2099-06-02,3\n"
    return f"/editions/{w.tools.people}/imports/offers", Raw(csv.encode(), "text/csv")


def _import_signups(w: World, p: str) -> Call:
    csv = ("org;name;email;language;choices;consent\n"
           f"gemeente;Import {p};{w.per_principal['import_email'][p]};nl;{w.tools.people_offer};ja\n")
    return f"/editions/{w.tools.people}/imports/signups", Raw(csv.encode(), "text/csv")


#: The export each principal asks for (every kind and format is asked for by someone).
EXPORTS = dict(zip(PRINCIPALS, ("signups?format=csv", "signups?format=json", "assignments?format=csv",
                                "assignments?format=json", "visitors?format=csv", "visitors?format=json",
                                "feedback?format=csv", "feedback?format=json", "signups"), strict=True))


def _override(w: World, p: str) -> Call:
    return f"/editions/{w.tools.overrides}/overrides", {
        "signup_id": w.per_principal["override_signup"][p], "offer_id": w.tools.override_offer, "kind": "forbid",
        "reason": f"niet bij de eigen werkgever ({p})"}


def _webhook(w: World, p: str) -> Call:
    return "/webhooks", {"url": "http://127.0.0.1:9/bola", "event_types": ["SignupRefused"],
                         "description": w.per_principal["webhook_new"][p], "region": "twente"}


#: The language each principal asks public pages in.
LANGS = dict(zip(PRINCIPALS, ("nl", "de", "en") * 3, strict=True))


#: Bearer routes: (path, body) per principal.
TARGETS: dict[Route, Callable[[World, str], Call]] = {
    ("registration", "GET", "/regions"): lambda w, p: ("/regions", None),
    ("registration", "POST", "/editions"): _new_edition,
    ("registration", "GET", "/editions/{edition_id}"): lambda w, p: (f"/editions/{w.main.edition_id}", None),
    ("registration", "POST", "/editions/{edition_id}/close"):
        lambda w, p: (f"/editions/{w.per_principal['close'][p]}/close", None),
    ("registration", "POST", "/editions/{edition_id}/cancel"):
        lambda w, p: (f"/editions/{w.per_principal['cancel'][p]}/cancel", {"reason": f"afgelast door {p}"}),
    ("registration", "POST", "/editions/{edition_id}/organisations"): _new_organisation,
    ("registration", "GET", "/editions/{edition_id}/organisations"): lambda w, p: (f"/editions/{w.scratch}/organisations", None),
    ("registration", "PATCH", "/editions/{edition_id}/offers/{offer_id}"):
        lambda w, p: (f"/editions/{w.scratch}/offers/{w.scratch_offer}", {"what_to_bring": f"een pen ({p})"}),
    ("registration", "POST", "/editions/{edition_id}/offers"): _new_offer,
    ("registration", "GET", "/editions/{edition_id}/offers"): lambda w, p: (f"/editions/{w.main.edition_id}/offers", None),
    ("registration", "DELETE", "/editions/{edition_id}/offers/{offer_id}"):
        lambda w, p: (f"/editions/{w.scratch}/offers/{w.per_principal['offer'][p]}", None),
    ("registration", "POST", "/editions/{edition_id}/signups"): _new_signup,
    ("registration", "DELETE", "/editions/{edition_id}/signups/{signup_id}"):
        lambda w, p: (f"/editions/{w.scratch}/signups/{w.per_principal['signup'][p]}", None),
    ("registration", "DELETE", "/signups/{signup_id}/personal-data"):
        lambda w, p: (f"/signups/{w.per_principal['erase'][p]}/personal-data", None),
    ("matching", "GET", "/editions/{edition_id}"): lambda w, p: (f"/editions/{w.main.edition_id}", None),
    ("matching", "GET", "/editions/{edition_id}/match-runs"): lambda w, p: (f"/editions/{w.main.edition_id}/match-runs", None),
    ("matching", "POST", "/editions/{edition_id}/match-runs"):
        lambda w, p: (f"/editions/{w.per_principal['run'][p]}/match-runs", None),
    ("matching", "GET", "/match-runs/{run_id}"): lambda w, p: (f"/match-runs/{w.main.run_id}", None),
    ("matching", "GET", "/editions/{edition_id}/assignments"): lambda w, p: (f"/editions/{w.main.edition_id}/assignments", None),
    ("matching", "GET", "/editions/{edition_id}/seat-offers"): lambda w, p: (f"/editions/{w.main.edition_id}/seat-offers", None),
    ("matching", "POST", "/editions/{edition_id}/seat-offers/{signup_id}/accept"): _answer("accept"),
    ("matching", "POST", "/editions/{edition_id}/seat-offers/{signup_id}/decline"): _answer("decline"),
    ("notifications", "GET", "/notifications"): lambda w, p: (f"/notifications?edition={w.main.edition_id}", None),
    ("notifications", "GET", "/notifications/{notification_id}"): lambda w, p: (f"/notifications/{w.notification_x}", None),
    ("reporting", "GET", "/reports/editions/{edition_id}"): lambda w, p: (f"/reports/editions/{w.main.edition_id}", None),
    ("reporting", "GET", "/reports/regions"): lambda w, p: ("/reports/regions", None),
    ("reporting", "GET", "/dashboard"): lambda w, p: ("/dashboard", None),
    ("registration", "GET", "/relay/legs"): lambda w, p: ("/relay/legs", None),
    ("registration", "PUT", "/relay/legs/{leg_id}"): _plan_leg,
    ("registration", "POST", "/relay/legs/{leg_id}/handover"): _hand_over,
    ("registration", "GET", "/editions/{edition_id}/knowledge-items"):
        lambda w, p: (f"/editions/{w.tools.knowledge}/knowledge-items", None),
    ("registration", "POST", "/editions/{edition_id}/knowledge-items/{feedback_id}/approve"): _moderate("approve"),
    ("registration", "POST", "/editions/{edition_id}/knowledge-items/{feedback_id}/reject"): _moderate("reject"),
    ("registration", "GET", "/editions/{edition_id}/people"): lambda w, p: (f"/editions/{w.main.edition_id}/people?q=example", None),
    ("registration", "POST", "/editions/{edition_id}/people"): _admit_late,
    ("registration", "GET", "/editions/{edition_id}/people/{signup_id}"):
        lambda w, p: (f"/editions/{w.main.edition_id}/people/{w.x}", None),
    ("registration", "PATCH", "/editions/{edition_id}/people/{signup_id}"):
        lambda w, p: (f"/editions/{w.tools.people}/people/{w.per_principal['patch'][p]}", {"learning_goal": f"Leren plannen ({p})"}),
    ("registration", "GET", "/editions/{edition_id}/offers/{offer_id}/visitors"):
        lambda w, p: (f"/editions/{w.main.edition_id}/offers/{w.main.offer_id}/visitors"
                      f"?format={'csv' if PRINCIPALS.index(p) % 2 else 'json'}", None),
    ("registration", "POST", "/editions/{edition_id}/imports/offers"): _import_offers,
    ("registration", "POST", "/editions/{edition_id}/imports/signups"): _import_signups,
    ("registration", "GET", "/editions/{edition_id}/exports/{kind}"):
        lambda w, p: (f"/editions/{w.main.edition_id}/exports/{EXPORTS[p]}", None),
    ("registration", "GET", "/editions/{edition_id}/recommendations"):
        lambda w, p: (f"/editions/{w.main.edition_id}/recommendations?goal=brood+bakken&lang=nl", None),
    ("matching", "POST", "/editions/{edition_id}/overrides"): _override,
    ("matching", "GET", "/editions/{edition_id}/overrides"): lambda w, p: (f"/editions/{w.tools.overrides}/overrides", None),
    ("matching", "DELETE", "/editions/{edition_id}/overrides/{override_id}"):
        lambda w, p: (f"/editions/{w.tools.overrides}/overrides/{w.per_principal['override_del'][p]}", None),
    ("matching", "POST", "/editions/{edition_id}/match-preview"): lambda w, p: (f"/editions/{w.main.edition_id}/match-preview", None),
    ("matching", "GET", "/match-runs/{run_id}/explanations"): lambda w, p: (f"/match-runs/{w.main.run_id}/explanations", None),
    ("notifications", "POST", "/webhooks"): _webhook,
    ("notifications", "GET", "/webhooks"): lambda w, p: ("/webhooks", None),
    ("notifications", "DELETE", "/webhooks/{endpoint_id}"): lambda w, p: (f"/webhooks/{w.per_principal['webhook_del'][p]}", None),
    ("notifications", "GET", "/webhooks/{endpoint_id}/deliveries"): lambda w, p: (f"/webhooks/{w.tools.webhook}/deliveries", None),
    ("notifications", "POST", "/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"):
        lambda w, p: (f"/webhooks/{w.tools.webhook}/deliveries/{w.tools.delivery}/redeliver", None),
    ("reporting", "GET", "/relay"): lambda w, p: (f"/relay?lang={LANGS[p]}", None),
    ("reporting", "GET", "/relay/feed.json"): lambda w, p: (f"/relay/feed.json?lang={LANGS[p]}", None),
    ("reporting", "GET", "/relay/feed.atom"): lambda w, p: (f"/relay/feed.atom?lang={LANGS[p]}", None),
    ("reporting", "GET", "/feeds/dashboard"): lambda w, p: ("/feeds/dashboard", None),
    ("reporting", "GET", "/dashboard/events"): lambda w, p: ("/dashboard/events", None),  # a stream: see the matrix
}


def _seat_link(edition: SeatOfferEdition, purpose: str) -> LinkResource:
    return LinkResource(purpose, edition.edition_id, edition.holders[0], edition.holders[1])


#: Link routes: the resource whose tokens the principals use.
LINKS: dict[Route, Callable[[World], LinkResource]] = {
    ("registration", "GET", "/links/signup/{token}"):
        lambda w: LinkResource("signup", w.main.edition_id, w.main.holders[0], w.main.holders[1]),
    ("registration", "POST", "/links/signup/{token}/withdraw"): lambda w: w.withdraw_link,
    ("registration", "POST", "/links/signup/{token}/choices"): lambda w: w.choices_link,
    ("registration", "GET", "/links/approval/{token}"): lambda w: w.approve_link,
    ("registration", "POST", "/links/approval/{token}/approve"): lambda w: w.approve_link,
    ("registration", "POST", "/links/approval/{token}/refuse"): lambda w: w.refuse_link,
    ("registration", "GET", "/links/feedback/{token}"): lambda w: w.feedback_link,
    ("registration", "POST", "/links/feedback/{token}"): lambda w: w.feedback_link,
    ("matching", "GET", "/links/seat-offers/{token}/accept"): lambda w: _seat_link(w.main, "seat_offer_accept"),
    ("matching", "POST", "/links/seat-offers/{token}/accept"): lambda w: _seat_link(w.accept_link, "seat_offer_accept"),
    ("matching", "GET", "/links/seat-offers/{token}/decline"): lambda w: _seat_link(w.main, "seat_offer_decline"),
    ("matching", "POST", "/links/seat-offers/{token}/decline"): lambda w: _seat_link(w.decline_link, "seat_offer_decline"),
}


def test_every_table_row_has_a_target() -> None:
    assert set(TARGETS) | set(LINKS) == set(EXPECTED)
    assert not set(TARGETS) & set(LINKS)


# --- the running platform --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys(infra: Infra) -> dict[str, str]:
    """Made before the services start, so every service knows them at once."""
    return {"orgA": infra.key("organiser", "twente"), "orgB": infra.key("organiser", "groningen"),
            "natl": infra.key("national"), "admin": infra.key("admin")}


@pytest.fixture(scope="module")
def urls(infra: Infra, keys: dict[str, str]) -> Iterator[dict[str, str]]:
    infra.reset_relay()  # the country has one relay: other tests' legs are forgotten first (the baton rows plan their own)
    with services(infra, *SERVICES, extra_env=ENV) as svc:
        yield {name: proc.url for name, proc in svc.items()}


@pytest.fixture(scope="module")
async def world(urls: dict[str, str], keys: dict[str, str]) -> World:
    """Set up through the API with the admin key (see `World`)."""
    async with httpx.AsyncClient(timeout=30) as http:
        admin = Portal(http, urls, keys["admin"])
        seat_editions = await asyncio.gather(*(admin.seat_offer_edition(f"bola-{name}") for name in (
            "main", "acc-link", "dec-link", "acc-org", "dec-org")))
        scratch = await admin.edition(unique("bola-scratch"))
        scratch_offer = await admin.offer(scratch, f"{scratch}-keep", capacity=50)
        per: dict[str, dict[str, str]] = {"close": {}, "offer": {}, "signup": {}, "run": {}, "new_edition": {}, "new_offer": {},
                                          "erase": {}, "cancel": {}, "new_organisation": {}}
        erase = await admin.edition(unique("bola-erase"))  # sign-ups whose personal data the cells erase
        erase_offer = await admin.offer(erase, f"{erase}-keep", capacity=50)
        for p in PRINCIPALS:
            per["new_edition"][p] = unique(f"bola-new-{p.lower()}")  # made (or not) by the cells
            per["new_offer"][p] = unique(f"{scratch}-new-{p.lower()}")
            per["close"][p] = await admin.edition(unique(f"bola-close-{p.lower()}"))
            per["cancel"][p] = await admin.edition(unique(f"bola-cancel-{p.lower()}"))
            per["new_organisation"][p] = unique(f"org-{p.lower()}")
            per["run"][p] = await admin.edition(unique(f"bola-run-{p.lower()}"))
            per["offer"][p] = await admin.offer(scratch, unique(f"{scratch}-del-{p.lower()}"))
            per["signup"][p] = await admin.signup(scratch, f"Weg {p}", f"{unique(p.lower())}@example.org", [scratch_offer])
            per["erase"][p] = await admin.signup(erase, f"Wis {p}", f"{unique(p.lower())}@example.org", [erase_offer])
        withdraw = await admin.edition(unique("bola-withdraw"))
        withdraw_offer = await admin.offer(withdraw, f"{withdraw}-bakery")
        wx, wy = [await admin.signup(withdraw, n, f"{n.lower()}-{withdraw}@example.org", [withdraw_offer]) for n in ("X", "Y")]
        choices = await admin.edition(unique("bola-choices"))
        first, second = await admin.offer(choices, f"{choices}-first"), await admin.offer(choices, f"{choices}-second")
        cx, cy = [await admin.signup(choices, n, f"{n.lower()}-{choices}@example.org", [first]) for n in ("X", "Y")]
        approvals = []
        for answer in ("approve", "refuse"):
            edition = await admin.edition(unique(f"bola-{answer}"), requires_approval=True)
            offer = await admin.offer(edition, f"{edition}-bakery")
            await admin.call("POST", "registration", f"/editions/{edition}/organisations", 201, json={
                "id": "gemeente-hengelo", "name": "Gemeente Hengelo",
                "contact": {"name": "Hanna", "email": f"hr-{edition}@example.org", "language": "nl"}})
            ax, ay = [await admin.signup(edition, n, f"{n.lower()}-{edition}@example.org", [offer]) for n in ("X", "Y")]
            approvals.append(LinkResource("approval", edition, ax, ay, ref="gemeente-hengelo",
                                          form={"reason": "geen tijd"} if answer == "refuse" else None))
        edition_b = await admin.edition(unique("bola-groningen"), region="groningen")
        main = seat_editions[0]

        for edition_id in [*per["run"].values(), edition_b]:
            await admin.known_to_matching(edition_id)

        async def notification_of_x() -> str | None:
            r = await admin.get("notifications", "/notifications", edition=main.edition_id, signup_id=main.holders[0])
            items = r.json()["items"] if r.status_code == 200 else []
            return items[0]["id"] if items else None

        notification_x = await until(notification_of_x, "a notification about X")

        async def reported(edition_id: str) -> bool:
            return (await admin.get("reporting", f"/reports/editions/{edition_id}")).status_code == 200

        for edition_id in (main.edition_id, edition_b):
            await until(lambda e=edition_id: reported(e), f"reporting knows {edition_id}")
        tools = await _tools(admin, urls, per, main.edition_id)
    return World(main=main, accept_link=seat_editions[1], decline_link=seat_editions[2], accept_org=seat_editions[3],
                 decline_org=seat_editions[4], scratch=scratch, scratch_offer=scratch_offer,
                 withdraw_link=LinkResource("signup", withdraw, wx, wy),
                 choices_link=LinkResource("signup", choices, cx, cy, form={"choice_1": second}),
                 approve_link=approvals[0], refuse_link=approvals[1],
                 feedback_link=LinkResource("feedback", main.edition_id, main.holders[0], main.holders[1], ref=main.offer_id,
                                            form={"rating": "4", "learned": "Hoe een bakkerij plant."}),
                 edition_b=edition_b,
                 notification_x=notification_x, tools=tools, per_principal=per)


async def _tools(admin: Portal, urls: dict[str, str], per: dict[str, dict[str, str]], main: str) -> Tools:
    """The resources of the rows of issues 10 and 11 (see the module docstring), set up by admin."""
    http, reg = admin.http, urls["registration"]
    for kind in ("leg", "approve", "reject", "patch", "admit_email", "import_offer", "import_email",
                 "override_signup", "override_del", "webhook_new", "webhook_del"):
        per[kind] = {}

    # An endpoint of twente for OfferPublished (it refuses connections: deliveries stay to redeliver).
    r = await admin.call("POST", "notifications", "/webhooks", 201, json={
        "url": "http://127.0.0.1:9/bola", "event_types": ["OfferPublished"], "description": "bola deliveries",
        "region": "twente"})
    webhook = r.json()["id"]

    # The relay: A (twente, holding the baton), B (twente), C (groningen) after every leg planned before.
    plan = await relay_legs(http, reg)
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    later = [leg for leg in plan.values() if date.fromisoformat(leg["last_day"]) >= today - timedelta(days=1)]
    assert not later, f"set-up: the relay plan already has legs from yesterday on, the baton cannot be planned: {later}"
    position = max([0, *(leg["position"] for leg in plan.values())]) + 1
    first, second, third = (unique(f"bola-leg-{n}") for n in "abc")
    for n, (leg, region, start, end) in enumerate([(first, "twente", -1, 1), (second, "twente", 2, 2), (third, "groningen", 3, 3)]):
        await admin.call("PUT", "registration", f"/relay/legs/{leg}", 200, json={
            "region": region, "edition": "bola-relay", "first_day": str(today + timedelta(days=start)),
            "last_day": str(today + timedelta(days=end)), "activity": "Estafette", "position": position + n, "allow_gap": True})

    async def holding() -> bool:
        return (await relay_legs(http, reg))[first]["status"] == "holding"

    await until(holding, f"relay leg {first} holds the baton")

    # Knowledge items: a shareable feedback per principal to approve, and one to reject.
    knowledge = await admin.edition(unique("bola-knowledge"))
    knowledge_offer = await admin.offer(knowledge, f"{knowledge}-bakery", capacity=50)
    learned: dict[str, tuple[str, str]] = {}
    for p in PRINCIPALS:
        for answer in ("approve", "reject"):
            signup = await admin.signup(knowledge, f"K {p}", f"{unique('k')}@example.org", [knowledge_offer])
            text = f"Geleerd: plannen ({answer} {p})"
            await give_feedback(http, reg, signup, knowledge, knowledge_offer, text)
            learned[text] = (answer, p)
    for item in (await admin.call("GET", "registration", f"/editions/{knowledge}/knowledge-items", 200)).json():
        answer, p = learned[item["learned"]]
        per[answer][p] = item["feedback_id"]

    # People: a sign-up per principal to edit, rows to import; an edition whose deadline passed.
    people = await admin.edition(unique("bola-people"))
    people_offer = await admin.offer(people, f"{people}-bakery", capacity=50)
    late = await admin.edition(unique("bola-late"), signup_deadline=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
                               starts_on=str(today + timedelta(days=30)), ends_on=str(today + timedelta(days=34)))
    late_offer = await admin.offer(late, f"{late}-bakery", capacity=50, date=str(today + timedelta(days=31)))
    await admin.offer(people, f"{people}-hook")  # an OfferPublished for the webhook
    for p in PRINCIPALS:
        per["patch"][p] = await admin.signup(people, f"Bewerk {p}", f"{unique(p.lower())}@example.org", [people_offer])
        per["admit_email"][p] = f"{unique('laat-' + p.lower())}@example.org"
        per["import_offer"][p] = unique(f"{people}-imp-{p.lower()}")
        per["import_email"][p] = f"{unique('imp-' + p.lower())}@example.org"
        per["leg"][p] = unique(f"bola-leg-{p.lower()}")
        per["webhook_new"][p] = unique(f"bola-hook-{p.lower()}")
        r = await admin.call("POST", "notifications", "/webhooks", 201, json={
            "url": "http://127.0.0.1:9/bola", "event_types": ["SignupRefused"], "description": f"delete me ({p})",
            "region": "twente"})
        per["webhook_del"][p] = r.json()["id"]

    # Overrides: an edition known to matching, a sign-up per principal choosing both offers; the set-up
    # forbids each the second offer (the cells remove those), the cells forbid the first.
    overrides = await admin.edition(unique("bola-overrides"))
    offers = [await admin.offer(overrides, f"{overrides}-{n}", capacity=50) for n in ("one", "two")]
    for p in PRINCIPALS:
        per["override_signup"][p] = await admin.signup(overrides, f"O {p}", f"{unique(p.lower())}@example.org", offers)
    await admin.known_to_matching(overrides, len(PRINCIPALS))
    for p in PRINCIPALS:
        r = await admin.call("POST", "matching", f"/editions/{overrides}/overrides", 201, json={
            "signup_id": per["override_signup"][p], "offer_id": offers[1], "kind": "forbid", "reason": "set-up"})
        per["override_del"][p] = r.json()["id"]

    async def a_delivery() -> str | None:
        found = (await admin.call("GET", "notifications", f"/webhooks/{webhook}/deliveries", 200)).json()
        return found[0]["id"] if found else None

    delivery = await until(a_delivery, f"a delivery to webhook {webhook}")
    main_runs = len((await admin.call("GET", "matching", f"/editions/{main}/match-runs", 200)).json())
    return Tools(relay=Relay(first, second, third, position + 3, today + timedelta(days=5)), knowledge=knowledge,
                 people=people, people_offer=people_offer, late=late, late_offer=late_offer, overrides=overrides,
                 override_offer=offers[0], webhook=webhook, delivery=delivery,
                 main_runs=main_runs)


def _openapi(url: str, admin_key: str) -> dict:
    r = httpx.get(f"{url}/openapi.json", timeout=10)
    if r.status_code in (401, 403):
        r = httpx.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
    assert r.status_code == 200, f"{url}/openapi.json: {r.status_code}"
    return r.json()


def test_every_served_route_is_in_the_table(urls: dict[str, str], keys: dict[str, str]) -> None:
    served: set[Route] = set()
    for service, url in urls.items():
        for path, operations in _openapi(url, keys["admin"]).get("paths", {}).items():
            served |= {(service, method.upper(), path) for method in operations
                       if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace")}
    missing = sorted(served - set(EXPECTED))
    stale = sorted(set(EXPECTED) - served)
    assert not missing and not stale, (
        "the BOLA table must list exactly the served routes:\n"
        + "".join(f"  served but not in the table (add a row, by hand): {r}\n" for r in missing)
        + "".join(f"  in the table but not served (spec route missing, or remove the row): {r}\n" for r in stale)
    )


# --- the matrix ------------------------------------------------------------------------------------
def _headers(principal: str, keys: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[principal]}"} if principal in keys else {}


def test_bola_matrix(urls: dict[str, str], keys: dict[str, str], world: World, record_property) -> None:  # noqa: ANN001
    mismatches: list[str] = []
    with httpx.Client(timeout=30) as http:
        for route, expected in EXPECTED.items():
            service, method, template = route
            for principal in EXEC_ORDER:
                form = None
                if route in LINKS:
                    resource = LINKS[route](world)
                    path, body = template.replace("{token}", resource.token(principal)), None
                    form = resource.form if method == "POST" else None
                else:
                    path, body = TARGETS[route](world, principal)
                headers, content = _headers(principal, keys), None
                if isinstance(body, Raw):
                    body, content, headers = None, body.content, {**headers, "Content-Type": body.content_type}
                try:  # anon and link principals send no Authorization header
                    with http.stream(method, urls[service] + path, json=body, data=form, content=content, headers=headers) as r:
                        # a stream of server-sent events never ends: its status and headers are the answer
                        text = "(event stream)" if r.headers.get("content-type", "").startswith("text/event-stream") else r.read().decode(errors="replace")
                    got, detail = r.status_code, re.sub(r"\s+", " ", text)[:160]
                except httpx.HTTPError as exc:
                    got, detail = 0, repr(exc)
                if got != expected[principal]:
                    mismatches.append(f"{service:13} {method:6} {template:58} {principal:5} expected {expected[principal]} "
                                      f"got {got}: {detail}")
        mismatches += _scoping_of_lists(http, urls, keys, world)
        mismatches += _effects(http, urls, keys["admin"], world)
        mismatches += _effects_of_tools(http, urls, keys["admin"], world)
        mismatches += _answered_again(http, urls, keys["orgA"], world)

    print(f"\nBOLA matrix: {len(EXPECTED)} routes x {len(PRINCIPALS)} principals = {CELLS} cells")
    record_property("bola_cells", CELLS)
    assert not mismatches, f"{len(mismatches)} of {CELLS} BOLA cells (+ list checks) differ from the spec:\n" + "\n".join(mismatches)


def _scoping_of_lists(http: httpx.Client, urls: dict[str, str], keys: dict[str, str], w: World) -> list[str]:
    """Beyond the status: lists show only what the caller may see, and organiser B is refused region A's
    resources because of the region (B's own edition answers 200), not because B's key is broken."""
    problems: list[str] = []

    def get(service: str, path: str, principal: str) -> httpx.Response:
        return http.get(urls[service] + path, headers=_headers(principal, keys))

    for service, path in (("matching", f"/editions/{w.edition_b}"), ("reporting", f"/reports/editions/{w.edition_b}")):
        if (r := get(service, path, "orgB")).status_code != 200:
            problems.append(f"list check: orgB GET {service} {path} (own region) expected 200 got {r.status_code}")
    r = get("notifications", f"/notifications?edition={w.main.edition_id}", "orgB")
    if r.status_code == 200 and r.json()["items"]:
        problems.append(f"list check: orgB sees {len(r.json()['items'])} notifications of a twente edition")
    for principal, region in (("orgA", "twente"), ("orgB", "groningen")):
        r = get("notifications", "/notifications?limit=1000", principal)
        if r.status_code == 200 and (others := {i["region"] for i in r.json()["items"]} - {region}):
            problems.append(f"list check: {principal} GET /notifications shows regions {sorted(others)}")
        r = get("reporting", "/reports/regions", principal)
        if r.status_code == 200 and (others := {row["region"] for row in r.json()["regions"]} - {region}):
            problems.append(f"list check: {principal} GET /reports/regions shows regions {sorted(others)}")
    for principal, region in (("orgA", "twente"), ("orgB", "groningen")):
        r = get("notifications", "/webhooks", principal)
        if r.status_code == 200 and (others := {w["region"] for w in r.json()} - {region}):
            problems.append(f"list check: {principal} GET /webhooks shows regions {sorted(others)}")
    # Public outputs of issues 10 and 11 carry no personal data (the set-up's addresses are all @example.org).
    for service, path in (("registration", "/relay/legs"), ("registration", f"/editions/{w.tools.people}/recommendations"),
                          ("reporting", "/relay"), ("reporting", "/relay/feed.json"), ("reporting", "/relay/feed.atom"),
                          ("reporting", "/feeds/dashboard")):
        if "@example.org" in (r := get(service, path, "anon")).text:
            problems.append(f"list check: anon GET {service} {path} shows an e-mail address")
    r = get("reporting", "/reports/regions", "natl")
    if r.status_code == 200 and not {"twente", "groningen"} <= {row["region"] for row in r.json()["regions"]}:
        problems.append("list check: natl GET /reports/regions does not show every region")
    return problems


def _acted(route: Route, principal: str) -> bool:
    """Whether the cell must have changed something: its (hand-written) expected status is 2xx."""
    return 200 <= EXPECTED[route][principal] < 300


def _effects(http: httpx.Client, urls: dict[str, str], admin_key: str, w: World) -> list[str]:
    """Beyond the status: the cells that must act did, the others changed nothing."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    problems: list[str] = []

    def expect(what: str, got: object, expected: object) -> None:
        if got != expected:
            problems.append(f"effect: {what}: expected {expected!r}, got {got!r}")

    def registration(path: str) -> httpx.Response:
        return http.get(urls["registration"] + path, headers=auth)

    per = w.per_principal
    offers = {o["id"]: o["status"] for o in registration(f"/editions/{w.scratch}/offers").json()}
    for p in PRINCIPALS:
        made = _acted(("registration", "POST", "/editions"), p)
        expect(f"edition made by {p}", registration(f"/editions/{per['new_edition'][p]}").status_code, 200 if made else 404)
        closed = _acted(("registration", "POST", "/editions/{edition_id}/close"), p)
        expect(f"edition closed by {p}", registration(f"/editions/{per['close'][p]}").json().get("status"),
               "closed" if closed else "open")
        cancelled = _acted(("registration", "POST", "/editions/{edition_id}/cancel"), p)
        expect(f"edition cancelled by {p}", registration(f"/editions/{per['cancel'][p]}").json().get("status"),
               "cancelled" if cancelled else "open")
        expect(f"offer published by {p}", offers.get(per["new_offer"][p]),
               "published" if _acted(("registration", "POST", "/editions/{edition_id}/offers"), p) else None)
        expect(f"offer cancelled by {p}", offers.get(per["offer"][p]),
               "cancelled" if _acted(("registration", "DELETE", "/editions/{edition_id}/offers/{offer_id}"), p) else "published")
        runs = http.get(f"{urls['matching']}/editions/{per['run'][p]}/match-runs", headers=auth).json()
        expect(f"match runs started by {p}", len(runs), int(_acted(("matching", "POST", "/editions/{edition_id}/match-runs"), p)))
    withdrawn = sum(_acted(("registration", "DELETE", "/editions/{edition_id}/signups/{signup_id}"), p) for p in PRINCIPALS)
    signed_up = sum(_acted(("registration", "POST", "/editions/{edition_id}/signups"), p) for p in PRINCIPALS)
    expect("sign-ups left in the scratch edition", registration(f"/editions/{w.scratch}").json().get("signups"),
           len(PRINCIPALS) - withdrawn + signed_up)
    expect("sign-ups left after X and Y withdrew through their links",
           registration(f"/editions/{w.withdraw_link.edition_id}").json().get("signups"), 0)

    def states(edition: SeatOfferEdition) -> list[str | None]:
        r = http.get(f"{urls['matching']}/editions/{edition.edition_id}/seat-offers", headers=auth)
        found = {o["signup_id"]: o["state"] for o in r.json()["seat_offers"]}
        return [found.get(s) for s in edition.holders]

    expect("X's and Y's seat offers after only looking at the pages", states(w.main), ["open", "open"])
    expect("seat offers accepted through links (X, Y)", states(w.accept_link), ["accepted", "accepted"])
    expect("seat offers declined through links (X, Y)", states(w.decline_link), ["declined", "declined"])
    expect("seat offers accepted by orgA (X) and admin (Y)", states(w.accept_org), ["accepted", "accepted"])
    expect("seat offers declined by orgA (X) and admin (Y)", states(w.decline_org), ["declined", "declined"])
    return problems


def _effects_of_tools(http: httpx.Client, urls: dict[str, str], admin_key: str, w: World) -> list[str]:
    """The effects of the rows of issues 10 and 11: the cells that must act did, the others changed nothing."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    problems: list[str] = []
    per, tools = w.per_principal, w.tools

    def expect(what: str, got: object, expected: object) -> None:
        if got != expected:
            problems.append(f"effect: {what}: expected {expected!r}, got {got!r}")

    def get(service: str, path: str) -> object:
        r = http.get(urls[service] + path, headers=auth)
        return r.json() if r.status_code == 200 else f"{r.status_code} {r.text[:200]}"

    def acted(method: str, service: str, path: str, p: str) -> bool:
        return _acted((service, method, path), p)

    legs = {leg["id"]: leg for leg in httpx.get(f"{urls['registration']}/relay/legs", timeout=10).json()}
    relay = tools.relay
    expect("relay leg A after the early hand-overs (status, early, to)",
           [legs[relay.first][k] for k in ("status", "early", "to_leg_id")], ["handed_over", True, relay.second])
    expect("relay leg B after the early hand-overs (status, early, to)",
           [legs[relay.second][k] for k in ("status", "early", "to_leg_id")], ["handed_over", True, relay.third])
    expect("relay leg C after the early hand-overs", legs[relay.third]["status"], "holding")

    runs = get("matching", f"/editions/{w.main.edition_id}/match-runs")
    expect("match runs of the main edition after the previews (they write nothing)", len(runs) if isinstance(runs, list) else runs, tools.main_runs)

    moderated = {status: {i["feedback_id"] for i in get("registration", f"/editions/{tools.knowledge}/knowledge-items?status={status}")}
                 for status in ("pending", "approved", "rejected")}
    overrides = get("matching", f"/editions/{tools.overrides}/overrides")
    overrides = overrides if isinstance(overrides, list) else []
    live = {(o["signup_id"], o["offer_id"]) for o in overrides} if isinstance(overrides, list) else set()
    offers = {o["id"] for o in get("registration", f"/editions/{tools.people}/offers")}
    hooks = {h["description"] for h in get("notifications", "/webhooks")}
    for p in PRINCIPALS:
        expect(f"relay leg planned by {p}", per["leg"][p] in legs, acted("PUT", "registration", "/relay/legs/{leg_id}", p))
        for answer, status in (("approve", "approved"), ("reject", "rejected")):
            done = acted("POST", "registration", f"/editions/{{edition_id}}/knowledge-items/{{feedback_id}}/{answer}", p)
            expect(f"knowledge item {p} was to {answer} is {status}", per[answer][p] in moderated[status], done)
            expect(f"knowledge item {p} was to {answer} is pending", per[answer][p] in moderated["pending"], not done)
        person = get("registration", f"/editions/{tools.people}/people/{per['patch'][p]}")
        expect(f"learning goal edited by {p}", person.get("learning_goal") if isinstance(person, dict) else person,
               f"Leren plannen ({p})" if acted("PATCH", "registration", "/editions/{edition_id}/people/{signup_id}", p) else "")
        admitted = get("registration", f"/editions/{tools.late}/people?q={per['admit_email'][p]}")["people"]
        expect(f"people admitted late by {p}", len(admitted), int(acted("POST", "registration", "/editions/{edition_id}/people", p)))
        if admitted:
            history = get("registration", f"/editions/{tools.late}/people/{admitted[0]['signup_id']}")["history"]
            expect(f"late admission by {p} audited", [(h["kind"], h["reason"]) for h in history if h["kind"] == "LateAdmission"],
                   [("LateAdmission", f"ziek geweest ({p})")])
        expect(f"offer imported by {p}", per["import_offer"][p] in offers,
               acted("POST", "registration", "/editions/{edition_id}/imports/offers", p))
        imported = get("registration", f"/editions/{tools.people}/people?q={per['import_email'][p]}")["people"]
        expect(f"sign-ups imported by {p}", len(imported), int(acted("POST", "registration", "/editions/{edition_id}/imports/signups", p)))
        expect(f"override made by {p}", (per["override_signup"][p], tools.override_offer) in live,
               acted("POST", "matching", "/editions/{edition_id}/overrides", p))
        expect(f"override removed by {p} is still live", any(o["id"] == per["override_del"][p] for o in overrides),
               not acted("DELETE", "matching", "/editions/{edition_id}/overrides/{override_id}", p))
        expect(f"webhook registered by {p}", per["webhook_new"][p] in hooks, acted("POST", "notifications", "/webhooks", p))
        expect(f"webhook deleted by {p} is still live", f"delete me ({p})" in hooks,
               not acted("DELETE", "notifications", "/webhooks/{endpoint_id}", p))
    return problems


def _answered_again(http: httpx.Client, urls: dict[str, str], org_a_key: str, w: World) -> list[str]:
    """After the cells: X's links used again (the spec: withdraw again → 200, nothing changes; the same
    answer again → 200 "already"; the other answer to a seat offer that is no longer open → 409 page),
    and organiser A answering X's seat offer again (409)."""
    def link(edition: SeatOfferEdition | LinkResource, purpose: str) -> str:
        x = edition.x if isinstance(edition, LinkResource) else edition.holders[0]
        return Infra.link(purpose, x, edition.edition_id)

    reg, matching = urls["registration"], urls["matching"]
    cases = [
        ("withdraw again", f"{reg}/links/signup/{link(w.withdraw_link, 'signup')}/withdraw", {}, 200),
        ("accept again", f"{matching}/links/seat-offers/{link(w.accept_link, 'seat_offer_accept')}/accept", {}, 200),
        ("decline after accepting", f"{matching}/links/seat-offers/{link(w.accept_link, 'seat_offer_decline')}/decline", {}, 409),
        ("decline again", f"{matching}/links/seat-offers/{link(w.decline_link, 'seat_offer_decline')}/decline", {}, 200),
        ("accept after declining", f"{matching}/links/seat-offers/{link(w.decline_link, 'seat_offer_accept')}/accept", {}, 409),
        ("orgA accepts X's accepted seat offer again",
         f"{matching}/editions/{w.accept_org.edition_id}/seat-offers/{w.accept_org.holders[0]}/accept",
         {"Authorization": f"Bearer {org_a_key}"}, 409),
    ]
    return [f"again: {what}: expected {status}, got {got}"
            for what, url, headers, status in cases if (got := http.post(url, headers=headers).status_code) != status]


def test_ids_of_region_a_under_an_edition_of_region_b(urls: dict[str, str], keys: dict[str, str], world: World) -> None:
    """Organiser B names their own edition in the path and region A's ids after it: unknown (404), and
    nothing changes (X's seat offer stays open)."""
    b, x, main = world.edition_b, world.x, world.main
    auth = {"Authorization": f"Bearer {keys['orgB']}"}
    probes = [
        ("DELETE", "registration", f"/editions/{b}/signups/{x}"),
        ("DELETE", "registration", f"/editions/{b}/offers/{main.offer_id}"),
        ("POST", "matching", f"/editions/{b}/seat-offers/{x}/accept"),
        ("POST", "matching", f"/editions/{b}/seat-offers/{x}/decline"),
    ]
    answers = {f"{m} {svc} {path}": httpx.request(m, urls[svc] + path, headers=auth, timeout=10).status_code
               for m, svc, path in probes}
    assert answers == dict.fromkeys(answers, 404)
    r = httpx.get(f"{urls['matching']}/editions/{main.edition_id}/seat-offers", timeout=10,
                  headers={"Authorization": f"Bearer {keys['admin']}"})
    assert {o["signup_id"]: o["state"] for o in r.json()["seat_offers"]}[x] == "open"


def test_another_regions_resource_looks_unknown(urls: dict[str, str], keys: dict[str, str], world: World) -> None:
    """Organiser B's 404 for region A's resource is the answer to an id that does not exist (same error
    code, same message but for the id), so ids of other regions cannot be probed."""
    main, unknown_edition, unknown_uuid = world.main, unique("bola-none"), str(uuid.uuid4())
    cases = [  # (method, service, path of region A's resource, the same path with an unknown id, the id)
        ("GET", "matching", f"/editions/{main.edition_id}", f"/editions/{unknown_edition}", main.edition_id),
        ("GET", "matching", f"/editions/{main.edition_id}/assignments", f"/editions/{unknown_edition}/assignments", main.edition_id),
        ("GET", "matching", f"/match-runs/{main.run_id}", f"/match-runs/{unknown_uuid}", main.run_id),
        ("GET", "notifications", f"/notifications/{world.notification_x}", f"/notifications/{unknown_uuid}", world.notification_x),
        ("GET", "reporting", f"/reports/editions/{main.edition_id}", f"/reports/editions/{unknown_edition}", main.edition_id),
        ("POST", "registration", f"/editions/{main.edition_id}/offers", f"/editions/{unknown_edition}/offers", main.edition_id),
    ]
    differ = []
    for method, service, path, unknown_path, resource_id in cases:
        body = {"id": unique("o"), "host_org": "h", "title": "T", "date": "2099-06-01", "capacity": 1} if method == "POST" else None
        theirs = httpx.request(method, urls[service] + path, json=body, timeout=10,
                               headers={"Authorization": f"Bearer {keys['orgB']}"})
        none = httpx.request(method, urls[service] + unknown_path, json=body, timeout=10,
                             headers={"Authorization": f"Bearer {keys['admin']}"})
        unknown_id = unknown_edition if unknown_edition in unknown_path else unknown_uuid
        shown = (theirs.status_code, theirs.json().get("error"), str(theirs.json().get("message")).replace(resource_id, "ID"))
        unknown = (none.status_code, none.json().get("error"), str(none.json().get("message")).replace(unknown_id, "ID"))
        if shown != unknown:
            differ.append(f"{method} {service} {path}: orgB gets {shown}, an unknown id gets {unknown}")
    assert not differ, "\n".join(differ)


def test_link_tokens_are_bound_to_their_purpose(urls: dict[str, str], world: World) -> None:
    """X's decline token does not open the accept page, nor X's sign-up token a seat-offer page."""
    main = world.main
    decline = Infra.link("seat_offer_decline", main.holders[0], main.edition_id)
    signup = Infra.link("signup", main.holders[0], main.edition_id)
    accept = Infra.link("seat_offer_accept", main.holders[0], main.edition_id)
    answers = {
        "decline token on accept": httpx.get(f"{urls['matching']}/links/seat-offers/{decline}/accept", timeout=10).status_code,
        "signup token on accept": httpx.get(f"{urls['matching']}/links/seat-offers/{signup}/accept", timeout=10).status_code,
        "accept token on the sign-up page": httpx.get(f"{urls['registration']}/links/signup/{accept}", timeout=10).status_code,
    }
    assert answers == dict.fromkeys(answers, 404)

