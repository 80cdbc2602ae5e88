"""The topic registry: the only place topic names are written.

A **regional topic** holds what one region owns (its editions, offers, sign-ups, participants,
matches, notifications, feedback, dead letters) and is named `estafette.<region>.<kind>.v2` by
`Topic.name_in(region)`: a region's topics can get their own partitions, retention and ACLs, a
region's consumers read only them, and a closed region's topics can be deleted. A **national topic**
(the relay, the region registry, the API keys, national dead letters) has one name, `Topic.name`.

Every topic carries the events of one entity kind, keyed by that entity's id, so all events about one
entity stay in order on one partition. Topics are created by `estafette kafka setup` (national) and
`estafette regions apply` (each region's, from the region registry), never by the services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas import events as ev
from schemas.envelope import Event

#: The contract version in every event topic's name (see schemas/events.py).
VERSION = 2
#: A region id: lower-case letters, digits and hyphens (no dots: it is one segment of a topic name).
REGION_ID_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
# (no braces: FastStream reads `{...}` in a subscription pattern as a path parameter)
_REGION_SEGMENT = "[a-z][a-z0-9-]*"
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    kind: str
    key: str
    events: tuple[type[Event], ...]
    #: Regional: one topic per region (`name_in(region)`); national: one topic (`name`).
    regional: bool = True
    cleanup_policy: str = "delete"
    #: Defaults; a region's own partitions and retention come from the region registry.
    partitions: int = 4
    retention_ms: int = 90 * _DAY_MS  # an edition's lifetime, with room
    version: int = VERSION
    #: Carries personal data: never copied elsewhere (not even into a dead letter).
    personal_data: bool = False

    @property
    def name(self) -> str:
        """A national topic's name."""
        if self.regional:
            raise ValueError(f"{self.kind} is a regional topic: use name_in(region)")
        return f"estafette.{self.kind}.v{self.version}"

    def name_in(self, region: str) -> str:
        """A regional topic's name in `region`: `estafette.<region>.<kind>.v2`."""
        if not self.regional:
            raise ValueError(f"{self.kind} is a national topic: use name")
        if not re.fullmatch(REGION_ID_PATTERN, region):
            raise ValueError(f"{region!r} is not a region id ({REGION_ID_PATTERN})")
        return f"estafette.{region}.{self.kind}.v{self.version}"

    @property
    def template(self) -> str:
        """The name with a `{region}` placeholder (a national topic's plain name), for documents."""
        return f"estafette.{{region}}.{self.kind}.v{self.version}" if self.regional else self.name

    @property
    def pattern(self) -> str:
        """A regular expression matching this topic in every region (or the national topic's name)."""
        if not self.regional:
            return re.escape(self.name)
        return rf"estafette\.{_REGION_SEGMENT}\.{re.escape(self.kind)}\.v{self.version}"

    def compacted(self) -> bool:
        return self.cleanup_policy == "compact"


# --- regional ---------------------------------------------------------------------------------
EDITIONS = Topic("editions", "edition", (ev.EditionOpened, ev.EditionClosed, ev.EditionCancelled))
OFFERS = Topic("offers", "offer_id", (ev.OfferPublished, ev.OfferChanged, ev.OfferCancelled))
SIGNUPS = Topic(
    "signups", "signup_id",
    (ev.SignupSubmitted, ev.SignupChanged, ev.SignupApproved, ev.SignupRefused, ev.SignupWithdrawn),
)
#: Contact details (personal data), compacted and keyed by sign-up id: a tombstone (null value)
#: removes a person's details from the topic and from every service that keeps them.
PARTICIPANTS = Topic(
    "participants", "signup_id", (ev.ParticipantRegistered,), cleanup_policy="compact", retention_ms=-1,
    personal_data=True,
)
MATCHES = Topic(
    "matches",
    "signup_id",
    (ev.MatchAssigned, ev.MatchWaitlisted, ev.MatchUnmatched, ev.SeatOffered, ev.SeatOfferEnded),
)
NOTIFICATION_REQUESTS = Topic("notification-requests", "notification_id", (ev.NotificationRequested,))
NOTIFICATIONS = Topic("notifications", "notification_id", (ev.NotificationSent, ev.NotificationFailed))
FEEDBACK = Topic(
    "feedback", "feedback_id", (ev.FeedbackSubmitted, ev.KnowledgeItemApproved, ev.KnowledgeItemRejected)
)
#: Records of the region's topics a consumer could not handle after its retries, with the error.
DEAD_LETTERS = Topic("dead-letters", "source_topic", ())

# --- national ---------------------------------------------------------------------------------
RELAY = Topic(
    "relay", "leg_id", (ev.RelayLegPlanned, ev.RelayLegStarted, ev.RelayLegHandedOver), regional=False, partitions=1
)
#: Privacy-safe aggregates for national dashboards (schemas/dashboard.py): compacted, keyed
#: `<region>:<edition>:<day>`, the latest value per key wins. Records, not events.
DASHBOARD = Topic(
    "dashboard", "key", (), regional=False, partitions=1, cleanup_policy="compact", retention_ms=-1, version=1
)
#: The region registry (schemas/regions.py): compacted, one record per region, read whole by services.
REGIONS = Topic("regions", "region", (), regional=False, partitions=1, cleanup_policy="compact", retention_ms=-1, version=1)
#: API keys (schemas/access.py): compacted, one record per key, read whole by every service.
API_KEYS = Topic("api-keys", "key_id", (), regional=False, partitions=1, cleanup_policy="compact", retention_ms=-1, version=1)
#: Dead letters of national topics (the relay).
NATIONAL_DEAD_LETTERS = Topic("dead-letters", "source_topic", (), regional=False, partitions=1)

REGIONAL: tuple[Topic, ...] = (
    EDITIONS, OFFERS, SIGNUPS, PARTICIPANTS, MATCHES, NOTIFICATION_REQUESTS, NOTIFICATIONS, FEEDBACK, DEAD_LETTERS,
)
NATIONAL: tuple[Topic, ...] = (RELAY, REGIONS, API_KEYS, NATIONAL_DEAD_LETTERS, DASHBOARD)
TOPICS: tuple[Topic, ...] = REGIONAL + NATIONAL

_BY_EVENT = {event: topic for topic in TOPICS for event in topic.events}
_NAME = re.compile(rf"^estafette\.(?:(?P<region>{_REGION_SEGMENT})\.)?(?P<kind>[a-z-]+)\.v(?P<version>\d+)$")


def topic_for(event: Event | type[Event]) -> Topic:
    """The topic an event is published on."""
    cls = event if isinstance(event, type) else type(event)
    return _BY_EVENT[cls]


def topic_name(event: Event) -> str:
    """The name of the topic `event` is published on: its region's topic, or the national one."""
    topic = topic_for(event)
    return topic.name_in(event.region) if topic.regional else topic.name


def parse(name: str) -> tuple[Topic, str | None]:
    """(topic, region) of a topic name of this registry; region None for a national topic.
    ValueError for any other name."""
    match = _NAME.match(name)
    if match:
        region, kind, version = match["region"], match["kind"], int(match["version"])
        for topic in REGIONAL if region else NATIONAL:
            if topic.kind == kind and topic.version == version:
                return topic, region
    raise ValueError(f"{name!r} is not an Estafette topic")


def dead_letters_for(name: str) -> str:
    """Where an unhandled record of topic `name` goes: its region's dead-letter topic (a region's
    data stays in that region), or the national one."""
    try:
        _, region = parse(name)
    except ValueError:
        region = None
    return DEAD_LETTERS.name_in(region) if region else NATIONAL_DEAD_LETTERS.name


def subscription_pattern(topics: tuple[Topic, ...] | list[Topic]) -> str:
    """One anchored regular expression matching `topics` in every region (a pattern subscription:
    a region added later is picked up at the consumer's next metadata refresh)."""
    return "^(?:" + "|".join(t.pattern for t in topics) + ")$"
