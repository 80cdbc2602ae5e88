"""Issue 9 over HTTP in process (fake unit of work, fixed clock): cancelling an edition, editing offers,
organisations, sign-ups with consent in the edition's languages, and the pages behind the links — my
sign-up (placement, seat offer links, changing choices), approval and feedback. A GET never acts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import unquote

import httpx
import pytest
from prometheus_client import CollectorRegistry

from estafette.runtime.auth import Links
from estafette.runtime.clock import Clock
from schemas import (
    EditionCancelled,
    FeedbackSubmitted,
    NotificationRequested,
    OfferChanged,
    SignupApproved,
    SignupChanged,
    SignupRefused,
)
from services.registration import domain
from services.registration.api import RegistrationMetrics, build_api
from services.registration.config import RegistrationSettings
from tests.unit.fakes import FakeAuthenticator
from tests.unit.registration.builders import EDITION_ID, NOW, edition, offer, organisation, registry, signup
from tests.unit.registration.fakes import FakeRegistrationUow, FakeRepository
from tests.unit.registration.test_api import KEYS, PUBLIC_URL, SECRET, bearer

MATCHING_URL = "https://estafette.example/matching"
HOST = domain.Contact("Henk Host", "henk@example.org", "nl")


@pytest.fixture
def uow() -> FakeRegistrationUow:
    offers = (
        offer("o1", title="Bakkerij", location="Markt 1, Enschede", part_of_day="morning", starts_at=time(9),
              ends_at=time(12, 30), what_to_bring="Schort", host_contact=HOST),
        offer("o2", host_org="host-b", title="Digitale Führung", attendance="online", join_url="https://meet.example/abc"),
        offer("o-nl", edition_id="e-nl"),
    )
    signups = (
        signup("s1"),
        signup("s-de", email="de@example.org", language="de", choices=["o1", "o2"]),
        signup("s-ap", email="ap@example.org", approval="pending", learning_goal="Brood bakken", org="org-z"),
    )
    return FakeRegistrationUow(FakeRepository(
        (edition(themes=["food"]), edition(id="e-nl", languages=["nl"], requires_approval=True)),
        offers, signups, (organisation(),),
    ))


@pytest.fixture
def clock() -> Clock:
    return Clock(fixed_now=NOW)


@pytest.fixture
async def client(uow, clock):  # noqa: ANN001, ANN201
    config = RegistrationSettings(public_url=PUBLIC_URL, matching_public_url=MATCHING_URL, link_max_age_hours=1)
    links = Links(SECRET, clock)
    api = build_api(uow, RegistrationMetrics(CollectorRegistry()), links, config, registry(), clock=clock)  # type: ignore[arg-type]
    api.state.auth = FakeAuthenticator(KEYS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://registration") as c:
        yield c


def token(clock: Clock, purpose: str, signup_id: str, ref: str | None = None, edition_id: str = EDITION_ID) -> str:
    return Links(SECRET, clock).make(purpose, signup_id, edition_id, ref=ref)


# --- editions, offers, organisations --------------------------------------------------------------
async def test_cancel_needs_a_reason_and_announces_once(client, uow):
    r = await client.post(f"/editions/{EDITION_ID}/cancel", json={}, headers=bearer("key-a"))
    assert (r.status_code, r.json()["field"]) == (422, "reason")
    r = await client.post(f"/editions/{EDITION_ID}/cancel", json={"reason": "   "}, headers=bearer("key-a"))
    assert r.status_code == 422
    for _ in range(2):
        r = await client.post(f"/editions/{EDITION_ID}/cancel", json={"reason": "Corona"}, headers=bearer("key-a"))
        assert r.status_code == 204, r.text
    assert [e.reason for e in uow.of_type(EditionCancelled)] == ["Corona"]
    assert (await client.get(f"/editions/{EDITION_ID}")).json()["status"] == "cancelled"
    r = await client.post(f"/editions/{EDITION_ID}/signups", json={"org": "o", "name": "A", "email": "a@example.org",
                                                                   "choices": ["o1"], "consent": True})
    assert (r.status_code, r.json()["error"]) == (409, "edition_cancelled")
    r = await client.patch(f"/editions/{EDITION_ID}/offers/o1", json={"capacity": 2}, headers=bearer("key-a"))
    assert (r.status_code, r.json()["error"]) == (409, "edition_cancelled")


async def test_an_offer_edit_answers_the_offer_and_announces_what_changed(client, uow):
    r = await client.patch(f"/editions/{EDITION_ID}/offers/o1", json={"starts_at": "10:00", "ends_at": None, "capacity": 4},
                           headers=bearer("key-a"))
    assert r.status_code == 200, r.text
    assert (r.json()["sequence"], r.json()["starts_at"], r.json()["ends_at"]) == (1, "10:00:00", None)
    assert r.json()["host_contact"] == {"name": "Henk Host", "email": "henk@example.org", "language": "nl"}
    [event] = uow.of_type(OfferChanged)
    assert event.changed == ["starts_at", "ends_at"]
    same = await client.patch(f"/editions/{EDITION_ID}/offers/o1", json={"capacity": 4}, headers=bearer("key-a"))
    assert same.status_code == 200 and same.json()["sequence"] == 1 and len(uow.published) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"title": None}, "title"), ({"capacity": 0}, "capacity"), ({"join_url": "javascript:alert(1)"}, "join_url"),
     ({"host_org": "x"}, "host_org"), ({"themes": ["a b"]}, "themes.0")],
)
async def test_an_offer_edit_is_checked(client, uow, body, field):
    r = await client.patch(f"/editions/{EDITION_ID}/offers/o1", json=body, headers=bearer("key-a"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert uow.published == []


async def test_the_public_offer_list_has_no_host_contacts(client):
    r = await client.get(f"/editions/{EDITION_ID}/offers")
    assert r.status_code == 200
    assert all("host_contact" not in o for o in r.json())
    assert r.json()[0]["part_of_day"] == "morning"


async def test_an_offer_with_an_unknown_theme_is_refused_naming_it(client):
    body = {"host_org": "h", "title": "t", "date": "2027-06-01", "capacity": 1, "themes": ["food", "sport"]}
    r = await client.post(f"/editions/{EDITION_ID}/offers", json=body, headers=bearer("key-a"))
    assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, "unknown_theme", "themes.1")


async def test_organisations_are_for_organisers(client):
    body = {"id": "org-y", "name": "Gemeente Hengelo", "contact": {"name": "Carla", "email": "c@example.org", "language": "de"}}
    assert (await client.post(f"/editions/{EDITION_ID}/organisations", json=body)).status_code == 401
    r = await client.post(f"/editions/{EDITION_ID}/organisations", json=body, headers=bearer("key-a"))
    assert r.status_code == 201 and r.json()["contact"]["language"] == "de"
    r = await client.post(f"/editions/{EDITION_ID}/organisations", json=body, headers=bearer("key-a"))
    assert (r.status_code, r.json()["error"]) == (409, "organisation_exists")
    r = await client.get(f"/editions/{EDITION_ID}/organisations", headers=bearer("key-a"))
    assert [o["id"] for o in r.json()] == ["org-y", "org-z"]
    assert (await client.get(f"/editions/{EDITION_ID}/organisations", headers=bearer("key-n"))).status_code == 403
    assert (await client.get(f"/editions/{EDITION_ID}/organisations", headers=bearer("key-b"))).status_code == 404


# --- sign-ups ---------------------------------------------------------------------------------------
SIGNUP = {"org": "org-z", "name": "Nieuw", "email": "nieuw@example.org", "choices": ["o1"], "consent": True}
SIGNUP_NL = {**SIGNUP, "choices": ["o-nl"]}


@pytest.mark.parametrize(
    ("path", "body", "code", "field"),
    [(f"/editions/{EDITION_ID}/signups", {**SIGNUP, "consent": False}, "consent_required", "consent"),
     (f"/editions/{EDITION_ID}/signups", {k: v for k, v in SIGNUP.items() if k != "consent"}, "consent_required", "consent"),
     ("/editions/e-nl/signups", {**SIGNUP_NL, "language": "en"}, "language_not_offered", "language")],
)
async def test_a_signup_needs_consent_and_a_language_of_the_edition(client, uow, path, body, code, field):
    r = await client.post(path, json=body)
    assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, code, field)
    assert uow.published == []


async def test_a_signup_is_taken_at_the_platform_clocks_time_and_may_wait_for_approval(client, uow, clock):
    clock.advance(timedelta(hours=5))
    r = await client.post(f"/editions/{EDITION_ID}/signups", json={**SIGNUP, "learning_goal": "Deeg"})
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["signed_up_at"]) == NOW + timedelta(hours=5)
    assert r.json()["approval"] == "not_required"
    r = await client.post("/editions/e-nl/signups", json={**SIGNUP_NL, "email": "x@example.org", "org": "org-q"})
    assert r.status_code == 422 and r.json()["error"] == "unknown_organisation"


async def test_the_approval_request_carries_a_working_approval_link(client, uow):
    uow.repo.organisation_rows["e-nl", "org-z"] = organisation(edition_id="e-nl")
    r = await client.post("/editions/e-nl/signups", json=SIGNUP_NL)
    assert r.status_code == 201 and r.json()["approval"] == "pending"
    [request] = uow.of_type(NotificationRequested)
    url = str(request.context["approval_url"])
    assert url.startswith(f"{PUBLIC_URL}/links/approval/")
    page = await client.get(url.removeprefix(PUBLIC_URL))
    assert page.status_code == 200 and "Nieuw" in page.text and '<html lang="de">' in page.text


# --- the approval page ------------------------------------------------------------------------------
async def test_the_approval_page_shows_the_signup_and_only_a_post_answers(client, uow, clock):
    t = token(clock, "approval", "s-ap", ref="org-z")
    r = await client.get(f"/links/approval/{t}")
    assert r.status_code == 200 and r.headers["content-language"] == "de"  # the contact's language
    assert "Anna de Vries" in r.text and "Brood bakken" in r.text and "Bakkerij" in r.text
    assert f'action="{t}/approve"' in r.text and f'action="{t}/refuse"' in r.text and 'name="reason"' in r.text
    assert uow.published == []
    for _ in range(2):
        r = await client.post(f"/links/approval/{t}/approve")
        assert r.status_code == 200 and "Du hast diese Anmeldung genehmigt" in r.text and "<form" not in r.text
    assert [e.signup_id for e in uow.of_type(SignupApproved)] == ["s-ap"]
    r = await client.post(f"/links/approval/{t}/refuse", data={"reason": "nee"})
    assert r.status_code == 409 and "bereits entschieden" in r.text
    assert uow.of_type(SignupRefused) == []


async def test_refusing_through_the_link_takes_a_reason(client, uow, clock):
    t = token(clock, "approval", "s-ap", ref="org-z")
    r = await client.post(f"/links/approval/{t}/refuse", data={"reason": "Te druk deze week"})
    assert r.status_code == 200 and "abgelehnt" in r.text
    assert [e.reason for e in uow.of_type(SignupRefused)] == ["Te druk deze week"]
    r = await client.post(f"/links/approval/{t}/approve")
    assert r.status_code == 409 and uow.of_type(SignupApproved) == []


@pytest.mark.parametrize(("purpose", "ref"), [("approval", "org-y"), ("signup", "org-z")])
async def test_an_approval_link_of_another_organisation_or_purpose_is_not_valid(client, uow, clock, purpose, ref):
    t = token(clock, purpose, "s-ap", ref=ref)
    for method, path in (("GET", f"/links/approval/{t}"), ("POST", f"/links/approval/{t}/approve")):
        r = await client.request(method, path)
        assert r.status_code == 404 and "This link is not valid" in r.text
    assert uow.published == []


# --- my sign-up -------------------------------------------------------------------------------------
async def test_my_signup_shows_where_and_when_once_assigned(client, uow, clock):
    uow.repo.placement_rows["s1"] = domain.Placement("s1", "assigned", NOW, offer_id="o1", rank=1)
    t = token(clock, "signup", "s1")
    r = await client.get(f"/links/signup/{t}")
    assert r.status_code == 200
    for text in ("Waar en wanneer", "Je hebt een plaats bij Bakkerij", "Markt 1, Enschede", "ochtend, 09:00–12:30",
                 "Schort", "dinsdag 1 juni 2027"):
        assert text in r.text, text
    assert "Je keuzes wijzigen" not in r.text and "Je keuzes kunnen niet meer gewijzigd worden" in r.text
    assert f'action="{t}/withdraw"' in r.text and r.text.count("<button") == 1


async def test_an_online_visit_shows_its_join_link(client, uow, clock):
    uow.repo.placement_rows["s-de"] = domain.Placement("s-de", "assigned", NOW, offer_id="o2", rank=2)
    r = await client.get(f"/links/signup/{token(clock, 'signup', 's-de')}")
    assert 'href="https://meet.example/abc"' in r.text and "Online teilnehmen" in r.text


async def test_an_open_seat_offer_links_to_matchings_pages_and_the_waiting_position_shows(client, uow, clock):
    expires = NOW + timedelta(days=2)
    uow.repo.placement_rows["s1"] = domain.Placement("s1", "offered", NOW, position=2, seat_offer_id="o2",
                                                     seat_offer_rank=2, seat_offer_expires_at=expires)
    r = await client.get(f"/links/signup/{token(clock, 'signup', 's1')}")
    assert "op plaats 2" in r.text and "Er is een plaats voor je vrijgekomen" in r.text
    hrefs = [h.split('"')[0] for h in r.text.split('href="')[1:]]
    for answer in ("accept", "decline"):
        [href] = [h for h in hrefs if h.endswith(f"/{answer}")]
        assert href.startswith(f"{MATCHING_URL}/links/seat-offers/")
        claims = Links(SECRET, clock).read(unquote(href.split("/")[-2]), f"seat_offer_{answer}", 60)
        assert (claims.signup_id, claims.edition_id, claims.ref) == ("s1", EDITION_ID, "o2")
    clock.advance(timedelta(days=3))  # expired by the clock: no longer shown
    r = await client.get(f"/links/signup/{Links(SECRET, clock).make('signup', 's1', EDITION_ID)}")
    assert "Er is een plaats voor je vrijgekomen" not in r.text and "op plaats 2" in r.text


async def test_changing_choices_through_the_form(client, uow, clock):
    t = token(clock, "signup", "s1")
    page = (await client.get(f"/links/signup/{t}")).text
    assert '<select id="f1-choice_1" name="choice_1" required>' in page and '<label for="f1-choice_1">' in page
    r = await client.post(f"/links/signup/{t}/choices", data={"choice_1": "o2", "choice_2": "", "choice_3": "o1"})
    assert r.status_code == 200, r.text
    assert "Je nieuwe keuzes zijn opgeslagen" in r.text
    assert 'action="choices"' in r.text and 'action="withdraw"' in r.text  # relative to the POST's address
    [event] = uow.of_type(SignupChanged)
    assert event.choices == ["o2", "o1"]


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [({"choice_1": "o1", "choice_2": "o1"}, 422, "Je keuzes zijn niet gewijzigd"),
     ({"choice_1": ""}, 422, "Je keuzes zijn niet gewijzigd"),
     ({"choice_1": "o\x00"}, 422, "Je keuzes zijn niet gewijzigd")],
)
async def test_wrong_choices_are_refused_with_the_form_again(client, uow, clock, data, status, text):
    r = await client.post(f"/links/signup/{token(clock, 'signup', 's1')}/choices", data=data)
    assert r.status_code == status and text in r.text and 'role="alert"' in r.text
    assert uow.published == []


async def test_after_the_deadline_the_page_says_why_choices_no_longer_change(client, uow, clock):
    clock.set(edition().signup_deadline + timedelta(minutes=1))
    t = token(clock, "signup", "s1")
    page = await client.get(f"/links/signup/{t}")
    assert "de inschrijftermijn is verstreken" in page.text and "<select" not in page.text
    r = await client.post(f"/links/signup/{t}/choices", data={"choice_1": "o2"})
    assert r.status_code == 409 and "de inschrijftermijn is verstreken" in r.text
    assert uow.published == []


async def test_a_refused_signups_page_says_so(client, uow, clock):
    uow.repo.signup_rows["s1"] = signup("s1", status="refused", approval="refused")
    r = await client.get(f"/links/signup/{token(clock, 'signup', 's1')}")
    assert "Je inschrijving is niet goedgekeurd" in r.text and "<form" not in r.text


# --- feedback ---------------------------------------------------------------------------------------
async def test_the_feedback_form_is_accessible_and_a_get_changes_nothing(client, uow, clock):
    t = token(clock, "feedback", "s-de", ref="o1")
    r = await client.get(f"/links/feedback/{t}")
    assert r.status_code == 200 and r.headers["content-language"] == "de"
    page = r.text
    assert "<fieldset><legend>Wie war dein Besuch?</legend>" in page and page.count('type="radio" name="rating"') == 5
    assert '<label for="f1-learned">Was ich gelernt habe</label>' in page and 'maxlength="2000"' in page
    assert 'type="checkbox" id="f1-share_publicly"' in page and f'action="{t}"' in page
    assert "<script" not in page and 'name="viewport"' in page
    assert uow.published == []


async def test_feedback_is_given_once(client, uow, clock):
    t = token(clock, "feedback", "s-de", ref="o1")
    r = await client.post(f"/links/feedback/{t}", data={"rating": "5", "learned": "Viel über Brot", "share_publicly": "yes"})
    assert r.status_code == 200 and "Danke für dein Feedback" in r.text
    [event] = uow.of_type(FeedbackSubmitted)
    assert (event.rating, event.learned, event.share_publicly, event.language, event.submitted_at) == (5, "Viel über Brot", True, "de", NOW)
    r = await client.post(f"/links/feedback/{t}", data={"rating": "2"})
    assert r.status_code == 200 and "bereits erhalten" in r.text
    assert len(uow.of_type(FeedbackSubmitted)) == 1
    assert "bereits erhalten" in (await client.get(f"/links/feedback/{t}")).text


@pytest.mark.parametrize("data", [{}, {"rating": "6"}, {"rating": "3", "learned": "x" * 2001}, {"rating": "3", "learned": "a\x00b"}])
async def test_an_incomplete_feedback_form_comes_back(client, uow, clock, data):
    r = await client.post(f"/links/feedback/{token(clock, 'feedback', 's1', ref='o1')}", data=data)
    assert r.status_code == 422 and 'role="alert"' in r.text and 'name="rating"' in r.text
    assert uow.published == []


async def test_a_feedback_link_for_another_offer_or_purpose_is_not_valid(client, uow, clock):
    for t in (token(clock, "feedback", "s1", ref="o9"), token(clock, "signup", "s1")):
        r = await client.post(f"/links/feedback/{t}", data={"rating": "3"})
        assert r.status_code == 404
    assert uow.published == []
