"""Why a participant was not placed: the published list of reason codes.

`MatchUnmatched.reason_code` and `MatchWaitlisted.reason_code` hold one of these codes. The matching
engine emits only these (tests/contract/test_reasons.py), and every participant-facing text has a
sentence for each of them in every language (the same test).
"""

from __future__ import annotations

from typing import Literal, get_args

UnmatchedReason = Literal[
    "all_full",  # every chosen offer was full
    "own_org",  # every chosen offer is hosted by the participant's own organisation
    "unavailable",  # every chosen offer is on a day the participant is not available
    "org_cap",  # every chosen offer had reached its limit for the participant's organisation
    "forbidden",  # every chosen offer was excluded by the organisers
    "no_choices",  # no offer was chosen (or none of the chosen offers exists any more)
    "mixed",  # no chosen offer was possible, for different reasons
    "seat_offers_ended",  # declined, or did not accept in time, every seat offered; no other choice left
]
UNMATCHED_REASONS: tuple[str, ...] = get_args(UnmatchedReason)

#: A short English explanation of each code (the `reason` field of MatchUnmatched).
REASON_TEXTS: dict[str, str] = {
    "all_full": "Every chosen offer was full.",
    "own_org": "Every chosen offer is at their own organisation.",
    "unavailable": "Every chosen offer is on a day they are not available.",
    "org_cap": "Every chosen offer had reached its limit for their organisation.",
    "forbidden": "Every chosen offer was excluded by the organisers.",
    "no_choices": "Chose no offers.",
    "mixed": "No chosen offer was possible",
    "seat_offers_ended": "Declined, or did not accept in time, every seat offered.",
}
