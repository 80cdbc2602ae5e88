"""Every kind × language renders a natural message in the right language; HTML is escaped."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from services.notifications.rendering import Renderer
from tests.unit.notifications.builders import ACCEPT, DECLINE, LANGUAGES, OFFER, offer, seat_offer_data


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize(
    ("language", "greeting", "subject", "when", "label"),
    [
        ("nl", "Beste Anna de Vries,", "Je Estafette-plek: ", "dinsdag 15 september 2026", "bedrijfsbezoek"),
        ("de", "Guten Tag Anna de Vries,", "Ihr Estafette-Platz: ", "Dienstag, 15. September 2026", "Betriebsbesuch"),
        ("en", "Dear Anna de Vries,", "Your Estafette place: ", "Tuesday, 15 September 2026", "on-site visit"),
    ],
)
def test_assigned_tells_where_to_go_in_the_recipients_language(
    renderer: Renderer, language: str, greeting: str, subject: str, when: str, label: str
) -> None:
    out = renderer.render("assigned", language, "Anna de Vries", {"offer": OFFER, "rank": 2})

    assert out.subject == subject + OFFER["title"]
    for body in (out.text, out.html):
        assert greeting in body
        assert OFFER["title"] in body
        assert OFFER["host_org"] in body
        assert when in body
        assert label in body
        assert OFFER["location"] in body
    assert f'<html lang="{language}">' in out.html


@pytest.mark.parametrize(
    ("language", "first_choice", "tba", "online"),
    [
        ("nl", "je eerste keuze", "wordt nog bekendgemaakt", "online activiteit"),
        ("de", "Ihrem Erstwunsch", "wird noch bekannt gegeben", "Online-Angebot"),
        ("en", "your first choice", "to be announced", "online activity"),
    ],
)
def test_assigned_mentions_first_choice_online_format_and_missing_location(
    renderer: Renderer, language: str, first_choice: str, tba: str, online: str
) -> None:
    webinar = offer(format="webinar", location="")
    first = renderer.render("assigned", language, "Anna", {"offer": webinar, "rank": 1})
    other = renderer.render("assigned", language, "Anna", {"offer": OFFER, "rank": 3})

    assert first_choice in first.text and first_choice in first.html
    assert tba in first.text and online in first.text
    assert first_choice not in other.text
    assert tba not in other.text and online not in other.text


@pytest.mark.parametrize(
    ("language", "words", "subject"),
    [
        ("nl", ["wachtlijst", "plaats 4", "bevestigen we je plek", "bieden we die je per e-mail aan"], "Bevestiging: "),
        ("de", ["Warteliste", "Platz 4", "bestätigen wir Ihren Platz", "bieten wir ihn Ihnen per E-Mail an"], "Bestätigung: "),
        ("en", ["waiting list", "number 4", "confirms your place", "offer it to you by e-mail"], "Confirmation: "),
    ],
)
def test_waitlisted_confirms_the_place_on_the_waiting_list(
    renderer: Renderer, language: str, words: list[str], subject: str
) -> None:
    out = renderer.render("waitlisted", language, "Sam Jansen", {"position": 4})

    assert out.subject.startswith(subject)
    assert "Sam Jansen" in out.text and "Sam Jansen" in out.html
    for word in words:
        assert word in out.text
        assert word in out.html


SEAT = seat_offer_data()


@pytest.mark.parametrize(
    ("language", "subject", "until", "when", "first_choice"),
    [
        ("nl", "Er is een plek voor je vrijgekomen: ", "maandag 14 september 2026 om 23:59", "dinsdag 15 september 2026", "je eerste keuze"),
        ("de", "Ein Platz ist für Sie frei geworden: ", "Montag, 14. September 2026, 23:59 Uhr", "Dienstag, 15. September 2026", "Ihrem Erstwunsch"),
        ("en", "A place has become free for you: ", "Monday, 14 September 2026 at 23:59", "Tuesday, 15 September 2026", "your first choice"),
    ],
)
def test_seat_offer_says_what_until_when_and_how_to_answer(
    renderer: Renderer, language: str, subject: str, until: str, when: str, first_choice: str
) -> None:
    out = renderer.render("seat_offered", language, "Anna de Vries", SEAT)

    assert out.subject == subject + OFFER["title"]
    for body in (out.text, out.html):
        assert "Anna de Vries" in body
        assert OFFER["title"] in body and OFFER["host_org"] in body and OFFER["location"] in body
        assert when in body  # the visit
        assert until in body  # the end of the offer, in local time (summer time: UTC+2)
        assert ACCEPT in body and DECLINE in body
        assert first_choice in body
    assert f'href="{ACCEPT}"' in out.html and f'href="{DECLINE}"' in out.html


def test_seat_offer_time_is_shown_in_the_configured_time_zone() -> None:
    out = Renderer(timezone=ZoneInfo("Europe/London")).render("seat_offered", "en", "Anna", SEAT)
    assert "Monday, 14 September 2026 at 22:59" in out.text


@pytest.mark.parametrize(
    ("language", "words"),
    [("nl", "niet op tijd aangenomen"), ("de", "nicht rechtzeitig angenommen"), ("en", "did not accept it in time")],
)
def test_unmatched_after_declined_or_expired_seat_offers(renderer: Renderer, language: str, words: str) -> None:
    out = renderer.render("unmatched", language, "Sam", {"reason_code": "seat_offers_ended"})
    assert words in out.text and words in out.html


@pytest.mark.parametrize(
    ("language", "all_full", "fallback"),
    [
        ("nl", "waren al bezet", "niet gelukt om een passende plek"),
        ("de", "bereits vergeben", "keinen passenden Platz"),
        ("en", "had already been taken", "could not find a suitable place"),
    ],
)
def test_unmatched_explains_the_reason_kindly(renderer: Renderer, language: str, all_full: str, fallback: str) -> None:
    known = renderer.render("unmatched", language, "Sam", {"reason_code": "all_full"})
    unknown = renderer.render("unmatched", language, "Sam", {"reason_code": "something_new"})

    assert all_full in known.text and all_full in known.html
    assert fallback in unknown.text and fallback not in known.text
    assert "something_new" not in unknown.text


def test_the_three_languages_differ(renderer: Renderer) -> None:
    texts = {lang: renderer.render("waitlisted", lang, "Sam", {"position": 1}).text for lang in LANGUAGES}
    assert len(set(texts.values())) == 3
    assert "Warteliste" not in texts["nl"] and "wachtlijst" not in texts["de"] and "wachtlijst" not in texts["en"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_is_escaped_and_text_is_verbatim(renderer: Renderer, language: str) -> None:
    evil = offer(title="<script>alert('x')</script> & co", location='<img src=x onerror="y">')
    out = renderer.render("assigned", language, "<b>Eve</b>", {"offer": evil, "rank": 1})

    assert "<script>" not in out.html and "<img" not in out.html and "<b>Eve" not in out.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in out.html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in out.html
    assert "<script>alert('x')</script> & co" in out.text
    assert "<b>Eve</b>" in out.text


def test_subject_is_one_header_line(renderer: Renderer) -> None:
    out = renderer.render("assigned", "en", "Eve", {"offer": offer(title="Two\r\nBcc: someone@example.org"), "rank": 1})
    assert out.subject == "Your Estafette place: Two Bcc: someone@example.org"


@pytest.mark.parametrize(
    ("language", "greeting", "default_subject"),
    [("nl", "Beste Piet,", "Bericht van Estafette"), ("de", "Guten Tag Piet,", "Nachricht von Estafette"),
     ("en", "Dear Piet,", "A message from Estafette")],
)
def test_generic_message_from_a_request(renderer: Renderer, language: str, greeting: str, default_subject: str) -> None:
    context = {"subject": "Feedback <please>", "message": "First paragraph.\n\nSecond & last.", "link": "https://x.test/f?a=1&b=2"}
    out = renderer.render("generic", language, "Piet", context)
    plain = renderer.render("generic", language, "Piet", {"message": "Hello"})

    assert out.subject == "Feedback <please>"
    assert plain.subject == default_subject
    assert greeting in out.text and greeting in out.html
    assert "First paragraph.\n\nSecond & last." in out.text
    assert "<p>First paragraph.</p>" in out.html and "<p>Second &amp; last.</p>" in out.html
    assert 'href="https://x.test/f?a=1&amp;b=2"' in out.html
    assert "<title>Feedback &lt;please&gt;</title>" in out.html


@pytest.mark.parametrize(
    "context",
    [{}, {"message": "  "}, {"message": "Hi", "link": "javascript:alert(1)"}],
)
def test_generic_request_without_message_or_with_unsafe_link_is_refused(renderer: Renderer, context: dict) -> None:
    with pytest.raises(ValueError):
        renderer.render("generic", "en", "Piet", context)


@pytest.mark.parametrize(
    ("language", "quoted", "label"),
    [("nl", '"Een dag in de bakkerij"', "digitale rondleiding"), ("de", "„Een dag in de bakkerij“", "digitale Führung"),
     ("en", '"Een dag in de bakkerij"', "digital tour")],
)
def test_titles_are_quoted_and_formats_named_in_the_language(renderer: Renderer, language: str, quoted: str, label: str) -> None:
    out = renderer.render("seat_offered", language, "Anna", seat_offer_data(rank=2, offer=offer(format="digital_tour")))
    assert quoted in out.text and f"<strong>{OFFER['title']}</strong>" in out.html
    assert label in out.text and label in out.html


@pytest.mark.parametrize(("kind", "language"), [("assigned", "fr"), ("reminder", "nl")])
def test_an_unknown_language_or_kind_cannot_be_rendered(renderer: Renderer, kind: str, language: str) -> None:
    with pytest.raises(ValueError):
        renderer.render(kind, language, "Anna", {"offer": OFFER, "rank": 1})
