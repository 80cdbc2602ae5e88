"""Who sees which messages, and the seat offer e-mail's signed links, on the running notifications
service (real Kafka, PostgreSQL and mail sink, real API keys).

Policy Organiser on both routes: admin sees every region; an organiser their own region only (another
region's message is a 404 exactly like an unknown one, an `edition` of another region an empty page);
the national role is refused (403: who was e-mailed is personal data); no key: 401.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from estafette.runtime.auth import LinkInvalid, Links
from schemas import MatchAssigned, OfferSummary, ParticipantRegistered, SeatOffered
from tests.support import LINK_SECRET, Infra, ServiceProcess, eventually, services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RUN = uuid.uuid4().hex[:6]
MATCHING_PUBLIC_URL = "https://matching.estafette.test"
#: Region A (twente) and region B (groningen): the keys are bound to these region names.
ED_A, ED_B = f"access-twente-{RUN}", f"access-groningen-{RUN}"
OFFER = OfferSummary(offer_id=f"o-{RUN}", host_org="bakkerij-van-dam", title="Een dag in de bakkerij", date=date(2026, 9, 15))
LINK = re.compile(re.escape(MATCHING_PUBLIC_URL) + r"/links/seat-offers/(?P<token>[A-Za-z0-9_.-]+)/(?P<answer>accept|decline)")


def contact(region: str, edition: str, signup_id: str, name: str, language: str = "nl") -> ParticipantRegistered:
    """A participant's contact details, on the region's participants topic (contract v2)."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.org"
    return ParticipantRegistered(region=region, edition=edition, signup_id=signup_id, name=name, email=email, language=language)


def assigned(region: str, edition: str) -> MatchAssigned:
    return MatchAssigned(
        region=region, edition=edition, signup_id=f"s-{uuid.uuid4().hex[:10]}", run_id=uuid.uuid4(), rank=1, offer=OFFER,
    )


SEAT_OFFER = SeatOffered(
    region="twente", edition=ED_A, signup_id=f"s-seat-{RUN}", run_id=uuid.uuid4(), rank=2, offer=OFFER,
    expires_at=datetime.now(UTC) + timedelta(days=2),
)
MESSAGES = {"A": assigned("twente", ED_A), "B": assigned("groningen", ED_B), "seat": SEAT_OFFER}
CONTACTS = {
    key: contact(m.region, m.edition, m.signup_id, "Sam" if key == "seat" else "Anna", "en" if key == "seat" else "nl")
    for key, m in MESSAGES.items()
}


@pytest.fixture(scope="module")
def callers(infra: Infra) -> dict[str, dict[str, str]]:
    return infra.callers()


@pytest.fixture(scope="module")
def notifications(infra: Infra, callers: dict[str, dict[str, str]]) -> Iterator[ServiceProcess]:
    env = {"NOTIFICATIONS_MATCHING_PUBLIC_URL": MATCHING_PUBLIC_URL, "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1"}
    with services(infra, "notifications", extra_env=env) as running:
        service = running["notifications"]
        infra.produce([*CONTACTS.values(), *MESSAGES.values()])
        eventually(lambda: all(get(service, "/notifications", callers["admin"], signup_id=m.signup_id).json()["items"]
                               for m in MESSAGES.values()), timeout=30)
        yield service


def get(service: ServiceProcess, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{service.url}{path}", params=params, headers=headers, timeout=5)


def message(service: ServiceProcess, callers: dict[str, dict[str, str]], key: str) -> dict[str, Any]:
    (item,) = get(service, "/notifications", callers["admin"], signup_id=MESSAGES[key].signup_id).json()["items"]
    return item


# The expected statuses, by hand: the message under test belongs to region A (twente).
LIST = {"anonymous": 401, "org A": 200, "org B": 200, "national": 403, "admin": 200}
ONE = {"anonymous": 401, "org A": 200, "org B": 404, "national": 403, "admin": 200}


@pytest.mark.parametrize("caller", list(LIST))
def test_the_routes_answer_each_caller_as_the_policy_says(
    notifications: ServiceProcess, callers: dict[str, dict[str, str]], caller: str
) -> None:
    mine = message(notifications, callers, "A")
    assert get(notifications, "/notifications", callers[caller]).status_code == LIST[caller]
    assert get(notifications, f"/notifications/{mine['id']}", callers[caller]).status_code == ONE[caller]


def test_refusals_have_the_error_shape(notifications: ServiceProcess, callers: dict[str, dict[str, str]]) -> None:
    anonymous = get(notifications, "/notifications", {})
    assert anonymous.json()["error"] == "unauthenticated" and anonymous.headers["www-authenticate"] == "Bearer"
    wrong = get(notifications, "/notifications", {"Authorization": "Bearer est_000000000000_not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    assert get(notifications, "/notifications", callers["national"]).json()["error"] == "forbidden"


def test_an_organiser_lists_only_their_own_regions_messages(notifications: ServiceProcess, callers: dict[str, dict[str, str]]) -> None:
    for caller, region, own, other in (("org A", "twente", "A", "B"), ("org B", "groningen", "B", "A")):
        items = get(notifications, "/notifications", callers[caller], limit=1000).json()["items"]
        assert {i["region"] for i in items} == {region}
        # (the session's other tests may have left more than a page of the region's messages)
        mine = get(notifications, "/notifications", callers[caller], signup_id=MESSAGES[own].signup_id).json()["items"]
        theirs = get(notifications, "/notifications", callers[caller], signup_id=MESSAGES[other].signup_id).json()["items"]
        assert len(mine) == 1 and theirs == []
    # the admin sees both regions' messages (by sign-up: the session may have left more than a page)
    admin = [i for key in ("A", "B")
             for i in get(notifications, "/notifications", callers["admin"], signup_id=MESSAGES[key].signup_id).json()["items"]]
    assert sorted(i["region"] for i in admin) == ["groningen", "twente"]


def test_an_edition_of_another_region_gives_an_empty_page(notifications: ServiceProcess, callers: dict[str, dict[str, str]]) -> None:
    other = get(notifications, "/notifications", callers["org B"], edition=ED_A).json()
    assert other == {"items": [], "next_after": None}
    assert get(notifications, "/notifications", callers["org B"], signup_id=MESSAGES["A"].signup_id).json()["items"] == []
    assert len(get(notifications, "/notifications", callers["org A"], edition=ED_A).json()["items"]) == 2


def test_another_regions_message_is_a_404_exactly_like_an_unknown_one(
    notifications: ServiceProcess, callers: dict[str, dict[str, str]]
) -> None:
    theirs = message(notifications, callers, "A")
    other = get(notifications, f"/notifications/{theirs['id']}", callers["org B"])
    unknown = get(notifications, f"/notifications/{uuid.uuid4()}", callers["org B"])
    assert other.status_code == unknown.status_code == 404
    assert other.json()["error"] == unknown.json()["error"] == "unknown_notification"
    assert get(notifications, f"/notifications/{theirs['id']}", callers["org A"]).json() == theirs


def test_query_ids_are_validated(notifications: ServiceProcess, callers: dict[str, dict[str, str]]) -> None:
    for param in ("edition", "signup_id"):
        r = get(notifications, "/notifications", callers["admin"], **{param: "a\x00b"})
        assert r.status_code == 422 and r.json()["field"] == f"query.{param}"


def test_the_seat_offer_email_links_to_matchings_pages_with_signed_tokens(
    infra: Infra, notifications: ServiceProcess, callers: dict[str, dict[str, str]]
) -> None:
    eventually(lambda: message(notifications, callers, "seat")["status"] == "sent", timeout=30)
    email = str(CONTACTS["seat"].email)
    mails = httpx.get(f"{infra.mail_api}/api/messages", params={"to": email}, timeout=5).json()
    (mail,) = [m for m in mails if email in m["to"]]

    links = {found["answer"]: found for found in LINK.finditer(mail["text"])}
    assert set(links) == {"accept", "decline"}, mail["text"]
    for answer, found in links.items():
        claims = Links(LINK_SECRET).read(found["token"], f"seat_offer_{answer}", 3600)
        assert (claims.signup_id, claims.edition_id) == (SEAT_OFFER.signup_id, ED_A)
        assert f'href="{found[0]}"' in mail["html"]
    with pytest.raises(LinkInvalid):  # a token for one answer is no good for the other
        Links(LINK_SECRET).read(links["accept"]["token"], "seat_offer_decline", 3600)

    log = notifications.log_path.read_text(errors="replace")
    for found in links.values():
        assert found["token"] not in log  # tokens are never logged
