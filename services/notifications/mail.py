"""E-mail messages (multipart text + HTML), sending them over SMTP with aiosmtplib, and what an SMTP
failure means (`classify`: permanent or temporary)."""

from __future__ import annotations

import email.charset
import email.encoders
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib

from services.notifications.config import NotificationsSettings
from services.notifications.domain import Failure, message_id, redact
from services.notifications.rendering import Rendered


def build_message(
    notification_id: uuid.UUID, sender: str, name: str, email: str, language: str, rendered: Rendered,
    kind: str | None = None,
) -> EmailMessage:
    """Text and HTML (multipart/alternative), then the rendered attachments (multipart/mixed), with a
    stable Message-ID, `Content-Language` and `X-Estafette-Kind` (the message's kind, for filters and
    tests)."""
    msg = EmailMessage()
    msg["From"] = sender
    local, _, domain = email.rpartition("@")
    msg["To"] = Address(display_name=name, username=local, domain=domain)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(notification_id, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders should not answer
    if kind:
        msg["X-Estafette-Kind"] = kind
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    # Attachments (a calendar entry) after the alternative parts: multipart/mixed around them.
    for attachment in getattr(rendered, "attachments", ()):
        maintype, subtype, params = _content_type(attachment.content_type)
        msg.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename, params=params
        )
    # After the body and attachments: add_alternative()/add_attachment() move every Content-* header
    # into the first part.
    msg["Content-Language"] = language
    return msg


# The sender's bodies: UTF-8, quoted-printable (readable in the raw message, 7-bit safe).
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP


def raw_message(
    notification_id: uuid.UUID, sender: str, name: str, email_address: str, language: str, rendered: Rendered,
    kind: str | None = None,
) -> bytes:
    """The same message as `build_message` (structure, headers, bodies, attachments), built with the
    compat32 MIME classes straight to bytes: about a quarter of the CPU (the sender's hot path, issue
    13). Only for ASCII addresses (`raw_ok`); a receiver parses both alike (tests/unit/.../test_mail.py)."""
    # Boundaries of random hex: no need for the generator's search of the text for a free one.
    alternative = MIMEMultipart("alternative", boundary=f"=_alt_{uuid.uuid4().hex}")
    alternative.attach(MIMEText(rendered.text, "plain", _UTF8_QP))
    alternative.attach(MIMEText(rendered.html, "html", _UTF8_QP))
    attachments = getattr(rendered, "attachments", ())
    root = MIMEMultipart("mixed", boundary=f"=_mix_{uuid.uuid4().hex}") if attachments else alternative
    if attachments:
        root.attach(alternative)
    for attachment in attachments:
        maintype, subtype, params = _content_type(attachment.content_type)
        part = MIMEBase(maintype, subtype, **params)
        part.set_payload(attachment.content)
        email.encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=attachment.filename)
        root.attach(part)
    root["From"] = formataddr(parseaddr(sender), "utf-8")
    root["To"] = formataddr((name, email_address), "utf-8")
    root["Subject"] = Header(rendered.subject, "us-ascii" if rendered.subject.isascii() else "utf-8")
    root["Date"] = format_datetime(datetime.now(UTC))
    root["Message-ID"] = message_id(notification_id, sender)
    root["Auto-Submitted"] = "auto-generated"
    if kind:
        root["X-Estafette-Kind"] = kind
    root["Content-Language"] = language
    return root.as_bytes()


def raw_ok(sender: str, email_address: str) -> bool:
    """`raw_message` and `SmtpPool.send_raw` serve plain ASCII envelopes; anything else (SMTPUTF8)
    goes through `build_message` and `send`."""
    return email_address.isascii() and parseaddr(sender)[1].isascii()


def _content_type(value: str) -> tuple[str, str, dict[str, str]]:
    """'text/calendar; method=REQUEST; charset=utf-8' -> ('text', 'calendar', {'method': 'REQUEST',
    'charset': 'utf-8'})."""
    kind, *rest = (part.strip() for part in value.split(";"))
    maintype, _, subtype = kind.partition("/")
    params = {}
    for param in rest:
        name, _, val = param.partition("=")
        if name.strip():
            params[name.strip().lower()] = val.strip().strip('"')
    return maintype.lower(), subtype.lower() or "octet-stream", params


def classify(exc: BaseException) -> Failure:
    """Permanent: a 5xx reply, or an error retrying cannot fix (bad address, template bug).
    Temporary: a 4xx reply, or the server being unreachable, slow or hanging up."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        permanent = all(r.code >= 500 for r in exc.recipients)
        return Failure(permanent, redact(f"recipient refused: {replies}"))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Failure(exc.code >= 500, redact(f"{type(exc).__name__}: {exc.code} {exc.message}"))
    if isinstance(exc, OSError | TimeoutError):  # refused, reset, disconnected, timed out
        return Failure(False, redact(f"{type(exc).__name__}: {exc}"))
    return Failure(True, redact(f"{type(exc).__name__}: {exc}"))


class SmtpMailer:
    """Sends messages over one SMTP connection, opened on first use and again after any error."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None

    async def send(self, message: EmailMessage) -> None:
        """Raises the aiosmtplib (or OS) error when the message was not accepted."""
        try:
            if self._smtp is None:
                self._smtp = await self._connect()
            await self._smtp.send_message(message)
        except BaseException:
            await self.close()
            raise

    async def _connect(self) -> aiosmtplib.SMTP:
        return await _connect(self._settings)

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            await _quit(smtp)


class SmtpPool:
    """Sends messages over reused SMTP connections, one per concurrent send: a send takes an idle
    connection (or opens one), gives it back after the server accepted the message, and closes it
    after any error (the next send opens a new one). The caller bounds the concurrency (the sender's
    `smtp_concurrency`), so there are never more connections than that; `close()` closes the idle
    ones (the sender calls it when nothing is left to send)."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        #: Connections opened so far (for tests and the benchmark: reuse means few).
        self.opened = 0

    async def send(self, message: EmailMessage) -> None:
        """Raises the aiosmtplib (or OS) error when the message was not accepted."""
        await self._with_connection(lambda smtp: smtp.send_message(message))

    async def send_raw(self, sender: str, recipient: str, data: bytes) -> None:
        """Send a message already built (`raw_message`) from the envelope sender of `sender` (the
        From header) to `recipient`; raises like `send`."""
        await self._with_connection(lambda smtp: smtp.sendmail(parseaddr(sender)[1], [recipient], data))

    async def _with_connection(self, use: Callable[[aiosmtplib.SMTP], Awaitable[object]]) -> None:
        smtp = None
        while self._idle and smtp is None:
            smtp = self._idle.pop()
            if not smtp.is_connected:  # the server hung up while it was idle
                smtp.close()
                smtp = None
        try:
            if smtp is None:
                smtp = await _connect(self._settings)
                self.opened += 1
            await use(smtp)
        except BaseException:
            if smtp is not None:
                smtp.close()  # no QUIT on a connection in an unknown state
            raise
        self._idle.append(smtp)

    async def close(self) -> None:
        """QUIT the idle connections."""
        idle, self._idle = self._idle, []
        for smtp in idle:
            await _quit(smtp)

    def abort(self) -> None:
        """Drop the idle connections without a QUIT (a stop in a hurry)."""
        idle, self._idle = self._idle, []
        for smtp in idle:
            smtp.close()


async def _connect(s: NotificationsSettings) -> aiosmtplib.SMTP:
    smtp = aiosmtplib.SMTP(
        hostname=s.smtp_host,
        port=s.smtp_port,
        timeout=s.smtp_timeout_seconds,
        start_tls=s.smtp_starttls,
        username=s.smtp_username or None,
        password=s.smtp_password.get_secret_value() or None,
    )
    await smtp.connect()
    return smtp


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    if not smtp.is_connected:
        return
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
