"""The fault suite (docs/faults.md): crashes under a steady load of sign-ups, then the outside view.

1. The four services run as processes (`estafette serve`); an edition of the suite's own region with a few offers.
2. A steady load of sign-ups starts (tests/faults/load.py) and runs through every fault:
   - each service in turn is killed with SIGKILL and started again;
   - the broker is restarted (stopped and started; the full form also kills it with SIGKILL);
   - PostgreSQL stops like a crash (`postgres.sh restart --immediate`: `pg_ctl -m immediate`, crash
     recovery at its start).
3. The load stops; once everything is ready and caught up, a match run; while its e-mails go out,
   notifications is killed with SIGKILL (once; twice in the full form) and started again.
4. The outside view (tests/faults/view.py) counts: every accepted sign-up (201) exactly once on the
   sign-ups topic, in matching's and reporting's views; one match outcome per person on the matches
   topic; one e-mail of each kind per person in the mail sink. Duplicates are counted: duplicated
   effects must be 0; duplicate e-mails at most the messages in flight at each crash of notifications
   (`in_flight_per_crash`), counted per crash (a repeat belongs to the first kill after its first
   copy arrived). Answers: no 5xx but 503, and every 503 with Retry-After.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from tests.faults.load import Answers, SignupLoad
from tests.faults.view import Mail, get_json, mail_to, outcomes_on_topic, signups_on_topic
from tests.support import STATE, Infra, ServiceProcess, eventually, region, script

SERVICES = ("registration", "matching", "notifications", "reporting")
#: The fault suite's own region, added to the registry once per session (`Platform`): no other test's
#: webhook endpoints, editions or load are in it, so what the suite counts and logs there is its own
#: (other tests' webhook endpoints of twente once made notifications log their retries, 15 lines/s,
#: through the Kafka outage).
REGION = f"faults-{uuid.uuid4().hex[:6]}"
_REGION_ADDED: list[str] = []
#: Quick e-mails and re-matches (as the end-to-end tests run them).
ENV = {
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.2",
    "MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3",
    "MATCHING_REMATCH_POLL_SECONDS": "0.2",
}
MATCH_KINDS = {"assigned", "waitlisted", "unmatched"}


@dataclass(frozen=True)
class Plan:
    """What a run of the suite does. `short`: `make test`; `full`: `make fault`."""

    name: str
    rate: float  # sign-ups per second
    #: After each fault, wait until this many more sign-ups have been accepted (load between faults).
    accepted_between: int
    #: Wait until a restarted service is ready before the next fault (else only until it answers).
    wait_ready: bool
    kill_broker: bool  # also kill the broker with SIGKILL (besides a graceful restart)
    mail_crashes: int  # SIGKILLs of notifications while the match e-mails go out


SHORT = Plan("short", rate=5.0, accepted_between=10, wait_ready=False, kill_broker=False, mail_crashes=1)
FULL = Plan("full", rate=10.0, accepted_between=100, wait_ready=True, kill_broker=True, mail_crashes=2)


@dataclass
class Report:
    plan: str
    seconds: float = 0.0
    faults: list[str] = field(default_factory=list)
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    accepted: int = 0
    #: 5xx other than 503, and 503 without Retry-After: must be 0
    server_errors: int = 0
    unavailable_without_retry_after: int = 0
    on_topic: int = 0
    lost: int = 0  # accepted, not on the sign-ups topic
    duplicated_signups: int = 0  # a sign-up with more than one SignupSubmitted event
    stored_unanswered: int = 0  # on the topic though the client got no answer (allowed)
    redelivered_records: int = 0  # the same event twice on a topic (allowed: consumers dedupe)
    matching_participants: int = 0
    reporting_signups: int = 0
    outcomes_missing: int = 0
    outcomes_duplicated: int = 0  # a person with more than one outcome event of the run
    reporting_outcomes: int = 0  # assigned + waitlisted + unmatched in reporting's view
    emails: dict[str, int] = field(default_factory=dict)  # per kind
    emails_missing: int = 0
    duplicate_emails: int = 0
    same_message_id: int = 0
    in_flight_per_crash: int = 1
    #: when each kill -9 of notifications had taken effect (UTC, the mail sink's clock)
    notifications_killed_at: list[datetime] = field(default_factory=list)
    #: duplicate e-mails by the crash that caused them (see view.Mail.duplicates_per_crash)
    duplicates_per_crash: list[int] = field(default_factory=list)
    server_error_samples: list[str] = field(default_factory=list)
    #: (what, seconds since the start) of each phase
    timeline: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic, repr=False)

    def mark(self, what: str) -> None:
        self.timeline.append((what, round(time.monotonic() - self.started, 1)))

    @property
    def notifications_crashes(self) -> int:
        return len(self.notifications_killed_at)

    @property
    def duplicate_email_bound(self) -> int:
        return self.notifications_crashes * self.in_flight_per_crash

    def problems(self) -> list[str]:
        """What fails the suite (empty: green)."""
        found = []
        checks = {
            "accepted sign-ups lost": self.lost,
            "sign-ups duplicated on the topic": self.duplicated_signups,
            "5xx answers other than 503": self.server_errors,
            "503 answers without Retry-After": self.unavailable_without_retry_after,
            "match outcomes missing": self.outcomes_missing,
            "match outcomes duplicated": self.outcomes_duplicated,
            "e-mails missing": self.emails_missing,
        }
        found += [f"{what}: {n}" for what, n in checks.items() if n]
        if self.matching_participants != self.on_topic:
            found.append(f"matching knows {self.matching_participants} participants, the topic has {self.on_topic}")
        if self.reporting_signups != self.on_topic:
            found.append(f"reporting counts {self.reporting_signups} sign-ups, the topic has {self.on_topic}")
        if self.reporting_outcomes != self.on_topic:
            found.append(f"reporting counts {self.reporting_outcomes} match outcomes for {self.on_topic} sign-ups")
        # per crash (the total bound, crashes x in flight, follows)
        *per_crash, without_crash = self.duplicates_per_crash or [0]
        if any(n > self.in_flight_per_crash for n in per_crash):
            found.append(f"duplicate e-mails per crash {per_crash}: more than {self.in_flight_per_crash} in flight")
        if without_crash:
            found.append(f"{without_crash} duplicate e-mails first sent after the last crash of notifications")
        return found

    def text(self) -> str:
        lines = [f"fault suite ({self.plan}) in {self.seconds:.0f} s: {', '.join(self.faults)}"]
        lines.append(f"  sign-up requests {self.requests}: {self.statuses}, unanswered {self.unanswered}; "
                     f"5xx other than 503: {self.server_errors}; 503 without Retry-After: {self.unavailable_without_retry_after}")
        lines.append(f"  accepted {self.accepted}; on the topic {self.on_topic} (lost {self.lost}, duplicated "
                     f"{self.duplicated_signups}, stored without an answer {self.stored_unanswered}, records "
                     f"redelivered {self.redelivered_records}); matching {self.matching_participants}, reporting {self.reporting_signups}")
        lines.append(f"  match outcomes: missing {self.outcomes_missing}, duplicated {self.outcomes_duplicated}; "
                     f"reporting's outcomes {self.reporting_outcomes}")
        lines.append(f"  e-mails {self.emails}: missing {self.emails_missing}, duplicates {self.duplicate_emails} "
                     f"(bound {self.duplicate_email_bound}: {self.notifications_crashes} crashes of notifications x "
                     f"{self.in_flight_per_crash} in flight; per crash {self.duplicates_per_crash[:-1]}, after the last "
                     f"{sum(self.duplicates_per_crash[-1:])}; same Message-ID twice: {self.same_message_id})")
        lines.append("  timeline: " + ", ".join(f"{what} {t:.0f} s" for what, t in self.timeline))
        problems = self.problems()
        lines.append("  " + ("GREEN" if not problems else "FAILED: " + "; ".join(problems)))
        return "\n".join(lines)


def in_flight_per_crash() -> int:
    """How many e-mails notifications may have handed to SMTP without recording them as sent: its
    SMTP concurrency if it has that setting, else 1 (one message at a time)."""
    from services.notifications.config import NotificationsSettings

    settings = NotificationsSettings()
    for name in ("smtp_concurrency", "send_concurrency"):
        if isinstance(getattr(settings, name, None), int):
            return max(1, getattr(settings, name))
    return 1


class Platform:
    """The four services as processes, restarted after each kill."""

    def __init__(self, infra: Infra, label: str = "fault") -> None:
        self.infra, self.label = infra, label
        self.procs = {name: ServiceProcess(infra, name, ENV, label=f"{label}-{name}") for name in SERVICES}

    def __enter__(self) -> Platform:
        if not _REGION_ADDED:
            self.infra.add_regions(region(REGION))
            _REGION_ADDED.append(REGION)
        for proc in self.procs.values():
            proc.start_process()
        for proc in self.procs.values():
            proc.wait_healthy(120)
        return self

    def __exit__(self, *_: object) -> None:
        for proc in self.procs.values():
            proc.stop()

    def url(self, name: str) -> str:
        return self.procs[name].url

    def kill_and_restart(self, name: str, wait_ready: bool) -> datetime:
        """kill -9 a service and start it again; when the kill had taken effect."""
        self.procs[name].kill()
        killed_at = datetime.now(timezone.utc)
        self.procs[name] = ServiceProcess(self.infra, name, ENV, label=f"{self.label}-{name}").start_process()
        if wait_ready:
            self.procs[name].wait_healthy(120)
        else:
            eventually(lambda: _answers(self.procs[name].url), timeout=60)
        return killed_at

    def wait_ready(self) -> None:
        for proc in self.procs.values():
            proc.wait_healthy(180)


def edition_dates(days_ahead: int = 120) -> dict[str, str]:
    """An edition's dates a few months from now (sign-ups open until a month before it starts)."""
    starts = date.today() + timedelta(days=days_ahead)
    return {"signup_deadline": f"{starts - timedelta(days=30)}T00:00:00Z", "starts_on": str(starts),
            "ends_on": str(starts + timedelta(days=4))}


def open_edition(registration: str, admin: dict[str, str], edition: str, capacity: int) -> list[str]:
    """An edition of the suite's region with 4 offers of `capacity` seats each; the offers' ids."""
    dates = edition_dates()
    r = httpx.post(f"{registration}/editions", headers=admin, timeout=30, json={
        "id": edition, "region": REGION, "name": "Fault suite", **dates, "languages": ["nl", "de", "en"]})
    assert r.status_code == 201, r.text
    offers = [f"{edition}-o{i}" for i in range(4)]
    for i, offer in enumerate(offers):
        r = httpx.post(f"{registration}/editions/{edition}/offers", headers=admin, timeout=30, json={
            "id": offer, "host_org": f"host-{i}", "title": f"Visit {i}", "date": dates["starts_on"],
            "capacity": capacity, "location": "Enschede"})
        assert r.status_code == 201, r.text
    return offers


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=2)
        return True
    except httpx.HTTPError:
        return False


def _kill_broker() -> None:
    pid = int((STATE / "kafka" / "kafka.pid").read_text().strip())
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    eventually(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", timeout=30)


def run(infra: Infra, plan: Plan) -> Report:
    t0 = time.monotonic()
    report = Report(plan.name, in_flight_per_crash=in_flight_per_crash())
    edition = f"fault-{uuid.uuid4().hex[:8]}"
    domain = f"{edition}.example.org"
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    with Platform(infra) as platform:
        reg = platform.url("registration")
        offers = open_edition(reg, admin, edition, capacity=25 if plan is SHORT else 150)

        report.mark("services ready")
        load = SignupLoad(reg, edition, offers, domain=domain, rate=plan.rate)
        with load:
            load.wait_accepted(plan.accepted_between)
            for name in SERVICES:
                killed_at = platform.kill_and_restart(name, plan.wait_ready)
                report.faults.append(f"kill -9 {name}")
                report.mark(f"{name} restarted")
                if name == "notifications":
                    report.notifications_killed_at.append(killed_at)
                load.wait_accepted(plan.accepted_between, timeout=120)
            script("kafka.sh", "stop")
            script("kafka.sh", "start")
            report.faults.append("broker restart")
            report.mark("broker restarted")
            load.wait_accepted(plan.accepted_between, timeout=120)
            if plan.kill_broker:
                _kill_broker()
                script("kafka.sh", "start")
                report.faults.append("kill -9 broker")
                load.wait_accepted(plan.accepted_between, timeout=120)
            script("postgres.sh", "restart", "--immediate")
            report.faults.append("pg_ctl restart -m immediate")
            report.mark("postgres restarted")
            load.wait_accepted(plan.accepted_between, timeout=120)
        answers = load.answers
        report.mark("load stopped")
        platform.wait_ready()
        report.mark("all ready")
        _count_signups(report, infra, platform, answers, edition, admin)
        report.mark("sign-ups counted")
        _match_and_mail(report, infra, platform, plan, edition, domain, admin, list(answers.accepted.values()))
    report.mark("e-mails counted")
    report.seconds = time.monotonic() - t0
    (STATE / f"fault-report-{plan.name}.json").write_text(json.dumps(asdict(report), indent=2, default=str))
    return report


def _count_signups(report: Report, infra: Infra, platform: Platform, answers: Answers, edition: str, admin: dict[str, str]) -> None:
    report.requests, report.unanswered = answers.sent, answers.unanswered
    report.statuses = {str(k): v for k, v in sorted(answers.statuses.items())}
    report.accepted = len(answers.accepted)
    report.server_errors = len(answers.server_errors)
    report.server_error_samples = [f"{s}: {body}" for s, body in answers.server_errors[:5]]
    report.unavailable_without_retry_after = answers.unavailable_without_retry_after

    def topic_has_all() -> Any:
        count = signups_on_topic(infra.kafka, REGION, edition)
        return count if set(answers.accepted) <= set(count.events) else None

    try:  # the relays publish what they hold; then every accepted sign-up must be there
        count = eventually(topic_has_all, timeout=120, interval=2)
    except AssertionError:
        count = signups_on_topic(infra.kafka, REGION, edition)
    report.on_topic = len(count.events)
    report.lost = len(set(answers.accepted) - set(count.events))
    report.duplicated_signups = len(count.keys_more_than_once())
    report.stored_unanswered = len(set(count.events) - set(answers.accepted))
    report.redelivered_records = count.redelivered

    def caught_up() -> bool:
        report.matching_participants = get_json(f"{platform.url('matching')}/editions/{edition}", admin)["participants"]
        report.reporting_signups = get_json(f"{platform.url('reporting')}/reports/editions/{edition}", admin)["signups"]
        return report.matching_participants == report.on_topic and report.reporting_signups == report.on_topic

    try:
        eventually(caught_up, timeout=120, interval=1)
    except AssertionError:
        pass  # reported by Report.problems()


def _match_and_mail(
    report: Report, infra: Infra, platform: Platform, plan: Plan, edition: str, domain: str, admin: dict[str, str],
    answers_addresses: list[str],
) -> None:
    matching = platform.url("matching")
    r = httpx.post(f"{matching}/editions/{edition}/match-runs", headers=admin, timeout=30)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    eventually(lambda: get_json(f"{matching}/match-runs/{run_id}", admin)["status"] == "done", timeout=120)
    people = report.on_topic
    report.mark("match run done")

    def match_mails() -> int:
        mail = mail_to(infra.mail_api, domain)
        kinds = mail.kinds()
        return sum(n for k, n in kinds.items() if k in MATCH_KINDS | {"e-mail"})

    for crash in range(plan.mail_crashes):
        # kill notifications while it sends the match e-mails (if it has not sent them all by then)
        target = max(1, people * (crash + 1) // (plan.mail_crashes + 2))
        try:
            eventually(lambda: match_mails() >= target, timeout=120, interval=0.5)
        except AssertionError:
            pass
        report.notifications_killed_at.append(platform.kill_and_restart("notifications", wait_ready=False))
        report.faults.append("kill -9 notifications while sending")
        report.mark("notifications killed while sending")

    def outcomes_complete() -> Any:
        count = outcomes_on_topic(infra.kafka, REGION, edition)
        return count if len(count.events) >= people else None

    try:
        outcomes = eventually(outcomes_complete, timeout=120, interval=2)
    except AssertionError:
        outcomes = outcomes_on_topic(infra.kafka, REGION, edition)
    report.outcomes_missing = people - len(outcomes.events)
    report.outcomes_duplicated = len(outcomes.keys_more_than_once())
    report.redelivered_records += outcomes.redelivered
    report.mark("outcomes counted")

    def reporting_outcomes() -> bool:
        body = get_json(f"{platform.url('reporting')}/reports/editions/{edition}", admin)
        report.reporting_outcomes = body["assigned"] + body["waitlisted"] + body["unmatched"]
        return report.reporting_outcomes == people

    try:
        eventually(reporting_outcomes, timeout=120, interval=1)
    except AssertionError:
        pass

    wanted = set(answers_addresses)

    def missing(mail: Mail) -> int:
        """E-mails not (yet) there: a match result for each person (any e-mail, from a notifications
        that does not name the kind), and a sign-up confirmation for each if it sends them."""
        kinds = mail.kinds()
        result_kinds = MATCH_KINDS if kinds.keys() & MATCH_KINDS else {"e-mail"}
        results = mail.recipients(result_kinds)
        absent = max(people - len(results), len(wanted - results))
        if "signup_confirmed" in kinds:
            confirmed = mail.recipients({"signup_confirmed"})
            absent += max(people - len(confirmed), len(wanted - confirmed))
        return absent

    def mails_complete() -> Any:
        mail = mail_to(infra.mail_api, domain)
        return mail if missing(mail) == 0 else None

    try:
        mail = eventually(mails_complete, timeout=240, interval=2)
    except AssertionError:
        mail = mail_to(infra.mail_api, domain)
    report.emails = dict(sorted(mail.kinds().items()))
    report.emails_missing = missing(mail)
    report.duplicate_emails = mail.duplicates()
    report.duplicates_per_crash = mail.duplicates_per_crash(report.notifications_killed_at)
    report.same_message_id = mail.same_message_id
