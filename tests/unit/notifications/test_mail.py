"""Messages, what an SMTP failure means, and the SMTP client against a small in-process SMTP server
(aiosmtpd), no infrastructure."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from aiosmtplib import (
    SMTPConnectError,
    SMTPDataError,
    SMTPNotSupported,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from services.notifications import domain
from services.notifications.config import NotificationsSettings
from services.notifications.mail import SmtpMailer, SmtpPool, build_message, classify, raw_message, raw_ok
from services.notifications.rendering import Attachment, Rendered

RENDERED = Rendered(subject="Ihr Estafette-Platz: Bäckerei", text="Guten Tag Jürgen,\n", html="<p>Guten Tag J&uuml;rgen,</p>")
SENDER = "Estafette <no-reply@estafette.example>"


class FakeMailServer:
    """Accepts mail like the project's mail sink: `bounce*` → 550, `softfail*` → 451."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list) -> str:  # noqa: N802
        local = address.split("@")[0]
        if local.startswith("bounce"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if local.startswith("softfail"):
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.received.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 2.0.0 queued"


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[FakeMailServer, int]]:
    handler = FakeMailServer()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="fake.test"), "127.0.0.1", 0)
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def settings(port: int) -> NotificationsSettings:
    return NotificationsSettings(smtp_port=port, smtp_timeout_seconds=5, sender=SENDER)


def message(to: str, nid: uuid.UUID | None = None) -> email.message.EmailMessage:
    return build_message(nid or uuid.uuid4(), SENDER, "Jürgen Müller", to, "de", RENDERED)


def test_message_is_multipart_text_and_html_with_language_and_stable_id() -> None:
    nid = uuid.uuid4()
    msg = message("juergen@example.org", nid)

    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Content-Language"] == "de"
    assert msg["Message-ID"] == domain.message_id(nid, SENDER) == f"<{nid}@estafette.example>"
    assert msg["Subject"] == RENDERED.subject
    assert msg["To"].addresses[0].display_name == "Jürgen Müller"
    assert msg["To"].addresses[0].addr_spec == "juergen@example.org"
    assert msg.get_body(("plain",)).get_content() == RENDERED.text
    assert msg.get_body(("html",)).get_content().strip() == RENDERED.html


def test_attachments_follow_the_text_and_html_and_the_language_stays_on_the_message() -> None:
    invite = b"BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n"
    rendered = dataclasses.replace(
        RENDERED, attachments=(Attachment("invite.ics", "text/calendar; method=CANCEL; charset=utf-8", invite),)
    )
    msg = build_message(uuid.uuid4(), SENDER, "Jürgen Müller", "juergen@example.org", "de", rendered, "offer_cancelled")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["X-Estafette-Kind"] == "offer_cancelled"

    assert parsed.get_content_type() == "multipart/mixed" and parsed["Content-Language"] == "de"
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/calendar"]
    (attachment,) = parsed.iter_attachments()
    assert (attachment.get_filename(), attachment.get_param("method"), attachment.get_content_charset()) == (
        "invite.ics", "CANCEL", "utf-8")
    assert attachment.get_payload(decode=True) == invite
    assert parsed.get_body(("plain",)).get_content() == RENDERED.text


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (SMTPRecipientsRefused([SMTPRecipientRefused(550, "5.1.1 mailbox unavailable", "a@b.c")]), True),
        (SMTPRecipientsRefused([SMTPRecipientRefused(451, "4.3.0 try again later", "a@b.c")]), False),
        (SMTPSenderRefused(553, "sender not allowed", "x@y.z"), True),
        (SMTPDataError(554, "message rejected"), True),
        (SMTPDataError(452, "insufficient storage"), False),
        (SMTPResponseException(421, "service not available"), False),
        (ConnectionRefusedError(111, "Connection refused"), False),
        (SMTPConnectError("Error connecting to 127.0.0.1 on port 1"), False),
        (SMTPServerDisconnected("Connection lost"), False),
        (SMTPReadTimeoutError("Timed out waiting for server response"), False),
        (TimeoutError(), False),
        (SMTPNotSupported("SMTPUTF8 is not supported by this server"), True),
        (ValueError("the request's context has no 'message'"), True),
    ],
)
def test_which_failures_are_permanent(exc: BaseException, permanent: bool) -> None:
    assert classify(exc).permanent is permanent


def test_failure_texts_never_contain_an_address() -> None:
    exc = SMTPRecipientsRefused(
        [SMTPRecipientRefused(550, "5.1.1 <bounce.me+x@example.org>: mailbox unavailable", "bounce.me+x@example.org")]
    )
    failure = classify(exc)

    assert "example.org" not in failure.error and "bounce.me" not in failure.error
    assert failure.error == "recipient refused: 550 5.1.1 <<address>>: mailbox unavailable"


async def test_sends_several_messages_over_one_connection(smtp_server: tuple[FakeMailServer, int]) -> None:
    server, port = smtp_server
    mailer = SmtpMailer(settings(port))
    try:
        await mailer.send(message("a@example.org"))
        await mailer.send(message("b@example.org"))
    finally:
        await mailer.close()

    assert [m["To"].addresses[0].addr_spec for m in server.received] == ["a@example.org", "b@example.org"]
    assert server.received[0]["Content-Language"] == "de"
    assert server.received[0]["Subject"] == RENDERED.subject


@pytest.mark.parametrize(("local", "permanent", "code"), [("bounce.x", True, "550"), ("softfail.x", False, "451")])
async def test_refusals_are_classified_and_the_next_message_still_goes_out(
    smtp_server: tuple[FakeMailServer, int], local: str, permanent: bool, code: str
) -> None:
    server, port = smtp_server
    mailer = SmtpMailer(settings(port))
    try:
        with pytest.raises(Exception) as refused:
            await mailer.send(message(f"{local}@example.org"))
        await mailer.send(message("ok@example.org"))
    finally:
        await mailer.close()

    failure = classify(refused.value)
    assert failure.permanent is permanent
    assert failure.error.startswith(f"recipient refused: {code}") and "example.org" not in failure.error
    assert [m["To"].addresses[0].addr_spec for m in server.received] == ["ok@example.org"]


async def test_no_server_is_a_temporary_failure() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mailer = SmtpMailer(settings(port))
    with pytest.raises(Exception) as refused:
        await mailer.send(message("a@example.org"))
    assert classify(refused.value).permanent is False


# --- the sender's hot path (issue 13): messages built straight to bytes, a pool of connections ------
def _parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_a_raw_message_reads_like_the_built_one() -> None:
    invite = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    rendered = dataclasses.replace(
        RENDERED, text="Guten Tag Jürgen,\n" + "ein langer Satz " * 100 + "\n",
        attachments=(Attachment("invite.ics", "text/calendar; method=REQUEST; charset=utf-8", invite),),
    )
    nid = uuid.uuid4()
    built = _parsed(build_message(nid, SENDER, "Jürgen Müller", "juergen@example.org", "de", rendered, "assigned").as_bytes())
    raw = _parsed(raw_message(nid, SENDER, "Jürgen Müller", "juergen@example.org", "de", rendered, "assigned"))

    assert [p.get_content_type() for p in raw.walk()] == [p.get_content_type() for p in built.walk()]
    for header in ("From", "Subject", "Message-ID", "Auto-Submitted", "X-Estafette-Kind", "Content-Language"):
        assert raw[header] == built[header], header
    assert raw["To"].addresses == built["To"].addresses
    assert raw["Message-ID"] == domain.message_id(nid, SENDER)
    assert raw.get_body(("plain",)).get_content() == rendered.text
    assert raw.get_body(("html",)).get_content().strip() == rendered.html
    (attachment,) = raw.iter_attachments()
    assert (attachment.get_filename(), attachment.get_param("method"), attachment.get_content_charset()) == (
        "invite.ics", "REQUEST", "utf-8")
    assert attachment.get_payload(decode=True) == invite
    assert all(len(line) <= 998 for line in raw_message(nid, SENDER, "J", "j@example.org", "de", rendered).splitlines())


def test_only_ascii_envelopes_take_the_raw_path() -> None:
    assert raw_ok(SENDER, "anna@example.org")
    assert not raw_ok(SENDER, "jürgen@example.org")


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[FakeMailServer, int, list[int]]]:
    """The fake server, its port, and a list that grows by one per SMTP connection."""
    handler, connections = FakeMailServer(), []
    loop = asyncio.get_running_loop()

    def connect() -> SMTP:
        connections.append(1)
        return SMTP(handler, hostname="fake.test")

    server = await loop.create_server(connect, "127.0.0.1", 0)
    try:
        yield handler, server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        await server.wait_closed()


def raw(to: str) -> bytes:
    return raw_message(uuid.uuid4(), SENDER, "Anna", to, "de", RENDERED)


async def test_the_pool_reuses_its_connections(counting_server: tuple[FakeMailServer, int, list[int]]) -> None:
    server, port, connections = counting_server
    pool = SmtpPool(settings(port))
    try:
        for i in range(10):
            await pool.send_raw(SENDER, f"a{i}@example.org", raw(f"a{i}@example.org"))
        await asyncio.gather(*(pool.send_raw(SENDER, f"b{i}@example.org", raw(f"b{i}@example.org")) for i in range(4)))
        await asyncio.gather(*(pool.send_raw(SENDER, f"c{i}@example.org", raw(f"c{i}@example.org")) for i in range(4)))
    finally:
        await pool.close()

    assert len(server.received) == 18
    assert len(connections) == pool.opened == 4  # one, then three more for four at once, then reused


async def test_after_a_refusal_the_pool_opens_a_new_connection_and_goes_on(
    counting_server: tuple[FakeMailServer, int, list[int]],
) -> None:
    server, port, connections = counting_server
    pool = SmtpPool(settings(port))
    try:
        await pool.send(message("ok1@example.org"))
        with pytest.raises(SMTPRecipientsRefused) as refused:
            await pool.send_raw(SENDER, "bounce.x@example.org", raw("bounce.x@example.org"))
        await pool.send_raw(SENDER, "ok2@example.org", raw("ok2@example.org"))
    finally:
        await pool.close()

    assert classify(refused.value).permanent is True
    assert [m["To"].addresses[0].addr_spec for m in server.received] == ["ok1@example.org", "ok2@example.org"]
    assert len(connections) == 2
