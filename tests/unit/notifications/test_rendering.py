"""Every kind × language renders a natural message in the right language; HTML is escaped."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from services.notifications import calendar as ics
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


@pytest.mark.parametrize(("kind", "language"), [("assigned", "fr"), ("nonsense", "nl")])
def test_an_unknown_language_or_kind_cannot_be_rendered(renderer: Renderer, kind: str, language: str) -> None:
    with pytest.raises(ValueError):
        renderer.render(kind, language, "Anna", {"offer": OFFER, "rank": 1})


# --- the journey's messages (issue 9) ---------------------------------------------------------------------
MANAGE = "https://registration.example.org/links/signup/tok.en?x=1&y=2"
FEEDBACK = "https://registration.example.org/links/feedback/tok"
APPROVAL = "https://registration.example.org/links/approval/tok"
JOIN = "https://meet.example.org/j/42?pwd=a&b=c"


def journey_offer(**changes: Any) -> dict[str, Any]:
    """An offer of contract v2.1 as the message data holds it."""
    fields: dict[str, Any] = {
        **OFFER, "attendance": "on_site", "part_of_day": "morning", "starts_at": "09:30", "ends_at": "12:00",
        "join_url": None, "what_to_bring": "Stevige schoenen", "themes": ["food"], "sequence": 1,
    }
    return {**fields, **changes}


def invite(offer: dict[str, Any], cancelled: bool = False, uid: str = "s-1.o-1@estafette") -> dict[str, Any]:
    return ics.calendar_entry(offer, uid=uid, timezone="Europe/Amsterdam", cancelled=cancelled)


EDITION_DATA = {"name": "Week van de Uitwisseling Twente", "starts_on": "2026-09-14", "ends_on": "2026-09-18",
                "signup_deadline": "2026-09-01T21:59:00+00:00"}
ONLINE = journey_offer(offer_id="o-2", title="Webinar slimmer werken", attendance="online", location="",
                       join_url=JOIN, format="webinar", part_of_day="afternoon", starts_at=None, ends_at=None,
                       what_to_bring="")


def journey_data(**overrides: Any) -> dict[str, dict[str, Any]]:
    """One example of every kind's data (rendering.py's docstring), `overrides` merged into each."""
    on_site = journey_offer()
    data: dict[str, dict[str, Any]] = {
        "signup_confirmed": {"edition": EDITION_DATA, "choices": [on_site, ONLINE], "manage_url": MANAGE,
                             "approval": "not_required"},
        "assigned": {"offer": on_site, "rank": 1, "calendar": invite(on_site), "manage_url": MANAGE},
        "seat_offered": seat_offer_data(offer=on_site),
        "waitlisted": {"position": 2},
        "unmatched": {"reason_code": "all_full"},
        "reminder": {"offer": on_site, "calendar": invite(on_site), "manage_url": MANAGE},
        "offer_changed": {"offer": on_site, "changed": ["date", "starts_at", "capacity"], "calendar": invite(on_site),
                          "manage_url": MANAGE},
        "offer_cancelled": {"offer": on_site, "reason": "De bakker is ziek.", "calendar": invite(on_site, cancelled=True)},
        "edition_cancelled": {"edition": {"name": EDITION_DATA["name"]}, "reason": "Te weinig aanmeldingen.",
                              "calendar": invite(on_site, cancelled=True)},
        "feedback_request": {"offer": on_site, "feedback_url": FEEDBACK},
        "approval_refused": {"edition": {"name": EDITION_DATA["name"]}, "reason": "Drukke periode."},
        "visitor_list": {"offer": on_site, "calendar": invite(on_site, uid="host.o-1@estafette"), "visitors": [
            {"name": "Anna de Vries", "org": "Gemeente Enschede", "learning_goal": "Hoe plan je een productiedag?"},
            {"name": "Sam Jansen", "org": "Saxion", "learning_goal": ""},
        ]},
        "visitor_withdrew": {"offer": on_site, "visitor": {"name": "Anna de Vries", "org": "Gemeente Enschede"},
                             "remaining": 1},
        "host_edition_cancelled": {"edition": {"name": EDITION_DATA["name"]}, "offer": on_site,
                                   "reason": "Te weinig aanmeldingen."},
        "generic": {"message": "Hallo"},
        "approval_requested": {"participant_name": "Anna de Vries", "organisation_name": "Gemeente Enschede",
                               "edition_name": EDITION_DATA["name"], "learning_goal": "Plannen leren",
                               "approval_url": APPROVAL},
    }
    return {kind: {**value, **overrides.get(kind, {})} for kind, value in data.items()}


JOURNEY = journey_data()
GREETINGS = {"nl": "Beste Piet,", "de": "Guten Tag Piet,", "en": "Dear Piet,"}


def visible(html: str) -> str:
    """The words a reader sees in the HTML body."""
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", html))


def test_every_kind_has_example_data() -> None:
    assert set(JOURNEY) == set(Renderer.kinds())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(JOURNEY))
def test_every_kind_renders_in_every_language(renderer: Renderer, kind: str, language: str) -> None:
    out = renderer.render(kind, language, "Piet", JOURNEY[kind])

    assert out.subject and "\n" not in out.subject and out.subject == out.subject.strip()
    assert out.text.startswith(GREETINGS[language]) and GREETINGS[language] in out.html
    assert f'<html lang="{language}">' in out.html and f"<title>{html_lib.escape(out.subject, quote=False)}" in out.html
    assert "\n\n\n" not in out.text  # one blank line between paragraphs
    assert "None" not in out.text and "None" not in visible(out.html)
    assert len(out.attachments) == (1 if JOURNEY[kind].get("calendar") else 0)


@pytest.mark.parametrize("kind", sorted(JOURNEY))
def test_the_three_languages_of_every_kind_differ(renderer: Renderer, kind: str) -> None:
    texts = {language: renderer.render(kind, language, "Piet", JOURNEY[kind]) for language in LANGUAGES}
    assert len({out.text for out in texts.values()}) == 3
    assert len({out.html for out in texts.values()}) == 3


def _evil_data() -> dict[str, dict[str, Any]]:
    evil = "<script>x</script> & <b>co</b>"
    offer = journey_offer(title=evil, host_org="<i>host</i>", location=evil, what_to_bring=evil)
    online = journey_offer(title=evil, attendance="online", join_url='https://x.test/"><script>')
    edition = {**EDITION_DATA, "name": evil}
    return journey_data(**{
        "signup_confirmed": {"edition": edition, "choices": [offer, online]},
        "assigned": {"offer": offer, "calendar": invite(offer)},
        "seat_offered": {"offer": offer},
        "reminder": {"offer": online, "calendar": invite(online)},
        "offer_changed": {"offer": offer},
        "offer_cancelled": {"offer": offer, "reason": evil},
        "edition_cancelled": {"edition": edition, "reason": evil},
        "feedback_request": {"offer": offer},
        "approval_refused": {"edition": edition, "reason": evil},
        "visitor_list": {"offer": offer, "visitors": [{"name": evil, "org": evil, "learning_goal": evil}]},
        "visitor_withdrew": {"offer": offer, "visitor": {"name": evil, "org": evil}},
        "host_edition_cancelled": {"edition": edition, "offer": offer, "reason": evil},
        "generic": {"message": evil, "subject": evil},
        "approval_requested": {"participant_name": evil, "organisation_name": evil, "edition_name": evil,
                               "learning_goal": evil},
    })


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(JOURNEY))
def test_html_of_every_kind_escapes_names_titles_and_reasons(renderer: Renderer, kind: str, language: str) -> None:
    out = renderer.render(kind, language, "<b>Eve</b>", _evil_data()[kind])

    assert "<script" not in out.html and "<b>" not in out.html and "<i>" not in out.html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in out.html
    if kind not in ("waitlisted", "unmatched"):  # their data has no free text
        assert "&lt;script&gt;x&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in out.html
        assert "<script>x</script> & <b>co</b>" in out.text  # the text body is verbatim


@pytest.mark.parametrize("kind", sorted(JOURNEY))
def test_every_subject_is_one_line(renderer: Renderer, kind: str) -> None:
    two = "Two\r\nBcc: someone@example.org"
    data = journey_data(**{
        k: {"offer": journey_offer(title=two)} for k in JOURNEY if "offer" in JOURNEY[k]
    } | {k: {"edition": {**EDITION_DATA, "name": two}} for k in JOURNEY if "edition" in JOURNEY[k]}
      | {"generic": {"subject": two}, "approval_requested": {"participant_name": two, "edition_name": two}})
    for language in LANGUAGES:
        subject = renderer.render(kind, language, "Eve", data[kind]).subject
        assert "\r" not in subject and "\n" not in subject


@pytest.mark.parametrize(
    ("language", "subject", "words", "deadline", "pending"),
    [
        ("nl", "We hebben je aanmelding voor Week van de Uitwisseling Twente ontvangen",
         ["Je keuzes, in volgorde van voorkeur", "je keuzes wijzigen", "afmelden"],
         "dinsdag 1 september 2026 om 23:59", "goed te keuren"),
        ("de", "Ihre Anmeldung für Week van de Uitwisseling Twente ist eingegangen",
         ["Ihre Wünsche, in der Reihenfolge", "Wünsche bis zum Anmeldeschluss", "abmelden"],
         "Dienstag, 1. September 2026, 23:59 Uhr", "zu genehmigen"),
        ("en", "We have received your sign-up for Week van de Uitwisseling Twente",
         ["Your choices, in order of preference", "change your choices", "withdraw"],
         "Tuesday, 1 September 2026 at 23:59", "to approve yours"),
    ],
)
def test_signup_confirmed_lists_the_choices_in_order_with_the_manage_link(
    renderer: Renderer, language: str, subject: str, words: list[str], deadline: str, pending: str
) -> None:
    out = renderer.render("signup_confirmed", language, "Piet", JOURNEY["signup_confirmed"])
    waiting = renderer.render("signup_confirmed", language, "Piet", {**JOURNEY["signup_confirmed"], "approval": "pending"})

    assert out.subject == subject
    for body in (out.text, visible(out.html)):
        assert body.index(OFFER["title"]) < body.index("Webinar slimmer werken")  # in the participant's order
        assert "1. " in out.text and "2. " in out.text
        assert MANAGE in body and deadline in body
        for word in words:
            assert word in body
        assert pending not in body
    assert f'href="{html_lib.escape(MANAGE)}"' in out.html
    assert pending in waiting.text and pending in visible(waiting.html)


@pytest.mark.parametrize(
    ("language", "when", "bring", "invite_words"),
    [
        ("nl", "dinsdag 15 september 2026, ochtend, 09:30–12:00 uur", "Meenemen", "agenda-uitnodiging"),
        ("de", "Dienstag, 15. September 2026, Vormittag, 09:30–12:00 Uhr", "Mitbringen", "Kalendereinladung"),
        ("en", "Tuesday, 15 September 2026, morning, 09:30–12:00", "What to bring", "calendar invitation"),
    ],
)
def test_assigned_and_reminder_say_when_where_and_what_to_bring(
    renderer: Renderer, language: str, when: str, bring: str, invite_words: str
) -> None:
    for kind in ("assigned", "reminder"):
        out = renderer.render(kind, language, "Piet", JOURNEY[kind])
        for body in (out.text, visible(out.html)):
            assert when in body and OFFER["location"] in body
            assert bring in body and "Stevige schoenen" in body
            assert invite_words in body and MANAGE in body
        assert out.attachments[0].filename == "invite.ics"


@pytest.mark.parametrize(
    ("language", "subject", "where", "afternoon"),
    [("nl", "Morgen: ", "online", "middag"), ("de", "Morgen: ", "online", "Nachmittag"),
     ("en", "Tomorrow: ", "online", "afternoon")],
)
def test_reminder_of_an_online_offer_gives_the_join_link(
    renderer: Renderer, language: str, subject: str, where: str, afternoon: str
) -> None:
    out = renderer.render("reminder", language, "Piet", {"offer": ONLINE, "calendar": invite(ONLINE)})

    assert out.subject == subject + "Webinar slimmer werken"
    assert f"{where}: {JOIN}" in out.text and afternoon in out.text
    assert f'href="{html_lib.escape(JOIN)}"' in out.html
    assert "Stevige schoenen" not in out.text


@pytest.mark.parametrize(
    ("language", "subject", "changes", "fallback"),
    [
        ("nl", "Gewijzigd: ", "de datum en de begintijd", "enkele gegevens"),
        ("de", "Geändert: ", "das Datum und die Anfangszeit", "einige Angaben"),
        ("en", "Changed: ", "the date and the start time", "some of the details"),
    ],
)
def test_offer_changed_names_what_changed_in_words(
    renderer: Renderer, language: str, subject: str, changes: str, fallback: str
) -> None:
    out = renderer.render("offer_changed", language, "Piet", JOURNEY["offer_changed"])
    other = renderer.render("offer_changed", language, "Piet", {**JOURNEY["offer_changed"], "changed": ["capacity"]})

    assert out.subject == subject + OFFER["title"]
    assert changes in out.text and changes in visible(out.html)
    assert "capacity" not in out.text and fallback not in out.text
    assert fallback in other.text
    assert "09:30" in out.text and out.attachments[0].content_type.startswith("text/calendar; method=REQUEST")


@pytest.mark.parametrize(
    ("language", "subject", "cancelled"),
    [("nl", "Geannuleerd: ", "is geannuleerd"), ("de", "Abgesagt: ", "abgesagt"), ("en", "Cancelled: ", "has been cancelled")],
)
def test_cancellations_give_the_reason_and_cancel_the_calendar_entry(
    renderer: Renderer, language: str, subject: str, cancelled: str
) -> None:
    offer_out = renderer.render("offer_cancelled", language, "Piet", JOURNEY["offer_cancelled"])
    edition_out = renderer.render("edition_cancelled", language, "Piet", JOURNEY["edition_cancelled"])
    waiting = renderer.render("edition_cancelled", language, "Piet", {**JOURNEY["edition_cancelled"], "calendar": None})
    host = renderer.render("host_edition_cancelled", language, "Piet", JOURNEY["host_edition_cancelled"])

    assert offer_out.subject == subject + OFFER["title"]
    assert edition_out.subject == host.subject == subject + EDITION_DATA["name"]
    for out, reason in ((offer_out, "De bakker is ziek."), (edition_out, "Te weinig aanmeldingen."),
                        (host, "Te weinig aanmeldingen.")):
        assert cancelled in out.text and reason in out.text and reason in visible(out.html)
    for out in (offer_out, edition_out):
        assert out.attachments[0].content_type == "text/calendar; method=CANCEL; charset=utf-8"
    assert waiting.attachments == () and len(waiting.text) < len(edition_out.text)  # no word of a calendar
    assert OFFER["title"] in host.text


@pytest.mark.parametrize(
    ("language", "subject", "button"),
    [("nl", "Hoe was ", "Feedback geven"), ("de", "Wie war ", "Rückmeldung geben"), ("en", "How was ", "Give feedback")],
)
def test_feedback_request_links_to_the_feedback_page(renderer: Renderer, language: str, subject: str, button: str) -> None:
    out = renderer.render("feedback_request", language, "Piet", JOURNEY["feedback_request"])

    assert out.subject == f"{subject}{OFFER['title']}?"
    assert FEEDBACK in out.text and f'href="{FEEDBACK}"' in out.html and button in out.html


@pytest.mark.parametrize(
    ("language", "words"), [("nl", "niet goedgekeurd"), ("de", "nicht genehmigt"), ("en", "approved")]
)
def test_approval_refused_gives_the_reason(renderer: Renderer, language: str, words: str) -> None:
    out = renderer.render("approval_refused", language, "Piet", JOURNEY["approval_refused"])
    assert words in out.subject and words in out.text and "Drukke periode." in out.text


@pytest.mark.parametrize(
    ("language", "count", "goal", "footer"),
    [("nl", "Er komen 2 deelnemers", "Leerdoel", "contactpersoon bent voor een aanbod"),
     ("de", "Es kommen 2 Teilnehmende", "Lernziel", "Ansprechperson für ein Angebot"),
     ("en", "2 participants are coming", "Learning goal", "contact person for an offer")],
)
def test_visitor_list_shows_every_visitor_to_the_host(
    renderer: Renderer, language: str, count: str, goal: str, footer: str
) -> None:
    out = renderer.render("visitor_list", language, "Piet", JOURNEY["visitor_list"])
    one = renderer.render("visitor_list", language, "Piet", {**JOURNEY["visitor_list"], "visitors": JOURNEY["visitor_list"]["visitors"][:1]})
    nobody = renderer.render("visitor_list", language, "Piet", {**JOURNEY["visitor_list"], "visitors": []})

    for body in (out.text, visible(out.html)):
        assert count in body and goal in body and footer in body
        for name in ("Anna de Vries", "Gemeente Enschede", "Hoe plan je een productiedag?", "Sam Jansen", "Saxion"):
            assert name in body
    rows = out.html.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count("<tr>") == 2 and out.html.count('<th scope="col"') == 3  # a row per visitor
    assert count not in one.text and "1" in one.text
    assert "Anna de Vries" not in nobody.text and "<table cellpadding" not in nobody.html
    assert str(Calendar.from_ical(out.attachments[0].content).events[0]["UID"]) == "host.o-1@estafette"


@pytest.mark.parametrize(
    ("language", "one", "none"),
    [("nl", "Er komt nog 1 deelnemer.", "verder niemand"), ("de", "Es kommt noch 1 teilnehmende Person.", "sonst niemand"),
     ("en", "1 participant is still coming.", "nobody else")],
)
def test_visitor_withdrew_says_who_and_how_many_remain(renderer: Renderer, language: str, one: str, none: str) -> None:
    out = renderer.render("visitor_withdrew", language, "Piet", JOURNEY["visitor_withdrew"])
    last = renderer.render("visitor_withdrew", language, "Piet", {**JOURNEY["visitor_withdrew"], "remaining": 0})

    assert "Anna de Vries (Gemeente Enschede)" in out.text and "Anna de Vries (Gemeente Enschede)" in visible(out.html)
    assert one in out.text and none not in out.text
    assert none in last.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_erased_visitors_withdrawal_names_nobody(renderer: Renderer, language: str) -> None:
    data = {**JOURNEY["visitor_withdrew"], "visitor": {"name": "", "org": None}}
    named = renderer.render("visitor_withdrew", language, "Piet", JOURNEY["visitor_withdrew"])
    out = renderer.render("visitor_withdrew", language, "Piet", data)

    assert "()" not in out.text and "None" not in out.text
    assert out.text.split("\n")[2] != named.text.split("\n")[2]  # another sentence, not a blank name
    assert OFFER["title"] in out.text.split("\n")[2]


@pytest.mark.parametrize(
    ("language", "subject", "button", "footer"),
    [("nl", "Graag je goedkeuring: aanmelding van Anna de Vries voor ", "Goedkeuren of afkeuren", "contactpersoon van jouw organisatie"),
     ("de", "Bitte um Genehmigung: Anmeldung von Anna de Vries für ", "Genehmigen oder ablehnen", "Ansprechperson Ihrer Organisation"),
     ("en", "Approval requested: sign-up of Anna de Vries for ", "Approve or refuse", "organisation's contact person")],
)
def test_approval_requested_asks_the_employer_with_the_link(
    renderer: Renderer, language: str, subject: str, button: str, footer: str
) -> None:
    out = renderer.render("approval_requested", language, "Piet", JOURNEY["approval_requested"])

    assert out.subject == subject + EDITION_DATA["name"]
    for body in (out.text, visible(out.html)):
        assert "Anna de Vries (Gemeente Enschede)" in body and "Plannen leren" in body and footer in body
    assert APPROVAL in out.text and f'href="{APPROVAL}"' in out.html and button in out.html


@pytest.mark.parametrize(
    ("kind", "change"),
    [("approval_requested", {"approval_url": ""}), ("approval_requested", {"approval_url": "javascript:alert(1)"}),
     ("approval_requested", {"participant_name": " "}), ("signup_confirmed", {"manage_url": "ftp://x"}),
     ("feedback_request", {"feedback_url": None}), ("assigned", {"manage_url": "javascript:x"}),
     ("assigned", {"calendar": {**invite(journey_offer()), "timezone": "Nowhere/Nothing"}})],
)
def test_data_that_cannot_make_a_message_is_refused(renderer: Renderer, kind: str, change: dict[str, Any]) -> None:
    with pytest.raises((KeyError, ValueError)):
        renderer.render(kind, "en", "Piet", {**JOURNEY[kind], **change})


def test_a_join_link_that_is_no_web_address_is_not_shown(renderer: Renderer) -> None:
    offer = {**ONLINE, "join_url": "javascript:alert(1)"}
    out = renderer.render("reminder", "en", "Piet", {"offer": offer, "calendar": None})
    assert "javascript" not in out.text and "javascript" not in out.html
    assert "online; the link follows" in out.text
