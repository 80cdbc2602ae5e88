"""The topic registry: the only place topic names are written.

Every topic carries the events of one entity kind, keyed by that entity's id, so all events about one
entity stay in order on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.envelope import Event
from schemas import events as ev


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    events: tuple[type[Event], ...]
    cleanup_policy: str = "delete"
    retention_ms: int = 90 * 24 * 3600 * 1000  # an edition's lifetime, with room


EDITIONS = Topic("estafette.editions.v1", 3, "edition", (ev.EditionOpened, ev.EditionClosed))
OFFERS = Topic("estafette.offers.v1", 6, "offer_id", (ev.OfferPublished, ev.OfferCancelled))
SIGNUPS = Topic("estafette.signups.v1", 6, "signup_id", (ev.SignupSubmitted, ev.SignupWithdrawn))
MATCHES = Topic(
    "estafette.matches.v1",
    6,
    "signup_id",
    (ev.MatchAssigned, ev.MatchWaitlisted, ev.MatchUnmatched, ev.SeatOffered, ev.SeatOfferEnded),
)
NOTIFICATION_REQUESTS = Topic("estafette.notification-requests.v1", 3, "notification_id", (ev.NotificationRequested,))
NOTIFICATIONS = Topic(
    "estafette.notifications.v1", 3, "notification_id", (ev.NotificationSent, ev.NotificationFailed)
)
FEEDBACK = Topic("estafette.feedback.v1", 3, "feedback_id", (ev.FeedbackSubmitted,))
RELAY = Topic("estafette.relay.v1", 1, "leg_id", (ev.RelayLegStarted, ev.RelayLegHandedOver))
#: API keys (schemas/access.py): compacted, one record per key, read whole by every service.
API_KEYS = Topic("estafette.api-keys.v1", 1, "key_id", (), cleanup_policy="compact", retention_ms=-1)
#: Messages a consumer could not handle after its retries, with the error; kept for an operator.
DEAD_LETTERS = Topic("estafette.dead-letters.v1", 1, "source_topic", ())

TOPICS: tuple[Topic, ...] = (
    EDITIONS,
    OFFERS,
    SIGNUPS,
    MATCHES,
    NOTIFICATION_REQUESTS,
    NOTIFICATIONS,
    FEEDBACK,
    RELAY,
    API_KEYS,
    DEAD_LETTERS,
)

_BY_EVENT = {event: topic for topic in TOPICS for event in topic.events}


def topic_for(event: Event | type[Event]) -> Topic:
    """The topic an event is published on."""
    cls = event if isinstance(event, type) else type(event)
    return _BY_EVENT[cls]
