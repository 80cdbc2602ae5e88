"""Estafette event contracts (v2): the envelope, every event, and the topic registry.

This package is the only place where topic names live. Services import events and topics from here;
changes within v2 are additive only (see tests/contract).
"""

from schemas import events as _events
from schemas.envelope import Event
from schemas.events import *  # noqa: F403
from schemas.reasons import UNMATCHED_REASONS, UnmatchedReason
from schemas.topics import TOPICS, Topic, topic_for, topic_name

__all__ = ["UNMATCHED_REASONS", "UnmatchedReason", "TOPICS", "Event", "Topic", "topic_for", "topic_name", "decode_event", "ALL_EVENTS", *_events.__all__]
