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

import httpx
import pytest

from tests.e2e.portal import ENV, Portal, SeatOfferEdition, unique, until
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
    per_principal: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> principal -> id

    @property
    def x(self) -> str:
        return self.main.holders[0]


Call = tuple[str, dict | None]  # (path, JSON body)


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
    return World(main=main, accept_link=seat_editions[1], decline_link=seat_editions[2], accept_org=seat_editions[3],
                 decline_org=seat_editions[4], scratch=scratch, scratch_offer=scratch_offer,
                 withdraw_link=LinkResource("signup", withdraw, wx, wy),
                 choices_link=LinkResource("signup", choices, cx, cy, form={"choice_1": second}),
                 approve_link=approvals[0], refuse_link=approvals[1],
                 feedback_link=LinkResource("feedback", main.edition_id, main.holders[0], main.holders[1], ref=main.offer_id,
                                            form={"rating": "4", "learned": "Hoe een bakkerij plant."}),
                 edition_b=edition_b,
                 notification_x=notification_x, per_principal=per)


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
                try:  # anon and link principals send no Authorization header
                    r = http.request(method, urls[service] + path, json=body, data=form, headers=_headers(principal, keys))
                    got, detail = r.status_code, re.sub(r"\s+", " ", r.text)[:160]
                except httpx.HTTPError as exc:
                    got, detail = 0, repr(exc)
                if got != expected[principal]:
                    mismatches.append(f"{service:13} {method:6} {template:58} {principal:5} expected {expected[principal]} "
                                      f"got {got}: {detail}")
        mismatches += _scoping_of_lists(http, urls, keys, world)
        mismatches += _effects(http, urls, keys["admin"], world)
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

