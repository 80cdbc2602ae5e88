"""Registration's fakes: `FakeRepository`, the repository in memory, with the same methods as
`Repository` (including what the database's keys refuse: a second row with an id, a second active
sign-up of one e-mail address in an edition); `FakeRegistrationUow`, the shared fake unit of work;
`FakeRegions`, the region registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from schemas.regions import RegionNames, RegionRecord
from services.registration.domain import Counts, Edition, Feedback, Offer, Organisation, Placement, Signup
from tests.unit.fakes import FakeUnitOfWork

#: The shared fake unit of work: committed transactions' tombstones are in `raw`.
FakeRegistrationUow = FakeUnitOfWork["FakeRepository"]


def region(region_id: str, languages: Iterable[str] = ("nl",)) -> RegionRecord:
    return RegionRecord(id=region_id, names=RegionNames(nl=f"{region_id} (nl)", de=f"{region_id} (de)", en=f"{region_id} (en)"),
                        languages=list(languages))


class FakeRegions:
    """The runtime's RegionBook without Kafka: the registry's records, read (`ready`) unless told otherwise."""

    def __init__(self, records: Iterable[RegionRecord] = (), *, ready: bool = True) -> None:
        self.regions = {r.id: r for r in records}
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()

    def get(self, region_id: str) -> RegionRecord | None:
        return self.regions.get(region_id)

    def __contains__(self, region_id: object) -> bool:
        return region_id in self.regions


class FakeRepository:
    def __init__(
        self, editions: Iterable[Edition] = (), offers: Iterable[Offer] = (), signups: Iterable[Signup] = (),
        organisations: Iterable[Organisation] = (), placements: Iterable[Placement] = (),
    ) -> None:
        self.edition_rows = {e.id: e for e in editions}
        self.offer_rows = {o.id: o for o in offers}
        self.signup_rows = {s.id: s for s in signups}
        self.organisation_rows = {(o.edition_id, o.id): o for o in organisations}
        self.placement_rows = {p.signup_id: p for p in placements}
        self.feedback_rows: dict[tuple[str, str], Feedback] = {}
        #: Outbox keys of approval requests whose participant data was blanked (erasure).
        self.erased_requests: list[str] = []

    async def set_status(self, thing: Edition | Offer | Signup, status: str) -> None:
        rows: dict[str, Any] = {Edition: self.edition_rows, Offer: self.offer_rows, Signup: self.signup_rows}[type(thing)]
        rows[thing.id] = replace(rows[thing.id], status=status)

    # --- editions -------------------------------------------------------------------------------
    async def insert_edition(self, e: Edition) -> bool:
        return self.edition_rows.setdefault(e.id, e) is e

    async def edition(self, edition_id: str, *, for_update: bool = False) -> Edition | None:
        return self.edition_rows.get(edition_id)

    async def editions_by_id(self, ids: list[str]) -> dict[str, Edition]:
        return {i: self.edition_rows[i] for i in ids if i in self.edition_rows}


    async def counts(self, edition_id: str) -> Counts:
        offers = [o for o in self.offer_rows.values() if o.edition_id == edition_id and o.status == "published"]
        signups = [s for s in self.signup_rows.values() if s.edition_id == edition_id and s.status == "submitted"]
        return Counts(offers=len(offers), signups=len(signups))

    # --- offers ---------------------------------------------------------------------------------
    async def insert_offer(self, o: Offer) -> bool:
        return self.offer_rows.setdefault(o.id, o) is o

    async def offer(self, edition_id: str, offer_id: str, *, for_update: bool = False) -> Offer | None:
        found = self.offer_rows.get(offer_id)
        return found if found and found.edition_id == edition_id else None

    async def update_offer(self, o: Offer) -> None:
        self.offer_rows[o.id] = o

    async def offers_by_id(self, ids: list[str]) -> dict[str, Offer]:
        return {i: self.offer_rows[i] for i in ids if i in self.offer_rows}

    async def offers(self, edition_id: str) -> list[Offer]:
        return sorted((o for o in self.offer_rows.values() if o.edition_id == edition_id), key=lambda o: (o.date, o.id))


    # --- sign-ups -------------------------------------------------------------------------------
    async def insert_signups(self, signups: list[Signup]) -> set[str]:
        return {s.id for s in signups if await self.insert_signup(s)}

    async def insert_signup(self, s: Signup) -> bool:
        active = {
            (x.edition_id, x.email.lower()) for x in self.signup_rows.values()
            if x.status == "submitted" and x.erased_at is None
        }
        if s.id in self.signup_rows or (s.status == "submitted" and (s.edition_id, s.email.lower()) in active):
            return False
        self.signup_rows[s.id] = s
        return True

    async def signup(self, edition_id: str, signup_id: str, *, for_update: bool = False) -> Signup | None:
        found = self.signup_rows.get(signup_id)
        return found if found and found.edition_id == edition_id else None

    async def signup_by_id(self, signup_id: str, *, for_update: bool = False) -> Signup | None:
        return self.signup_rows.get(signup_id)

    async def set_approval(self, s: Signup) -> None:
        self.signup_rows[s.id] = replace(self.signup_rows[s.id], approval=s.approval, status=s.status)

    async def set_choices(self, s: Signup) -> None:
        self.signup_rows[s.id] = replace(self.signup_rows[s.id], choices=s.choices)

    async def erase_personal_data(self, s: Signup) -> None:
        self.signup_rows[s.id] = s

    async def erase_approval_request(self, notification_key: str) -> None:
        self.erased_requests.append(notification_key)

    # --- participating organisations ------------------------------------------------------------
    async def insert_organisation(self, o: Organisation) -> bool:
        return self.organisation_rows.setdefault((o.edition_id, o.id), o) is o

    async def organisation(self, edition_id: str, org_id: str) -> Organisation | None:
        return self.organisation_rows.get((edition_id, org_id))

    async def organisations(self, edition_id: str) -> list[Organisation]:
        return sorted((o for o in self.organisation_rows.values() if o.edition_id == edition_id), key=lambda o: o.id)

    # --- placements and feedback ----------------------------------------------------------------
    async def placement(self, signup_id: str, *, for_update: bool = False) -> Placement | None:
        return self.placement_rows.get(signup_id)

    async def store_placement(self, p: Placement) -> None:
        self.placement_rows[p.signup_id] = p

    async def insert_feedback(self, f: Feedback) -> bool:
        return self.feedback_rows.setdefault((f.signup_id, f.offer_id), f) is f

    async def feedback(self, signup_id: str, offer_id: str) -> Feedback | None:
        return self.feedback_rows.get((signup_id, offer_id))
