"""Registration's part of the journey (issue 9) on the real platform (registration as a process, real
PostgreSQL and Kafka, a test clock): cancelling an edition is announced once; an offer edit is
announced with its sequence and what changed; an edition that requires approval asks the
organisation's contact (NotificationRequested with a working approval link) and the approval is
announced; a language the edition does not offer and a sign-up without consent are refused; what
matching tells a participant (match events on the region's matches topic) shows on "my sign-up";
changing choices is announced, and refused once the test clock passes the deadline; feedback is
announced once."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from urllib.parse import urlsplit

import httpx
import pytest

from estafette.runtime.auth import Links
from schemas import MatchAssigned, MatchWaitlisted, OfferSummary, SeatOffered
from schemas.topics import EDITIONS, FEEDBACK, NOTIFICATION_REQUESTS, OFFERS, SIGNUPS
from tests.integration.test_registration import records
from tests.support import LINK_SECRET, Infra, TestClock, eventually, services

pytestmark = pytest.mark.integration

REGION = "twente"
DEADLINE = datetime(2099, 4, 1, tzinfo=UTC)
EDITION = {"region": REGION, "name": "Journey week", "signup_deadline": DEADLINE.isoformat(), "starts_on": "2099-05-01",
           "ends_on": "2099-05-05", "languages": ["nl", "de"], "themes": ["food", "care"]}
MATCHING_URL = "http://matching.example"


@pytest.fixture(scope="module")
def registration(infra: Infra) -> Iterator[tuple[httpx.Client, TestClock]]:
    clock = TestClock(datetime.now(UTC))
    env = {**clock.env, "REGISTRATION_MATCHING_PUBLIC_URL": MATCHING_URL}
    with services(infra, "registration", extra_env=env) as svc, httpx.Client(base_url=svc["registration"].url, timeout=10) as http:
        yield http, clock


@pytest.fixture(scope="module")
def admin(infra: Infra) -> dict[str, str]:
    return {"Authorization": f"Bearer {infra.key('admin')}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def events(infra: Infra, topic: str, key: str) -> list[dict]:
    """The events under `key` on the region's `topic`, in order."""
    return [json.loads(v) for k, v in records(infra, topic) if k == key and v]


def open_edition(http: httpx.Client, admin: dict[str, str], **changes: object) -> str:
    edition = unique("jr")
    r = http.post("/editions", json={"id": edition, **EDITION, **changes}, headers=admin)
    assert r.status_code == 201, r.text
    return edition


def publish(http: httpx.Client, admin: dict[str, str], edition: str, host: str = "org-h", **changes: object) -> str:
    offer = {"id": unique("of"), "host_org": host, "title": "Bakery", "date": "2099-05-02", "capacity": 2,
             "location": "Markt 1, Enschede", "themes": ["food"], "part_of_day": "morning", "starts_at": "09:00",
             "ends_at": "12:00", "what_to_bring": "An apron", **changes}
    r = http.post(f"/editions/{edition}/offers", json=offer, headers=admin)
    assert r.status_code == 201, r.text
    return offer["id"]


def sign_up(http: httpx.Client, edition: str, choices: list[str], **changes: object) -> httpx.Response:
    body = {"org": "org-a", "name": "Anna de Vries", "email": f"{unique('anna')}@example.org", "language": "nl",
            "choices": choices, "consent": True, "learning_goal": "How bread is made", **changes}
    return http.post(f"/editions/{edition}/signups", json=body)


def local(url: str) -> str:
    """The path (and query) of a link the service made, to follow it on the test's client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_cancelling_an_edition_is_announced_once_and_then_refuses_changes(infra, registration, admin):
    http, _ = registration
    edition = open_edition(http, admin)
    offer = publish(http, admin, edition)
    assert http.post(f"/editions/{edition}/cancel", json={}, headers=admin).status_code == 422
    for _ in range(2):
        r = http.post(f"/editions/{edition}/cancel", json={"reason": "Corona"}, headers=admin)
        assert r.status_code == 204, r.text
    cancelled = eventually(lambda: [e for e in events(infra, EDITIONS.name_in(REGION), edition)
                                    if e["event_type"] == "EditionCancelled"], timeout=30)
    assert [(e["reason"], e["edition"]) for e in cancelled] == [("Corona", edition)]
    assert http.get(f"/editions/{edition}").json()["status"] == "cancelled"
    for r in (sign_up(http, edition, [offer]),
              http.patch(f"/editions/{edition}/offers/{offer}", json={"capacity": 3}, headers=admin),
              http.post(f"/editions/{edition}/offers", json={"host_org": "h", "title": "t", "date": "2099-05-02", "capacity": 1},
                        headers=admin)):
        assert (r.status_code, r.json()["error"]) == (409, "edition_cancelled"), r.text


def test_an_offer_edit_is_announced_with_its_sequence_and_what_changed(infra, registration, admin):
    http, _ = registration
    edition = open_edition(http, admin)
    offer = publish(http, admin, edition, host_contact={"name": "Henk", "email": "henk@example.org", "language": "de"})
    r = http.patch(f"/editions/{edition}/offers/{offer}", json={"starts_at": "10:00", "ends_at": "13:00", "title": "Bakery"},
                   headers=admin)
    assert r.status_code == 200 and r.json()["sequence"] == 1, r.text
    same = http.patch(f"/editions/{edition}/offers/{offer}", json={"capacity": 2}, headers=admin)
    assert same.status_code == 200 and same.json()["sequence"] == 1
    unknown_theme = http.patch(f"/editions/{edition}/offers/{offer}", json={"themes": ["sport"]}, headers=admin)
    assert (unknown_theme.status_code, unknown_theme.json()["error"], unknown_theme.json()["field"]) == (422, "unknown_theme", "themes.0")
    announced = eventually(lambda: (found := events(infra, OFFERS.name_in(REGION), offer)) and len(found) >= 2 and found,
                           timeout=30)
    assert [(e["event_type"], e["sequence"]) for e in announced] == [("OfferPublished", 0), ("OfferChanged", 1)]
    changed = announced[1]
    assert (changed["changed"], changed["starts_at"], changed["ends_at"]) == (["starts_at", "ends_at"], "10:00:00", "13:00:00")
    assert changed["host_contact"] == {"name": "Henk", "email": "henk@example.org", "language": "de"}
    assert changed["what_to_bring"] == "An apron" and changed["themes"] == ["food"]
    assert all("host_contact" not in o for o in http.get(f"/editions/{edition}/offers").json())


def test_a_language_the_edition_does_not_offer_and_a_signup_without_consent_are_refused(registration, admin):
    http, _ = registration
    edition = open_edition(http, admin)
    offer = publish(http, admin, edition)
    for changes, code, field in (({"language": "en"}, "language_not_offered", "language"),
                                 ({"consent": False}, "consent_required", "consent")):
        r = sign_up(http, edition, [offer], **changes)
        assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, code, field), r.text
    assert http.get(f"/editions/{edition}").json()["signups"] == 0


def test_the_approval_flow(infra, registration, admin):
    http, _ = registration
    edition = open_edition(http, admin, requires_approval=True)
    offer = publish(http, admin, edition)
    r = sign_up(http, edition, [offer])
    assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, "unknown_organisation", "org")
    contact = {"name": "Carla Chef", "email": "carla@example.org", "language": "de"}
    r = http.post(f"/editions/{edition}/organisations", json={"id": "org-a", "name": "Gemeente A", "contact": contact},
                  headers=admin)
    assert r.status_code == 201, r.text
    assert [o["id"] for o in http.get(f"/editions/{edition}/organisations", headers=admin).json()] == ["org-a"]

    r = sign_up(http, edition, [offer])
    assert r.status_code == 201 and r.json()["approval"] == "pending", r.text
    sid = r.json()["signup_id"]
    submitted = eventually(lambda: events(infra, SIGNUPS.name_in(REGION), sid), timeout=30)
    assert [(e["event_type"], e["approval"]) for e in submitted] == [("SignupSubmitted", "pending")]
    requests = eventually(lambda: [e for _, v in records(infra, NOTIFICATION_REQUESTS.name_in(REGION)) if v
                                   and (e := json.loads(v))["context"].get("participant_name") == "Anna de Vries"
                                   and e["edition"] == edition], timeout=30)
    [request] = requests
    assert request["notification_id"] == str(uuid.uuid5(uuid.UUID("5b0c8f7e-3c1d-4f55-9a44-2f5d7c1e9b20"), f"approval:{sid}"))
    assert (request["template"], request["recipient"]) == ("approval_requested", contact)
    assert (request["context"]["organisation_name"], request["context"]["edition_name"], request["context"]["learning_goal"]) == (
        "Gemeente A", "Journey week", "How bread is made")

    approval = local(request["context"]["approval_url"])
    page = http.get(approval)
    assert page.status_code == 200 and page.headers["content-language"] == "de" and "Anna de Vries" in page.text
    assert 'action="' in page.text and "Genehmigen" in page.text
    for _ in range(2):
        r = http.post(f"{approval}/approve")
        assert r.status_code == 200 and "genehmigt" in r.text
    r = http.post(f"{approval}/refuse", data={"reason": "changed my mind"})
    assert r.status_code == 409
    answered = eventually(lambda: (found := events(infra, SIGNUPS.name_in(REGION), sid)) and len(found) >= 2 and found,
                          timeout=30)
    assert [e["event_type"] for e in answered] == ["SignupSubmitted", "SignupApproved"]


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_what_matching_told_shows_on_my_signup_and_choices_change_until_the_deadline(infra, registration, admin):
    http, clock = registration
    edition = open_edition(http, admin)
    bakery = publish(http, admin, edition)
    webinar = publish(http, admin, edition, host="org-w", title="Webinar", attendance="online", location="",
                      join_url="https://meet.example/w", part_of_day="afternoon", starts_at=None, ends_at=None)
    placed, waiting = (sign_up(http, edition, [bakery, webinar]).json() for _ in range(2))
    mine = local(waiting["manage_url"])

    # before the match: the participant changes their choices (announced), a GET changes nothing
    form = http.get(mine).text
    assert 'name="choice_1"' in form and "<script" not in form
    r = http.post(f"{mine}/choices", data={"choice_1": webinar, "choice_2": bakery})
    assert r.status_code == 200 and "opgeslagen" in r.text, r.text
    changed = eventually(lambda: [e for e in events(infra, SIGNUPS.name_in(REGION), waiting["signup_id"])
                                  if e["event_type"] == "SignupChanged"], timeout=30)
    assert [e["choices"] for e in changed] == [[webinar, bakery]]

    run = uuid.uuid4()
    summary = OfferSummary(offer_id=bakery, host_org="org-h", title="Bakery", date=date(2099, 5, 2))
    expires = datetime(2099, 4, 20, 10, tzinfo=UTC)
    infra.produce([
        MatchAssigned(region=REGION, edition=edition, signup_id=placed["signup_id"], run_id=run, rank=1, offer=summary),
        MatchWaitlisted(region=REGION, edition=edition, signup_id=waiting["signup_id"], run_id=run, position=2,
                        reason_code="all_full"),
        SeatOffered(region=REGION, edition=edition, signup_id=waiting["signup_id"], run_id=run, rank=2, offer=summary,
                    expires_at=expires),
    ])
    page = eventually(lambda: (text := _text(http.get(local(placed["manage_url"])).text)) and "Markt 1, Enschede" in text and text,
                      timeout=30)
    for shown in ("Bakery", "org-h", "ochtend, 09:00–12:00", "An apron", "zaterdag 2 mei 2099"):
        assert shown in page, shown
    r = http.post(f"{local(placed['manage_url'])}/choices", data={"choice_1": webinar})
    assert r.status_code == 409 and "geplaatst" in r.text

    seat = eventually(lambda: (html := http.get(mine).text) and "vrijgekomen" in html and html, timeout=30)
    assert "op plaats 2" in _text(seat)
    links = re.findall(r'href="([^"]+)"', seat)
    for answer in ("accept", "decline"):
        [link] = [unescape(u) for u in links if u.endswith(f"/{answer}")]
        assert link.startswith(f"{MATCHING_URL}/links/seat-offers/")
        claims = Links(LINK_SECRET, clock).read(link.split("/")[-2], f"seat_offer_{answer}", 3600)
        assert (claims.signup_id, claims.ref) == (waiting["signup_id"], bakery)

    # past the deadline (the platform's clock): no more changes, and no more sign-ups
    clock.move_to(DEADLINE + timedelta(hours=1))
    try:
        r = sign_up(http, edition, [bakery])
        assert (r.status_code, r.json()["error"]) == (409, "deadline_passed")
        late = f"/links/signup/{Links(LINK_SECRET, clock).make('signup', waiting['signup_id'], edition)}"
        assert "<select" not in http.get(late).text
        r = http.post(f"{late}/choices", data={"choice_1": bakery})
        assert r.status_code == 409 and "inschrijftermijn is verstreken" in r.text
    finally:
        clock.move_to(datetime.now(UTC))


def test_feedback_is_announced_once(infra, registration, admin):
    http, clock = registration
    edition = open_edition(http, admin)
    offer = publish(http, admin, edition)
    sid = sign_up(http, edition, [offer], language="de").json()["signup_id"]
    token = Links(LINK_SECRET, clock).make("feedback", sid, edition, ref=offer)
    form = http.get(f"/links/feedback/{token}")
    assert form.status_code == 200 and form.text.count('name="rating"') == 5 and form.headers["content-language"] == "de"
    assert http.post(f"/links/feedback/{token}", data={"learned": "no rating"}).status_code == 422
    for expected in ("Danke für dein Feedback", "bereits erhalten"):
        r = http.post(f"/links/feedback/{token}", data={"rating": "4", "learned": "Sourdough takes time", "share_publicly": "yes"})
        assert r.status_code == 200 and expected in r.text
    feedback_id = "f-" + uuid.uuid5(uuid.UUID("5b0c8f7e-3c1d-4f55-9a44-2f5d7c1e9b20"), f"{sid}:{offer}").hex[:20]
    given = eventually(lambda: events(infra, FEEDBACK.name_in(REGION), feedback_id), timeout=30)
    assert [(e["signup_id"], e["offer_id"], e["rating"], e["learned"], e["share_publicly"], e["language"]) for e in given] == [
        (sid, offer, 4, "Sourdough takes time", True, "de")]
    assert given[0]["submitted_at"]
