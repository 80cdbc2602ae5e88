"""Who sees which figures, on the running reporting service (real Kafka and PostgreSQL, real API keys).

Policies: `/reports/*` are Figures (admin and national: every region; an organiser: their own region,
another region's edition is a 404 exactly like an unknown one, and the regions report has their row
only, with national totals of what they see); `/dashboard` is Public (aggregate figures only).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from schemas import EditionOpened, RelayLegStarted
from tests.support import Infra, eventually, services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RUN = uuid.uuid4().hex[:6]
#: Region A (twente) and region B (groningen): the keys are bound to these region names.
ED_A, ED_B = f"access-twente-{RUN}", f"access-groningen-{RUN}"


def opened(region: str, edition: str) -> EditionOpened:
    return EditionOpened(
        region=region, edition=edition, name=f"Access {region}", signup_deadline=datetime(2027, 5, 20, tzinfo=UTC),
        starts_on=date(2027, 6, 7), ends_on=date(2027, 6, 7) + timedelta(days=4), languages=["nl"],
    )


@pytest.fixture(scope="module")
def callers(infra: Infra) -> dict[str, dict[str, str]]:
    return infra.callers()


@pytest.fixture(scope="module")
def url(infra: Infra, callers: dict[str, dict[str, str]]) -> Iterator[str]:
    with services(infra, "reporting") as running:
        url = running["reporting"].url
        infra.produce([
            opened("twente", ED_A), opened("groningen", ED_B),
            RelayLegStarted(region="twente", edition=ED_A, leg_id=f"leg-a-{RUN}", starts_on=date(2027, 6, 7)),
            RelayLegStarted(region="groningen", edition=ED_B, leg_id=f"leg-b-{RUN}", starts_on=date(2027, 6, 8)),
        ])
        admin = callers["admin"]

        def known() -> bool:
            regions = httpx.get(f"{url}/reports/regions", headers=admin, timeout=5).json()
            legs = {leg["leg"] for leg in regions["relay"]}
            return all(httpx.get(f"{url}/reports/editions/{e}", headers=admin, timeout=5).status_code == 200
                       for e in (ED_A, ED_B)) and {f"leg-a-{RUN}", f"leg-b-{RUN}"} <= legs

        eventually(known, timeout=60, interval=0.3)
        yield url


# The expected statuses, by hand: the edition under test belongs to region A (twente).
EDITION_REPORT = {"anonymous": 401, "org A": 200, "org B": 404, "national": 200, "admin": 200}
REGIONS_REPORT = {"anonymous": 401, "org A": 200, "org B": 200, "national": 200, "admin": 200}
DASHBOARD = {"anonymous": 200, "org A": 200, "org B": 200, "national": 200, "admin": 200}


@pytest.mark.parametrize("caller", list(EDITION_REPORT))
def test_the_routes_answer_each_caller_as_the_policy_says(url: str, callers: dict[str, dict[str, str]], caller: str) -> None:
    headers = callers[caller]
    assert httpx.get(f"{url}/reports/editions/{ED_A}", headers=headers, timeout=5).status_code == EDITION_REPORT[caller]
    assert httpx.get(f"{url}/reports/regions", headers=headers, timeout=5).status_code == REGIONS_REPORT[caller]
    for params in ({}, {"edition": ED_A}):
        page = httpx.get(f"{url}/dashboard", params=params, headers=headers, timeout=5)
        assert page.status_code == DASHBOARD[caller]


def test_without_a_valid_key_the_reports_are_401(url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer est_000000000000_not-a-key"}):
        r = httpx.get(f"{url}/reports/regions", headers=headers, timeout=5)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{url}/dashboard", headers={"Authorization": "Bearer est_000000000000_not-a-key"}, timeout=5).status_code == 401


def test_another_regions_edition_is_a_404_exactly_like_an_unknown_one(url: str, callers: dict[str, dict[str, str]]) -> None:
    other = httpx.get(f"{url}/reports/editions/{ED_A}", headers=callers["org B"], timeout=5)
    unknown = httpx.get(f"{url}/reports/editions/no-such-{RUN}", headers=callers["org B"], timeout=5)
    assert other.status_code == unknown.status_code == 404
    assert (other.json()["error"], other.json()["field"]) == (unknown.json()["error"], unknown.json()["field"]) == (
        "unknown_edition", "edition_id")
    own = httpx.get(f"{url}/reports/editions/{ED_B}", headers=callers["org B"], timeout=5)
    assert own.status_code == 200 and own.json()["region"] == "groningen"


def test_an_organiser_sees_their_regions_row_and_national_totals_of_it(url: str, callers: dict[str, dict[str, str]]) -> None:
    for caller, region, leg in (("org A", "twente", f"leg-a-{RUN}"), ("org B", "groningen", f"leg-b-{RUN}")):
        body = httpx.get(f"{url}/reports/regions", headers=callers[caller], timeout=5).json()
        (row,) = body["regions"]
        assert row["region"] == region
        assert body["national"] == {"regions": 1, **{k: v for k, v in row.items() if k != "region"}}
        assert {r["region"] for r in body["relay"]} == {region} and leg in {r["leg"] for r in body["relay"]}


@pytest.mark.parametrize("caller", ["national", "admin"])
def test_national_and_admin_see_every_region(url: str, callers: dict[str, dict[str, str]], caller: str) -> None:
    body = httpx.get(f"{url}/reports/regions", headers=callers[caller], timeout=5).json()
    assert {"twente", "groningen"} <= {r["region"] for r in body["regions"]}
    assert {f"leg-a-{RUN}", f"leg-b-{RUN}"} <= {r["leg"] for r in body["relay"]}
    assert body["national"]["regions"] == len(body["regions"])
    for edition in (ED_A, ED_B):
        assert httpx.get(f"{url}/reports/editions/{edition}", headers=callers[caller], timeout=5).status_code == 200


def test_a_path_id_that_cannot_be_an_id_is_a_422_not_a_500(url: str, callers: dict[str, dict[str, str]]) -> None:
    r = httpx.get(f"{url}/reports/editions/a%00b", headers=callers["admin"], timeout=5)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
