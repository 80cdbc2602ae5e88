"""Signed participant links in the e-mails: the seat offer's answer pages at matching
(`SeatOfferLinks`), and the "my sign-up" and feedback pages at registration (`ParticipantLinks`).

Seat offers:
`{MATCHING_PUBLIC_URL}/links/seat-offers/{token}/accept` and `.../decline`, each token made by
`Links.make("seat_offer_accept" | "seat_offer_decline", signup_id, edition_id, ref=offer_id)`
(runtime/auth.py), so a token for one answer is invalid for the other, and a token answers only the seat
offer on that offer. The page behind a link shows the seat offer with one
button; only that button's POST acts. A token is a capability: it is stored in the message (it is
part of the e-mail) and never logged.
"""

from __future__ import annotations

from urllib.parse import quote

from estafette.runtime.auth import Links
from services.notifications.domain import Answer


class SeatOfferLinks:
    """`domain.AnswerLink`: the address of matching's page for one answer to one seat offer."""

    def __init__(self, links: Links, matching_url: str) -> None:
        self._links = links
        self._base = matching_url.rstrip("/")

    def __call__(self, answer: Answer, signup_id: str, edition_id: str, offer_id: str) -> str:
        # Bound to the offer: an old e-mail's link never answers a later seat offer of the same person.
        token = self._links.make(f"seat_offer_{answer}", signup_id, edition_id, ref=offer_id)
        return f"{self._base}/links/seat-offers/{quote(token, safe='')}/{answer}"


class ParticipantLinks:
    """The participant's pages at registration, each a signed link (runtime/auth.py `Links`):

    - "my sign-up": `{REGISTRATION_PUBLIC_URL}/links/signup/{token}`, token `make("signup", signup_id,
      edition_id)` (`domain.SignupLink`), in the confirmation, the match e-mails and the reminder;
    - feedback on one visit: `{REGISTRATION_PUBLIC_URL}/links/feedback/{token}`, token `make("feedback",
      signup_id, edition_id, ref=offer_id)` (`domain.FeedbackLink`), in the feedback request.

    Tokens are made on the platform clock (they age from the moment the e-mail is recorded)."""

    def __init__(self, links: Links, registration_url: str) -> None:
        self._links = links
        self._base = registration_url.rstrip("/")

    def signup(self, signup_id: str, edition_id: str) -> str:
        token = self._links.make("signup", signup_id, edition_id)
        return f"{self._base}/links/signup/{quote(token, safe='')}"

    def feedback(self, signup_id: str, edition_id: str, offer_id: str) -> str:
        token = self._links.make("feedback", signup_id, edition_id, ref=offer_id)
        return f"{self._base}/links/feedback/{quote(token, safe='')}"
