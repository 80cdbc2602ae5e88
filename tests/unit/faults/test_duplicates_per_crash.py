"""The fault suite's bound on duplicate e-mails holds per crash of notifications (issue 13): a repeat
belongs to the first kill after its first copy reached the mail sink."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from tests.faults.suite import Report
from tests.faults.view import Mail

T0 = datetime(2026, 12, 4, 1, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def mail(*sent: tuple[str, float, int]) -> Mail:
    """(recipient, when its first copy arrived, copies) of one kind each."""
    per = Counter({(to, "assigned"): copies for to, _, copies in sent})
    return Mail(per, 0, {(to, "assigned"): at(first) for to, first, _ in sent})


def test_each_repeat_is_counted_at_the_first_kill_after_its_first_copy():
    sink = mail(("a@x", 1, 2), ("b@x", 9, 2), ("c@x", 11, 3), ("d@x", 12, 1), ("e@x", 25, 1))
    assert sink.duplicates() == 4
    assert sink.duplicates_per_crash([at(10), at(20)]) == [2, 2, 0]


def test_a_repeat_first_sent_after_the_last_kill_has_no_crash_to_blame():
    assert mail(("a@x", 30, 2)).duplicates_per_crash([at(10), at(20)]) == [0, 0, 1]


def report(per_crash: list[int]) -> Report:
    return Report("short", duplicate_emails=sum(per_crash), notifications_killed_at=[at(10 * i) for i in range(len(per_crash) - 1)],
                  in_flight_per_crash=8, duplicates_per_crash=per_crash)


def test_more_than_the_messages_in_flight_at_one_crash_fails_though_the_total_is_within_the_bound():
    assert report([0, 7, 0]).problems() == []
    assert report([0, 9, 0]).problems() == ["duplicate e-mails per crash [0, 9]: more than 8 in flight"]
    assert report([0, 0, 1]).problems() == ["1 duplicate e-mails first sent after the last crash of notifications"]
