"""Reporting rules (pure: no I/O): what each event means for the state kept per entity, which outcome
is the latest, derived ratios and roll-ups.

Events of different topics arrive in any order, so each rule takes the stored state (None when the
entity is not known yet) and returns the state to store: the result must not depend on the order of
arrival. A closed or cancelled edition, a cancelled offer, a withdrawn sign-up and an employer's
answer (approved, refused) are final; an offer's details are ordered by its `sequence`; match and
notification outcomes are ordered by `Version` (the newest wins).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

EditionStatus = Literal["unknown", "open", "closed", "cancelled"]
#: Where a sign-up stands with its employer (README glossary: approval): `not_required` and `pending` as
#: SignupSubmitted says, then `approved` (SignupApproved) or `refused` (SignupRefused, which ends it).
ApprovalState = Literal["not_required", "pending", "approved", "refused"]
#: What a participant was last told (README glossary: match outcome).
MatchOutcomeName = Literal["assigned", "offered", "waitlisted", "unmatched"]
NotificationStatus = Literal["sent", "failed"]
#: The figures that /reports/regions adds up per region and nationally (besides `editions`).
REGION_FIGURES = (
    "offers", "signups", "withdrawn", "assigned", "emails_sent",
    "not_required", "pending_approval", "approved", "refused",
    "feedback_count", "feedback_shareable", "rating_total",
)


# --- the latest outcome wins ------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Version:
    """Orders the outcomes of one entity: by occurred_at; the event id breaks ties, so that the
    result does not depend on the order in which the events arrive."""

    occurred_at: datetime
    event_id: uuid.UUID


def supersedes(new: Version, stored: Version | None) -> bool:
    """True when an outcome at `new` replaces the stored one (a newer match or notification outcome);
    an older outcome, or the same one again, is ignored."""
    return stored is None or new > stored


# --- editions, offers, sign-ups, relay legs: details fill in, final states stay -----------------
@dataclass(frozen=True)
class Edition:
    edition_id: str
    region: str
    status: EditionStatus = "unknown"
    name: str | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    #: The organiser's reason and the moment of EditionCancelled (None unless cancelled).
    cancellation_reason: str | None = None
    cancelled_at: datetime | None = None


#: Statuses no later event changes (a late EditionOpened does not reopen them).
FINAL_STATUSES: frozenset[EditionStatus] = frozenset({"closed", "cancelled"})


def edition_named(edition_id: str, region: str) -> Edition:
    """An edition is known from the first event that names it, with status `unknown` until
    EditionOpened. (Stored only when the edition is not known yet.)"""
    return Edition(edition_id, region)


def edition_opened(
    stored: Edition | None, edition_id: str, region: str, name: str, starts_on: date, ends_on: date
) -> Edition:
    """EditionOpened fills in the details and opens the edition; a closed or cancelled edition stays so
    (a late EditionOpened does not reopen it)."""
    if stored is not None and stored.status in FINAL_STATUSES:
        return replace(stored, region=region, name=name, starts_on=starts_on, ends_on=ends_on)
    return Edition(edition_id, region, "open", name, starts_on, ends_on)


def edition_closed(stored: Edition | None, edition_id: str, region: str) -> Edition:
    """EditionClosed is final; the details already known are kept; a cancelled edition stays cancelled
    (cancelling says more than closing, whichever arrives first)."""
    edition = stored or edition_named(edition_id, region)
    return edition if edition.status == "cancelled" else replace(edition, status="closed")


def edition_cancelled(stored: Edition | None, edition_id: str, region: str, reason: str, at: datetime) -> Edition:
    """EditionCancelled is final, over open and closed alike, with the organiser's reason and its moment;
    the details already known are kept (and every figure: the sign-ups, assignments and e-mails of a
    cancelled edition still count as they were). A second cancellation changes nothing."""
    edition = stored or edition_named(edition_id, region)
    if edition.status == "cancelled":
        return edition
    return replace(edition, status="cancelled", cancellation_reason=reason, cancelled_at=at)


@dataclass(frozen=True)
class Offer:
    """A host's offer; `day`, `capacity` and `sequence` are None while only its cancellation is known."""

    offer_id: str
    edition_id: str
    day: date | None = None
    capacity: int | None = None
    cancelled: bool = False
    #: The offer sequence of `day` and `capacity`: 0 from OfferPublished, one higher per OfferChanged.
    sequence: int | None = None


def offer_published(
    stored: Offer | None, offer_id: str, edition_id: str, day: date, capacity: int, sequence: int = 0
) -> Offer:
    """OfferPublished (sequence 0) and OfferChanged (sequence 1, 2, ...) set the date and capacity, unless
    a higher sequence is stored already (a late, older version changes nothing); a cancelled offer stays
    cancelled."""
    if stored is not None and stored.sequence is not None and stored.sequence > sequence:
        return stored
    return Offer(offer_id, edition_id, day, capacity, cancelled=stored is not None and stored.cancelled,
                 sequence=sequence)


def offer_changed(
    stored: Offer | None, offer_id: str, edition_id: str, day: date, capacity: int, sequence: int
) -> Offer:
    """OfferChanged carries the whole offer as it is now: the same rule as OfferPublished, by sequence."""
    return offer_published(stored, offer_id, edition_id, day, capacity, sequence)


def offer_cancelled(stored: Offer | None, offer_id: str, edition_id: str) -> Offer:
    """OfferCancelled is final, whenever its OfferPublished arrives."""
    return replace(stored or Offer(offer_id, edition_id), cancelled=True)


@dataclass(frozen=True)
class Signup:
    """A sign-up without personal data: the organisation, the moment and the approval only (None while
    only the withdrawal is known; `approval` also from SignupApproved or SignupRefused alone)."""

    signup_id: str
    edition_id: str
    org: str | None = None
    signed_up_at: datetime | None = None
    withdrawn: bool = False
    approval: ApprovalState | None = None

    @property
    def active(self) -> bool:
        """Counted as a sign-up: neither withdrawn nor refused by the employer."""
        return not self.withdrawn and self.approval != "refused"


#: The employer's answers: final, whichever event arrives first.
ANSWERED: frozenset[str] = frozenset({"approved", "refused"})


@dataclass(frozen=True)
class SubmittedSignup:
    """What a SignupSubmitted tells reporting (no personal data)."""

    region: str
    edition_id: str
    signup_id: str
    org: str
    signed_up_at: datetime
    approval: ApprovalState = "not_required"


def signup_submitted(
    stored: Signup | None, signup_id: str, edition_id: str, org: str, signed_up_at: datetime,
    approval: ApprovalState = "not_required",
) -> Signup:
    """SignupSubmitted fills in the organisation, the moment and the approval it needs (`not_required` or
    `pending`); a withdrawn sign-up stays withdrawn, an employer's answer already known stays."""
    if stored is not None and stored.approval in ANSWERED:
        approval = stored.approval
    return Signup(signup_id, edition_id, org, signed_up_at, withdrawn=stored is not None and stored.withdrawn,
                  approval=approval)


def signup_approved(stored: Signup | None, signup_id: str, edition_id: str) -> Signup:
    """SignupApproved: the employer said yes (a refusal already known stays: it ended the sign-up)."""
    signup = stored or Signup(signup_id, edition_id)
    return signup if signup.approval == "refused" else replace(signup, approval="approved")


def signup_refused(stored: Signup | None, signup_id: str, edition_id: str) -> Signup:
    """SignupRefused is final: the sign-up ends, like a withdrawal, and counts as `refused`."""
    return replace(stored or Signup(signup_id, edition_id), approval="refused")


def signup_withdrawn(stored: Signup | None, signup_id: str, edition_id: str) -> Signup:
    """SignupWithdrawn is final, whenever its SignupSubmitted arrives."""
    return replace(stored or Signup(signup_id, edition_id), withdrawn=True)


@dataclass(frozen=True)
class RelayLeg:
    leg_id: str
    region: str
    edition_id: str
    starts_on: date | None = None
    handed_over_to: str | None = None
    handed_over_at: datetime | None = None
    # --- the plan (RelayLegPlanned) and the hand-over's details (contract v2.2) ---
    position: int | None = None
    first_day: date | None = None
    last_day: date | None = None
    activity: str = ""
    #: The version of the plan stored (a re-plan replaces it, an older one is ignored).
    planned: Version | None = None
    to_leg_id: str | None = None
    early: bool = False
    knowledge_items: tuple[str, ...] = ()


def relay_leg_started(stored: RelayLeg | None, leg_id: str, region: str, edition_id: str, starts_on: date) -> RelayLeg:
    """RelayLegStarted sets the leg's region, edition and start; a hand-over already known is kept."""
    return replace(stored or RelayLeg(leg_id, region, edition_id), region=region, edition_id=edition_id,
                   starts_on=starts_on)


def relay_leg_handed_over(
    stored: RelayLeg | None, leg_id: str, region: str, edition_id: str, to_region: str, at: datetime,
    to_leg_id: str | None = None, early: bool = False, knowledge_items: Iterable[str] = (),
) -> RelayLeg:
    """RelayLegHandedOver records to whom and when (the next leg, whether early, the knowledge items the
    baton carries on); the start already known is kept."""
    return replace(stored or RelayLeg(leg_id, region, edition_id), handed_over_to=to_region, handed_over_at=at,
                   to_leg_id=to_leg_id, early=early, knowledge_items=tuple(knowledge_items))


def relay_leg_planned(
    stored: RelayLeg | None, leg_id: str, region: str, edition_id: str, version: Version, position: int,
    first_day: date, last_day: date, activity: str,
) -> RelayLeg:
    """RelayLegPlanned sets the leg's plan; a re-plan (a newer version) replaces it, an older one is
    ignored; a start or hand-over already known is kept."""
    leg = stored or RelayLeg(leg_id, region, edition_id)
    if leg.planned is not None and not supersedes(version, leg.planned):
        return leg
    return replace(leg, region=region, edition_id=edition_id, position=position, first_day=first_day,
                   last_day=last_day, activity=activity, planned=version)


KnowledgeStatus = Literal["approved", "rejected"]


@dataclass(frozen=True)
class KnowledgeItem:
    """A moderated knowledge item: approved (with the text as approved: public) or rejected (no text)."""

    feedback_id: str
    region: str
    edition_id: str
    status: KnowledgeStatus
    version: Version
    offer_id: str | None = None
    text: str | None = None
    language: str | None = None
    offer_title: str | None = None
    host_org: str | None = None
    approved_at: datetime | None = None


def knowledge_decided(stored: KnowledgeItem | None, decision: KnowledgeItem) -> KnowledgeItem:
    """The latest moderation decision wins (by version); a rejection keeps no text."""
    if stored is not None and not supersedes(decision.version, stored.version):
        return stored
    if decision.status == "rejected":
        return replace(decision, text=None, offer_title=None, host_org=None, approved_at=None)
    return decision


@dataclass(frozen=True)
class Feedback:
    """A participant's rating and whether they agreed to share what they learned (never the text itself)."""

    feedback_id: str
    edition_id: str
    rating: int
    share_publicly: bool = False


# --- match outcomes: what each match event tells the participant ----------------------------
@dataclass(frozen=True)
class Placement:
    """The offer an outcome concerns (a seat assigned or offered) and its rank among the choices."""

    offer_id: str
    offer_date: date
    rank: int


@dataclass(frozen=True)
class MatchOutcome:
    """What a participant was last told (one per sign-up; the latest `version` wins)."""

    signup_id: str
    edition_id: str
    outcome: MatchOutcomeName
    version: Version
    placement: Placement | None = None


def assigned(signup_id: str, edition_id: str, version: Version, placement: Placement) -> MatchOutcome:
    """MatchAssigned: the participant has a seat on the offer."""
    return MatchOutcome(signup_id, edition_id, "assigned", version, placement)


def seat_offered(signup_id: str, edition_id: str, version: Version, placement: Placement) -> MatchOutcome:
    """SeatOffered: a freed seat is held for the participant (an outcome of its own, `offered`, until
    they accept it, which is a MatchAssigned, or it ends)."""
    return MatchOutcome(signup_id, edition_id, "offered", version, placement)


def waitlisted(signup_id: str, edition_id: str, version: Version) -> MatchOutcome:
    """MatchWaitlisted: the participant waits for a seat; no offer."""
    return MatchOutcome(signup_id, edition_id, "waitlisted", version)


def seat_offer_ended(signup_id: str, edition_id: str, version: Version) -> MatchOutcome:
    """SeatOfferEnded: a declined or expired seat offer puts the participant back on the waiting list
    (for their other choices): the outcome is `waitlisted` again, without an offer."""
    return MatchOutcome(signup_id, edition_id, "waitlisted", version)


def unmatched(signup_id: str, edition_id: str, version: Version) -> MatchOutcome:
    """MatchUnmatched: the participant could not be placed; no offer."""
    return MatchOutcome(signup_id, edition_id, "unmatched", version)


@dataclass(frozen=True)
class NotificationOutcome:
    """The latest outcome of one e-mail (a transient failure may be followed by a success)."""

    notification_id: uuid.UUID
    edition_id: str
    status: NotificationStatus
    version: Version
    #: The e-mail's template (NotificationSent/NotificationFailed.template): its kind, e.g. `reminder`.
    template: str | None = None


# --- figures ------------------------------------------------------------------------------------
def share(part: int, whole: int) -> float | None:
    """part/whole rounded to 3 decimals; None when there is nothing to divide."""
    return round(part / whole, 3) if whole else None


def average(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


@dataclass(frozen=True)
class EditionFigures:
    """One edition's figures, as aggregated by the repository."""

    edition_id: str
    region: str
    name: str | None
    status: EditionStatus
    starts_on: date | None
    ends_on: date | None
    cancellation_reason: str | None
    cancelled_at: datetime | None
    offers: int
    seats: int
    offers_cancelled: int
    signups: int
    withdrawn: int
    organisations: int
    #: Active sign-ups by approval (they add up to `signups`), and sign-ups the employer refused.
    not_required: int
    pending_approval: int
    approved: int
    refused: int
    assigned: int
    first_choice: int
    waitlisted: int
    unmatched: int
    awaiting_rematch: int
    seat_offers_open: int
    emails_sent: int
    emails_failed: int
    feedback_count: int
    rating_total: int
    #: Feedback whose participant agreed that what they learned may be shared publicly.
    feedback_shareable: int

    @property
    def first_choice_share(self) -> float | None:
        """Of the participants with an assignment, the share that got their first choice."""
        return share(self.first_choice, self.assigned)

    @property
    def average_rating(self) -> float | None:
        return average(self.rating_total, self.feedback_count)


@dataclass(frozen=True)
class DayFigures:
    """One calendar day: sign-ups made that day; offers, seats and assignments for visits on that day."""

    date: date
    signups: int
    offers: int
    seats: int
    assigned: int


@dataclass(frozen=True)
class TemplateFigures:
    """One e-mail template (a kind of message) of an edition: notifications whose latest outcome is sent or
    failed."""

    template: str
    sent: int
    failed: int


@dataclass(frozen=True)
class EditionReport:
    """One edition's figures, its figures per day and its e-mails per template (from one snapshot)."""

    figures: EditionFigures
    days: list[DayFigures]
    emails: list[TemplateFigures] = field(default_factory=list)


@dataclass(frozen=True)
class Totals:
    """Sums of REGION_FIGURES (and the number of editions): zeros unless given."""

    editions: int = 0
    offers: int = 0
    signups: int = 0
    withdrawn: int = 0
    assigned: int = 0
    emails_sent: int = 0
    not_required: int = 0
    pending_approval: int = 0
    approved: int = 0
    refused: int = 0
    feedback_count: int = 0
    feedback_shareable: int = 0
    rating_total: int = 0

    @property
    def average_rating(self) -> float | None:
        """Of all feedback summed here (not an average of averages)."""
        return average(self.rating_total, self.feedback_count)


@dataclass(frozen=True)
class RegionTotals(Totals):
    region: str = ""


@dataclass(frozen=True)
class NationalTotals(Totals):
    regions: int = 0


def region_totals(editions: Iterable[EditionFigures], registered: Iterable[str] = ()) -> list[RegionTotals]:
    """Per region (sorted by name): the number of editions and the sums of REGION_FIGURES; a region of
    `registered` (the region registry) without any edition yet is a row of zeros."""
    sums: dict[str, dict[str, int]] = {region: dict.fromkeys(("editions", *REGION_FIGURES), 0) for region in registered}
    for e in editions:
        totals = sums.setdefault(e.region, dict.fromkeys(("editions", *REGION_FIGURES), 0))
        totals["editions"] += 1
        for name in REGION_FIGURES:
            totals[name] += getattr(e, name)
    return [RegionTotals(region=region, **totals) for region, totals in sorted(sums.items())]


def national_totals(regions: Iterable[RegionTotals]) -> NationalTotals:
    regions = list(regions)
    sums = {name: sum(getattr(r, name) for r in regions) for name in ("editions", *REGION_FIGURES)}
    return NationalTotals(regions=len(regions), **sums)


@dataclass(frozen=True)
class Overview:
    """Every edition's figures and the relay legs (from one snapshot), rolled up per region and nationally;
    `registered`: the regions of the region registry, which get a row even before their first edition."""

    editions: list[EditionFigures]
    relay_legs: list[RelayLeg]
    registered: tuple[str, ...] = ()

    @property
    def regions(self) -> list[RegionTotals]:
        return region_totals(self.editions, self.registered)

    @property
    def national(self) -> NationalTotals:
        return national_totals(self.regions)

    def seen_by(self, sees: Callable[[str], bool]) -> Overview:
        """What a caller who sees the regions `sees` accepts (`Principal.sees`, the one scoping rule) may
        see: the editions, relay legs and registered regions of those regions only, so that the region
        rows and the national totals are computed from what they see (an organiser: their own region's
        row, and totals that are that row's)."""
        return Overview(
            [e for e in self.editions if sees(e.region)],
            [leg for leg in self.relay_legs if sees(leg.region)],
            tuple(region for region in self.registered if sees(region)),
        )
