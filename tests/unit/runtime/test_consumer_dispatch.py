"""Dispatch tables: one use case per event type; other event types of the topic are ignored."""

from datetime import UTC, datetime

from estafette.runtime.consumer import dispatch
from schemas import EditionClosed, EditionOpened, SignupWithdrawn

ENVELOPE = {"region": "twente", "edition": "tw-2027"}


async def test_each_event_type_reaches_its_use_case_and_others_are_ignored():
    calls: list[tuple[str, str]] = []

    async def opened(tx, event):
        calls.append(("opened", event.edition))

    async def closed(tx, event):
        calls.append(("closed", event.reason))

    handle = dispatch({EditionOpened: opened, EditionClosed: closed})
    await handle(None, EditionOpened(**ENVELOPE, name="Week", signup_deadline=datetime(2027, 5, 1, tzinfo=UTC),
                                     starts_on=datetime(2027, 5, 31).date(), ends_on=datetime(2027, 6, 4).date()))
    await handle(None, EditionClosed(**ENVELOPE, reason="corona"))
    await handle(None, SignupWithdrawn(**ENVELOPE, signup_id="s-1"))
    assert calls == [("opened", "tw-2027"), ("closed", "corona")]
    assert handle.__doc__ == "Handles: EditionClosed, EditionOpened"
