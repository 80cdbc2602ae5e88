"""E-mail messages (multipart text + HTML), sending them over SMTP with aiosmtplib, and what an SMTP
failure means (`classify`: permanent or temporary)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

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
        s = self._settings
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

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()
