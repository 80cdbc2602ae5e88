"""Who is asking, and the one scoping rule every service applies (pure: no framework, no I/O).

| role | who | may |
|---|---|---|
| `admin` | platform operators | everything, in every region |
| `organiser` | a region's organisers' portal | everything in their own region |
| `national` | the national relay and dashboards | every region's figures; never personal data |
| `participant` | the person behind one sign-up, through a signed link | that one sign-up (or seat offer) |
| `anonymous` | the public | sign up to an open edition, public pages, health |

Scoping: a resource of a region the caller may not see is answered exactly like a resource that does
not exist (404), so ids of other regions cannot even be probed. Services call `Principal.sees(region)`
and raise their own NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "organiser", "national", "participant", "anonymous"]


@dataclass(frozen=True)
class Principal:
    role: Role
    #: The organiser's region (None for the other roles).
    region: str | None = None
    #: Key id, token subject or link subject: for audit logs, never a secret.
    subject: str = ""
    #: For a participant: the one sign-up their link is for, and its edition.
    signup_id: str | None = None
    edition_id: str | None = None
    #: For a participant whose link is for one thing of that sign-up: which (a seat offer's offer id).
    link_ref: str | None = None

    def sees(self, region: str) -> bool:
        """May this caller see anything of `region`? Admin and national: every region (national only
        through the routes that allow it: figures, no personal data); an organiser: their own."""
        if self.role in ("admin", "national"):
            return True
        return self.role == "organiser" and self.region == region

    def owns(self, signup_id: str) -> bool:
        """Is this the participant whose link names `signup_id`?"""
        return self.role == "participant" and self.signup_id == signup_id

    @property
    def region_filter(self) -> str | None:
        """What a list is limited to, by the same rule as `sees`: None (every region) for admin and
        national; an organiser's own region; for anyone else a region that matches nothing ("")."""
        if self.role in ("admin", "national"):
            return None
        return (self.region or "") if self.role == "organiser" else ""

    def reaches(self, ref: str) -> bool:
        """A link bound to one thing of its sign-up (`link_ref`, e.g. a seat offer's offer id) reaches
        only that thing; every other principal, and a link bound to nothing, reaches any."""
        return self.link_ref is None or self.link_ref == ref

    @property
    def sees_personal_data(self) -> bool:
        return self.role in ("admin", "organiser")


ANONYMOUS = Principal("anonymous")
