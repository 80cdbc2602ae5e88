"""The outside view after a fault: what the topics, the services' HTTP views and the mail sink show.

Nothing here reads a service's database: an event is "present" when it is on its topic, a sign-up
is known to matching and reporting when their HTTP views count it, an e-mail was sent when the mail
sink has it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from estafette.runtime.kafka import KafkaAccess
from schemas import decode_event
from schemas.events import MatchAssigned, MatchUnmatched, MatchWaitlisted, SignupSubmitted
from schemas.topics import MATCHES, SIGNUPS

OUTCOMES = (MatchAssigned, MatchWaitlisted, MatchUnmatched)


async def read_topic(kafka: KafkaAccess, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of `topic` up to its end now: (key, value)."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())  # (a consumer's metadata holds only what it reads)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        if not partitions:
            raise AssertionError(f"no topic {topic}")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 120
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end within 120 s")
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                records += [(r.key, r.value) for r in batch]
        return records
    finally:
        try:
            await consumer.stop()
        except asyncio.CancelledError:  # aiokafka's stop of a consumer without a group, now and then
            pass


@dataclass
class TopicCount:
    """Events of one edition on a topic, per key (sign-up id): distinct event ids, and records."""

    events: dict[str, set[str]]
    records: int
    #: records of an event already seen (a relay that crashed between Kafka's ack and its commit sends
    #: a row again; consumers drop the copy by its event id)
    redelivered: int

    def keys_more_than_once(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.events.items() if len(v) > 1}


def count_events(records: list[tuple[bytes | None, bytes | None]], edition: str, types: tuple[type, ...]) -> TopicCount:
    events: dict[str, set[str]] = defaultdict(set)
    seen: set[str] = set()
    total = redelivered = 0
    for _key, value in records:
        if value is None:
            continue
        try:
            event = decode_event(value)
        except ValueError:
            continue
        if event.edition != edition or not isinstance(event, types):
            continue
        total += 1
        event_id = str(event.event_id)
        redelivered += event_id in seen
        seen.add(event_id)
        events[event.signup_id].add(event_id)  # type: ignore[attr-defined]
    return TopicCount(dict(events), total, redelivered)


def signups_on_topic(kafka: KafkaAccess, region: str, edition: str) -> TopicCount:
    return count_events(asyncio.run(read_topic(kafka, SIGNUPS.name_in(region))), edition, (SignupSubmitted,))


def outcomes_on_topic(kafka: KafkaAccess, region: str, edition: str) -> TopicCount:
    return count_events(asyncio.run(read_topic(kafka, MATCHES.name_in(region))), edition, OUTCOMES)


@dataclass
class Mail:
    """The mail sink's messages to one domain: per (recipient, kind) how many, and Message-IDs seen twice."""

    per_recipient_kind: Counter[tuple[str, str]]
    same_message_id: int
    #: when the sink received the first e-mail of each (recipient, kind)
    first_received: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def kinds(self) -> Counter[str]:
        return Counter(kind for (_, kind) in self.per_recipient_kind.elements())

    def recipients(self, kinds: set[str]) -> set[str]:
        """Who got an e-mail of one of `kinds`."""
        return {address for (address, kind) in self.per_recipient_kind if kind in kinds}

    def duplicates(self) -> int:
        """E-mails beyond the first of each kind to each recipient."""
        return sum(n - 1 for n in self.per_recipient_kind.values() if n > 1)

    def duplicates_per_crash(self, crashes: list[datetime]) -> list[int]:
        """The duplicates by the crash that caused them: a repeat comes from a message handed to SMTP
        but not recorded as sent when notifications was killed, so its first copy arrived before that
        kill and after the one before it. One count per crash (in order), then one for duplicates
        whose first copy came after the last crash (caused by no crash: must be 0)."""
        counts = [0] * (len(crashes) + 1)
        for key, n in self.per_recipient_kind.items():
            if n > 1:
                first = self.first_received[key]
                counts[next((i for i, at in enumerate(crashes) if first <= at), len(crashes))] += n - 1
        return counts


def mail_to(mail_api: str, domain: str) -> Mail:
    r = httpx.get(f"{mail_api}/api/messages", params={"to": "@" + domain}, timeout=120)
    r.raise_for_status()
    per: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], datetime] = {}
    ids: Counter[str] = Counter()
    for message in r.json():
        recipients = [a for a in message.get("to", []) if a.lower().endswith("@" + domain)]
        if not recipients:
            continue
        headers = {k.lower(): v for k, v in (message.get("headers") or {}).items()}
        kind = headers.get("x-estafette-kind") or "e-mail"  # (a notifications without the header: one kind)
        received = datetime.fromisoformat(message["received_at"].replace("Z", "+00:00"))
        for address in recipients:
            key = (address.lower(), kind)
            per[key] += 1
            first[key] = min(first.get(key, received), received)
        if headers.get("message-id"):
            ids[headers["message-id"]] += 1
    return Mail(per, sum(n - 1 for n in ids.values() if n > 1), first)


def get_json(url: str, headers: dict[str, str]) -> dict:
    r = httpx.get(url, headers=headers, timeout=30)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
    return r.json()


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: A line per request or per event: the load's own, not a fault's (left out of outage counts).
ACCESS_LOG = ("request handled", "event handled")


def log_lines(path: os.PathLike[str] | str, since_offset: int = 0, *, without_access_log: bool = False) -> tuple[int, list[str]]:
    """The lines of a service's log after byte `since_offset`: (count, their `event` texts); with
    `without_access_log`, not counting the ACCESS_LOG lines."""
    with open(path, "rb") as f:
        f.seek(since_offset)
        lines = f.read().splitlines()
    events = []
    for line in lines:
        try:
            events.append(str(json.loads(line).get("event", ""))[:120])
        except ValueError:
            events.append(line.decode(errors="replace")[:120])
    if without_access_log:
        events = [e for e in events if e not in ACCESS_LOG]
    return len(events), events
