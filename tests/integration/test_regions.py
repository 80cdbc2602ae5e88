"""Regions that scale and evolve separately, on the real broker and database, services as processes.

1. Two regions with a matching instance each (`--regions`): each instance's consumer groups hold only
   its own region's partitions (as the broker describes the groups); killing region A's instance does
   not stop region B's matches and e-mails; a third region added by configuration gets its topics,
   takes sign-ups, is matched by an instance started for it, and appears in the national report of a
   reporting service that was never restarted.
2. Every service started without `--regions`: a region added while they run is served by all of them
   (sign-up, match, e-mail, report) without a restart; and the sign-up's name and e-mail address are on
   no topic other than that region's participants topic (every topic of the broker read and searched).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.topics import EDITIONS, OFFERS, PARTICIPANTS, SIGNUPS
from tests.e2e.portal import ENV, Portal, until
from tests.support import EXTRA_PORTS, Infra, ServiceProcess, group_assignments, region, services

pytestmark = pytest.mark.integration

MATCHING_READS = (EDITIONS, OFFERS, SIGNUPS)


def person_name(edition_id: str, i: int) -> str:
    return f"Person {i} of {edition_id}"


def region_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def mails_to(http: httpx.AsyncClient, infra: Infra, address: str) -> list[dict]:
    r = await http.get(f"{infra.mail_api}/api/messages", params={"to": address})
    r.raise_for_status()
    return r.json()


async def opened(portal: Portal, edition_id: str, region_name: str) -> bool:
    """Open an edition in a region (True), or False while registration does not know the region yet."""
    r = await portal.http.post(portal.urls["registration"] + "/editions", headers=portal.auth, json={
        "id": edition_id, "region": region_name, "name": "Estafette-week", "signup_deadline": "2099-04-01T00:00:00Z",
        "starts_on": "2099-05-31", "ends_on": "2099-06-04", "languages": ["nl"]})
    if r.status_code == 422 and r.json().get("error") == "unknown_region":
        return False
    assert r.status_code == 201, r.text
    return True


async def matched_and_mailed(portal: Portal, infra: Infra, region_name: str, people: int = 2) -> dict[str, str]:
    """An edition of the region with one offer, `people` sign-ups, a match run, everyone's e-mail; the
    e-mail addresses by sign-up id."""
    edition_id = f"{region_name}-2099"
    await until(lambda: opened(portal, edition_id, region_name), f"registration knows region {region_name}", timeout=30)
    offer = await portal.offer(edition_id, f"{edition_id}-bakery", capacity=people)
    emails = {}
    for i in range(people):
        email = f"p{i}-{edition_id}@example.org"
        emails[await portal.signup(edition_id, person_name(edition_id, i), email, [offer])] = email
    await portal.known_to_matching(edition_id, people)
    await portal.run(edition_id)
    for email in emails.values():
        await until(lambda e=email: mails_to(portal.http, infra, e), f"the e-mail to {email}")
    return emails


async def regions_report(portal: Portal, national_key: str) -> dict[str, dict]:
    r = await portal.http.get(portal.urls["reporting"] + "/reports/regions", headers={"Authorization": f"Bearer {national_key}"})
    r.raise_for_status()
    return {row["region"]: row for row in r.json()["regions"]}


def own_partitions(region_name: str, partitions: int = 4) -> set[tuple[str, int]]:
    return {(t.name_in(region_name), p) for t in MATCHING_READS for p in range(partitions)}


def test_a_regions_instance_serves_only_it_survives_another_regions_crash_and_a_new_region_needs_no_restart(infra: Infra) -> None:
    a, b, c = region_id("ra"), region_id("rb"), region_id("rc")
    infra.add_regions(region(a), region(b))
    admin, national = infra.key("admin"), infra.key("national")
    with services(infra, "registration", "notifications", "reporting", extra_env=ENV) as svc:
        matching = {
            name: ServiceProcess(infra, "matching", {**ENV, "MATCHING_REGIONS": name}, port=port, label=f"matching-{name}").start()
            for name, port in ((a, EXTRA_PORTS[0]), (b, EXTRA_PORTS[1]))
        }
        try:
            asyncio.run(_two_regions_then_a_third(infra, svc, matching, a, b, c, admin, national))
        finally:
            for proc in matching.values():
                proc.stop()


async def _two_regions_then_a_third(infra, svc, matching, a, b, c, admin, national) -> None:  # noqa: ANN001
    urls = {name: proc.url for name, proc in svc.items()}
    async with httpx.AsyncClient(timeout=10) as http:
        portal_a = Portal(http, {**urls, "matching": matching[a].url}, admin)
        portal_b = Portal(http, {**urls, "matching": matching[b].url}, admin)
        await matched_and_mailed(portal_a, infra, a)
        await matched_and_mailed(portal_b, infra, b)

        # Each instance's groups: its own region's partitions, all of them, and nothing else.
        for mine, other in ((a, b), (b, a)):
            members = await group_assignments(infra.kafka, f"matching.{mine}")
            held = set().union(*members)
            assert held == own_partitions(mine), (mine, held)
            assert not any(topic.startswith(f"estafette.{other}.") for topic, _ in held)

        # Region A's matching crashes: region B is matched and e-mailed as before.
        matching[a].kill()
        assert await group_assignments(infra.kafka, f"matching.{b}") != []
        edition_b2 = f"{b}-2100"
        assert await opened(portal_b, edition_b2, b)
        offer = await portal_b.offer(edition_b2, f"{edition_b2}-bakery", capacity=1)
        email = f"late-{edition_b2}@example.org"
        await portal_b.signup(edition_b2, "Late", email, [offer])
        await portal_b.known_to_matching(edition_b2, 1)
        await portal_b.run(edition_b2)
        await until(lambda: mails_to(http, infra, email), f"region {b}'s e-mail while {a}'s matching is down")
        # ... and region A's instance left no member behind in B's group, nor did B's take A's.
        assert all(not any(t.startswith(f"estafette.{a}.") for t, _ in m) for m in await group_assignments(infra.kafka, f"matching.{b}"))

        # A third region, added by configuration while everything runs.
        infra.add_regions(region(c))
        matching[c] = ServiceProcess(infra, "matching", {**ENV, "MATCHING_REGIONS": c}, port=EXTRA_PORTS[2], label=f"matching-{c}").start()
        portal_c = Portal(http, {**urls, "matching": matching[c].url}, admin)
        await matched_and_mailed(portal_c, infra, c)

        async def reported() -> dict | None:
            rows = await regions_report(portal_c, national)
            return rows.get(c) if rows.get(c, {}).get("assigned") == 2 else None

        row = await until(reported, f"region {c} in the national report (reporting not restarted)", timeout=60)
        assert row["signups"] == 2 and row["editions"] == 1
        assert svc["reporting"].proc is not None and svc["reporting"].proc.poll() is None


def test_a_region_added_while_every_service_runs_is_served_by_all_and_personal_data_stays_on_its_participants_topic(infra: Infra) -> None:
    d = region_id("rd")
    admin, national = infra.key("admin"), infra.key("national")
    with services(infra, "registration", "matching", "notifications", "reporting", extra_env=ENV) as svc:
        pids = {name: proc.proc.pid for name, proc in svc.items() if proc.proc}
        infra.add_regions(region(d))
        added = time.monotonic()

        async def scenario() -> tuple[dict[str, str], float]:
            async with httpx.AsyncClient(timeout=10) as http:
                portal = Portal(http, {name: proc.url for name, proc in svc.items()}, admin)
                emails = await matched_and_mailed(portal, infra, d)
                served_after = time.monotonic() - added

                async def reported() -> bool:
                    return (await regions_report(portal, national)).get(d, {}).get("assigned") == 2

                await until(reported, f"region {d} in the national report")
                return emails, served_after

        emails, served_after = asyncio.run(scenario())
        print(f"\nregion {d}: added → matched and every e-mail delivered in {served_after:.1f} s, no restart")
        assert {name: proc.proc.pid for name, proc in svc.items() if proc.proc} == pids  # nobody restarted

    # Personal data: the sign-ups' names and addresses are on the participants topic of region d only.
    names = [person_name(f"{d}-2099", i).encode() for i in range(len(emails))]
    found = asyncio.run(_topics_containing(infra, [e.encode() for e in emails.values()] + names))
    assert set(found) == {PARTICIPANTS.name_in(d)}, found


async def _topics_containing(infra: Infra, needles: list[bytes]) -> dict[str, int]:
    """Every topic of the broker read from its beginning to its end: topic -> records holding a needle."""
    admin = AIOKafkaAdminClient(**infra.kafka.client_kwargs())
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if not t.startswith("__")]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    assert len({tp.topic for tp in partitions}) == len(topics), "a topic without partitions"
    consumer = AIOKafkaConsumer(**infra.kafka.client_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    hits: dict[str, int] = {}
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(90):
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                for tp, records in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                    for record in records:
                        blob = (record.value or b"") + (record.key or b"") + b"".join(v for _, v in record.headers or ())
                        if any(n in blob for n in needles):
                            hits[tp.topic] = hits.get(tp.topic, 0) + 1
    finally:
        await consumer.stop()
    return hits
