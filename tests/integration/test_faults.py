"""The fault suite's short form (tests/faults/suite.py; `make fault` runs the full form, docs/faults.md):
under a steady load of sign-ups every service is killed with SIGKILL and restarted, the broker is
restarted and PostgreSQL restarts like a crash; then, seen from outside, every accepted sign-up is on
its topic and in matching's and reporting's views exactly once, each person has one match outcome and
one e-mail of each kind (duplicates at most the e-mails in flight at a crash of notifications), no
request got a 500, and every 503 carried Retry-After."""

from __future__ import annotations

import os

import pytest

from tests.faults import suite
from tests.support import Infra

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


def test_nothing_accepted_is_lost_or_duplicated_through_crashes_under_load(infra: Infra) -> None:
    plan = suite.FULL if os.environ.get("ESTAFETTE_FAULTS") == "full" else suite.SHORT
    report = suite.run(infra, plan)
    print(report.text())
    assert report.accepted > 0 and report.notifications_crashes >= 2, report.text()
    assert not report.problems(), report.text()
