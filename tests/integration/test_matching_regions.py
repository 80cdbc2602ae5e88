"""Matching instances that serve a set of regions, side by side on the real broker and database, each
a process of its own (`MATCHING_REGIONS=<region>`, its own `MATCHING_HTTP_PORT`) on the one shared
matching schema. Every test adds fresh regions of its own (as `estafette regions apply` does), so runs
other tests left behind are never in the picture.

- Each instance runs its own region's match; a run requested through instance A for region B's
  edition is recorded `queued` and executed by instance B (and the other way round); no run fails.
- Restarting A leaves region B's runs alone, also while B is down: its interrupted (running) run and
  its queued run are neither failed nor taken; B, started again, resumes the one and starts the other.
- Two instances of ONE region (scale-out): an instance starting up never takes the run the other one
  executes (it holds the run's lock); when that instance is killed, the other one resumes the run.

A run is held in its execution by the failpoint `match_run_stalls` (MATCHING_FAILPOINTS): it stops
after its snapshot, holding its lock, until its process is killed (SIGKILL: a crash).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import EditionOpened, Event, OfferPublished, SignupSubmitted, decode_event
from schemas.topics import MATCHES
from tests.support import HTTP_PORTS, STATE, Infra, ServiceProcess, eventually, region

pytestmark = pytest.mark.integration

#: Each instance's own HTTP port (ServiceProcess takes the service's port from HTTP_PORTS by default).
PORTS = [HTTP_PORTS["matching"] + 10 * n for n in (1, 2)]
ENV = {"MATCHING_REMATCH_POLL_SECONDS": "0.2", "MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3"}
STALLS = {"MATCHING_FAILPOINTS": "match_run_stalls"}
STARTUP = "start-up: runs of the served regions checked"


class Instance:
    """One matching process serving `regions`, on its own port and with its own log file."""

    def __init__(self, infra: Infra, label: str, regions: str, port: int, extra_env: dict[str, str] | None = None) -> None:
        env = {**ENV, "MATCHING_REGIONS": regions, "MATCHING_HTTP_PORT": str(port), **(extra_env or {})}
        self.label = label
        self.process = ServiceProcess(infra, "matching", env)
        self.process.url = f"http://127.0.0.1:{port}"  # (it is read by start() to wait until healthy)
        self.process.log_path = STATE / f"matching-{label}.log"
        self.url = self.process.url
        self._offset = 0

    def start(self) -> Instance:
        """Start the process; `logged` reads only what this start writes."""
        self._offset = self.process.log_path.stat().st_size if self.process.log_path.exists() else 0
        self.process.start()
        return self

    def stop(self) -> None:
        """A graceful stop (SIGTERM): running runs are finished first."""
        self.process.stop()

    def kill(self) -> None:
        """A crash: SIGKILL, nothing is finished or released by the process itself."""
        assert self.process.proc is not None
        self.process.proc.kill()
        self.process.proc.wait(20)

    def logged(self, message: str) -> list[dict]:
        """The JSON log lines with `message` written since the last start."""
        with self.process.log_path.open("rb") as f:
            f.seek(self._offset)
            lines = f.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == message:
                found.append(record)
        return found

    def startup_report(self) -> dict:
        """The instance's first take-over round: what it found of its regions' runs."""
        return eventually(lambda: (lines := self.logged(STARTUP)) and lines[0], timeout=30)


@contextmanager
def running(*instances: Instance) -> Iterator[None]:
    """Start the instances; stop whatever still runs at the end."""
    with ExitStack() as stack:
        for instance in instances:
            stack.callback(instance.stop)
            instance.start()
        yield


@pytest.fixture(scope="module")
def admin(infra: Infra) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {infra.key('admin')}"}, timeout=10) as client:
        yield client


def fresh_regions(infra: Infra, *prefixes: str) -> list[str]:
    """New regions of this test, applied to the registry and the broker (their topics, grants)."""
    ids = [f"{prefix}-{uuid.uuid4().hex[:6]}" for prefix in prefixes]
    infra.add_regions(*(region(i) for i in ids))
    return ids


def edition_of(region_id: str, infra: Infra, people: int = 2) -> tuple[str, list[str]]:
    """Publish an edition of `region_id` with one offer of one seat and `people` sign-ups; (edition id, sign-up ids)."""
    edition = f"{region_id}-{uuid.uuid4().hex[:6]}"
    signups = [f"{edition}-p{i}" for i in range(people)]
    now = datetime.now(UTC)
    infra.produce([
        EditionOpened(region=region_id, edition=edition, name="Regions", signup_deadline=datetime(2099, 1, 1, tzinfo=UTC),
                      starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 5)),
        OfferPublished(region=region_id, edition=edition, offer_id=f"{edition}-o", host_org="org-h", title="Bakkerij",
                       date=date(2099, 5, 2), capacity=1),
        *[SignupSubmitted(region=region_id, edition=edition, signup_id=s, org="org-x", choices=[f"{edition}-o"],
                          signed_up_at=now + timedelta(seconds=i)) for i, s in enumerate(signups)],
    ])
    return edition, signups


def received(admin: httpx.Client, url: str, edition: str, people: int = 2) -> None:
    """Wait until matching has the edition with its offer and people (any instance answers: one database)."""
    def has_it() -> bool:
        r = admin.get(f"{url}/editions/{edition}")
        return r.status_code == 200 and (r.json()["offers"], r.json()["participants"]) == (1, people)

    eventually(has_it, timeout=60)


def request_run(admin: httpx.Client, url: str, edition: str) -> dict:
    r = admin.post(f"{url}/editions/{edition}/match-runs")
    assert r.status_code == 202, r.text
    return r.json()


def run_of(admin: httpx.Client, url: str, run_id: str) -> dict:
    r = admin.get(f"{url}/match-runs/{run_id}")
    assert r.status_code == 200, r.text
    return r.json()


def finished(admin: httpx.Client, url: str, run_id: str) -> dict:
    return eventually(lambda: (r := run_of(admin, url, run_id))["status"] not in ("queued", "running") and r, timeout=60)


def runs_of(admin: httpx.Client, url: str, edition: str) -> list[dict]:
    return admin.get(f"{url}/editions/{edition}/match-runs").json()


def match_events(infra: Infra, region_id: str, signups: set[str], settle: float = 2.0) -> list[Event]:
    """Every event about `signups` on `region_id`'s match topic, read from the start."""

    async def read() -> list[Event]:
        consumer = AIOKafkaConsumer(MATCHES.name_in(region_id), **infra.kafka.client_kwargs(),
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        events: list[Event] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + settle
            while loop.time() < deadline:
                for msgs in (await consumer.getmany(timeout_ms=300)).values():
                    events += [decode_event(m.value) for m in msgs if m.key.decode() in signups]
            return events
        finally:
            await consumer.stop()

    return asyncio.run(read())


def stalled(instance: Instance, run_id: str) -> None:
    """Wait until the run is held in its execution by the failpoint (its snapshot taken, its lock held)."""
    eventually(lambda: any(r.get("run_id") == run_id for r in instance.logged(
        "failpoint match_run_stalls: the run waits until the process is killed")), timeout=30)


def test_each_instance_runs_its_regions_match_and_executes_runs_requested_elsewhere(infra: Infra, admin: httpx.Client) -> None:
    east, west = fresh_regions(infra, "east", "west")
    a = Instance(infra, "a", east, PORTS[0])
    b = Instance(infra, "b", west, PORTS[1])
    with running(a, b):
        (e_east, people_east), (e_west, people_west) = edition_of(east, infra), edition_of(west, infra)
        received(admin, a.url, e_east)
        received(admin, b.url, e_west)

        # Each instance runs its own region's match.
        for instance, edition in ((a, e_east), (b, e_west)):
            started = request_run(admin, instance.url, edition)
            assert (started["status"], started["attempt"]) == ("running", 1)
            done = finished(admin, instance.url, started["id"])
            assert (done["status"], done["assigned"], done["waitlisted"]) == ("done", 1, 1), done

        # A run requested through the other region's instance is recorded as queued, and executed by
        # the instance of the edition's region.
        for here, there, edition in ((a, b, e_west), (b, a, e_east)):
            queued = request_run(admin, here.url, edition)
            assert (queued["status"], queued["stage"], queued["attempt"]) == ("queued", "queued", 0), queued
            done = finished(admin, here.url, queued["id"])
            assert (done["status"], done["attempt"]) == ("done", 1), done
            assert [r["run_id"] for r in there.logged("queued match run started")] == [queued["id"]]
            assert queued["id"] not in {r["run_id"] for r in here.logged("queued match run started")}

        # Nothing failed; each region's announcements are on its own topic only.
        for edition in (e_east, e_west):
            assert [r["status"] for r in runs_of(admin, a.url, edition)] == ["done", "done"]
        for region_id, people, others in ((east, people_east, people_west), (west, people_west, people_east)):
            events = match_events(infra, region_id, set(people) | set(others))
            assert {(e.event_type, e.signup_id) for e in events} == {("MatchAssigned", people[0]), ("MatchWaitlisted", people[1])}
        for instance in (a, b):
            report = instance.startup_report()
            assert (report["started"], report["resumed"], report["failed"], report["executing_elsewhere"]) == (0, 0, 0, 0)


def test_restarting_one_instance_leaves_the_other_regions_running_and_queued_runs_alone(infra: Infra, admin: httpx.Client) -> None:
    east, west = fresh_regions(infra, "east", "west")
    a = Instance(infra, "a", east, PORTS[0])
    b = Instance(infra, "b", west, PORTS[1], STALLS)
    with running(a, b):
        (e_east, _), (w1, w1_people), (w2, _) = edition_of(east, infra), edition_of(west, infra), edition_of(west, infra)
        for edition in (w1, w2):
            received(admin, b.url, edition)
        received(admin, a.url, e_east)

        # B executes a run of W1 and crashes in the middle of it.
        interrupted = request_run(admin, b.url, w1)
        assert interrupted["status"] == "running"
        stalled(b, interrupted["id"])
        b.kill()
        # Meanwhile a run of W2 is requested through A: queued for an instance of west.
        queued = request_run(admin, a.url, w2)
        assert queued["status"] == "queued"

        # A restarts: its start-up looks only at east's runs; west's are left as they are.
        a.stop()
        a.start()
        report = a.startup_report()
        assert (report["regions"], report["started"], report["resumed"], report["failed"], report["executing_elsewhere"]) == (
            east, 0, 0, 0, 0)
        assert (run_of(admin, a.url, interrupted["id"])["status"], run_of(admin, a.url, interrupted["id"])["attempt"]) == ("running", 1)
        assert (run_of(admin, a.url, queued["id"])["status"], run_of(admin, a.url, queued["id"])["attempt"]) == ("queued", 0)
        # ... and A still does its own region's work.
        own = request_run(admin, a.url, e_east)
        assert finished(admin, a.url, own["id"])["status"] == "done"
        assert (run_of(admin, a.url, interrupted["id"])["status"], run_of(admin, a.url, queued["id"])["status"]) == ("running", "queued")

        # B comes back (without the failpoint): it resumes its interrupted run and starts the queued one.
        b_again = Instance(infra, "b", west, PORTS[1])
        with running(b_again):
            report = b_again.startup_report()
            assert (report["started"], report["failed"]) == (1, 0)
            # (resumed at once, or in a later round if the killed session's lock outlived the process a moment)
            assert report["resumed"] + report["executing_elsewhere"] == 1
            resumed = finished(admin, a.url, interrupted["id"])
            assert (resumed["status"], resumed["attempt"], resumed["assigned"]) == ("done", 2, 1), resumed
            started = finished(admin, a.url, queued["id"])
            assert (started["status"], started["attempt"]) == ("done", 1), started
            events = match_events(infra, west, set(w1_people))
            assert {(e.event_type, e.signup_id, e.run_id) for e in events} == {
                ("MatchAssigned", w1_people[0], uuid.UUID(interrupted["id"])),
                ("MatchWaitlisted", w1_people[1], uuid.UUID(interrupted["id"])),
            }
        assert [r["status"] for r in runs_of(admin, a.url, e_east)] == ["done"]


def test_two_instances_of_one_region_never_take_each_others_runs(infra: Infra, admin: httpx.Client) -> None:
    [north] = fresh_regions(infra, "north")
    c = Instance(infra, "c", north, PORTS[0], STALLS)
    d = Instance(infra, "d", north, PORTS[1])
    with running(c):
        edition, people = edition_of(north, infra)
        received(admin, c.url, edition)
        executing = request_run(admin, c.url, edition)
        stalled(c, executing["id"])

        with running(d):  # scale-out: a second instance of the same region starts up
            report = d.startup_report()
            assert (report["started"], report["resumed"], report["failed"], report["executing_elsewhere"]) == (0, 0, 0, 1)
            assert (run_of(admin, d.url, executing["id"])["status"], run_of(admin, d.url, executing["id"])["attempt"]) == ("running", 1)

            c.kill()  # the executing instance crashes: the other one resumes the run
            resumed = finished(admin, d.url, executing["id"])
            assert (resumed["status"], resumed["attempt"], resumed["assigned"]) == ("done", 2, 1), resumed
            assert [r["run_id"] for r in d.logged("interrupted match run resumed")] == [executing["id"]]
            events = match_events(infra, north, set(people))
            assert sorted(e.event_type for e in events) == ["MatchAssigned", "MatchWaitlisted"]  # announced once
