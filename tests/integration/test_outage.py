"""A Kafka outage under a light load of sign-ups is quiet and cheap (issue 13, docs/faults.md).

While the broker is away, each service logs the state change once (`kafka unreachable`) and then at
most a summary a minute (runtime/logging.py), its clients back off (runtime/kafka.py), and it uses
little CPU; registration keeps accepting sign-ups (the outbox holds them). After the broker is back
every accepted sign-up is published and reaches matching and reporting.

The outage lasts ESTAFETTE_OUTAGE_SECONDS (20 s in `make test`; `make fault` runs 60 s). Log lines and
CPU are counted from OUTAGE_SETTLE_SECONDS after the broker stopped (the first lines: each client
notices the outage) until the broker starts again; the access log of the load's own requests
(`request handled`) is not counted.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from tests.faults.load import SignupLoad
from tests.faults.suite import REGION, Platform, open_edition
from tests.faults.view import get_json, log_lines, proc_cpu_seconds, signups_on_topic
from services.registry import SERVICES as SERVICE_SPECS
from tests.support import Infra, eventually, script, wait_backlog_worked_off

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

OUTAGE_SECONDS = float(os.environ.get("ESTAFETTE_OUTAGE_SECONDS", "20"))
OUTAGE_SETTLE_SECONDS = 5.0
MAX_LINES_PER_SECOND = 1.0
MAX_CORES = 0.1
#: CPU is asserted in `make fault` (ESTAFETTE_FAULTS=full) and printed in `make test` (docs/faults.md:
#: reporting's full core late in a session was a dashboard refresh on contradictory sums, since fixed);
#: the log-line count is asserted in both.
ASSERT_CPU = os.environ.get("ESTAFETTE_FAULTS") == "full"


def test_a_kafka_outage_under_load_is_quiet_and_cheap_and_nothing_accepted_is_lost(infra: Infra) -> None:
    edition = f"outage-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    with Platform(infra, label="outage") as platform:
        offers = open_edition(platform.url("registration"), admin, edition, capacity=100)
        with SignupLoad(platform.url("registration"), edition, offers, domain=f"{edition}.example.org", rate=2.0) as load:
            load.wait_accepted(5)
            # These processes are new: first they work through what the session's earlier tests published
            # while no instance of them ran (a busy consumer is not what an outage costs).
            for spec in SERVICE_SPECS:
                wait_backlog_worked_off(infra.kafka, spec.name, [t for t in spec.reads if t.regional])
            at_stop = {name: p.log_path.stat().st_size for name, p in platform.procs.items()}
            script("kafka.sh", "stop")
            stopped = time.monotonic()
            try:
                accepted_before = len(load.answers.accepted)
                eventually(lambda: time.monotonic() - stopped >= OUTAGE_SETTLE_SECONDS, timeout=OUTAGE_SETTLE_SECONDS + 5)
                start = {name: (p.log_path.stat().st_size, proc_cpu_seconds(p.proc.pid), time.monotonic())
                         for name, p in platform.procs.items()}
                eventually(lambda: time.monotonic() - stopped >= OUTAGE_SECONDS, timeout=OUTAGE_SECONDS + 5, interval=0.5)
                measured = {}
                for name, p in platform.procs.items():
                    offset, cpu, t = start[name]
                    seconds = time.monotonic() - t
                    lines, events = log_lines(p.log_path, offset, without_access_log=True)
                    measured[name] = (lines / seconds, (proc_cpu_seconds(p.proc.pid) - cpu) / seconds, events)
                accepted_during = len(load.answers.accepted) - accepted_before
                first_lines = {name: log_lines(p.log_path, at_stop[name])[1] for name, p in platform.procs.items()}
            finally:
                script("kafka.sh", "start")
            load.wait_accepted(5, timeout=60)
        answers = load.answers

        for name, (rate, cores, events) in measured.items():
            print(f"{name}: {rate:.2f} log lines/s, {cores:.3f} cores during the outage; lines: {events[:5]}")
        print(f"sign-ups accepted during the outage: {accepted_during}; in all {len(answers.accepted)}")
        assert accepted_during > 0, answers.statuses  # the outbox keeps accepting work
        assert not answers.server_errors, answers.server_errors[:3]
        for name, (rate, cores, events) in measured.items():
            assert rate < MAX_LINES_PER_SECOND, f"{name}: {rate:.2f} lines/s: {events[:20]}"
            if ASSERT_CPU:
                assert cores < MAX_CORES, f"{name}: {cores:.3f} cores"
            elif cores >= MAX_CORES:
                print(f"NOT MET (asserted by make fault): {name} used {cores:.3f} cores during the outage")
            assert "kafka unreachable" in first_lines[name], f"{name} did not log the outage"
        platform.wait_ready()

        def published() -> bool:
            return set(answers.accepted) <= set(signups_on_topic(infra.kafka, REGION, edition).events)

        eventually(published, timeout=120, interval=2)

        def everywhere() -> bool:
            known = get_json(f"{platform.url('matching')}/editions/{edition}", admin)["participants"]
            counted = get_json(f"{platform.url('reporting')}/reports/editions/{edition}", admin)["signups"]
            return known >= len(answers.accepted) and counted >= len(answers.accepted)

        eventually(everywhere, timeout=120, interval=1)
        for name, p in platform.procs.items():
            eventually(lambda p=p, name=name: "kafka reachable again" in log_lines(p.log_path, at_stop[name])[1],
                       timeout=60, interval=1)
