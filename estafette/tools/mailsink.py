"""Local SMTP mail sink for development and tests.

Accepts every message sent to it over SMTP, keeps it (one .eml file per message plus a small JSON
index in ``<state>/mail/``, so messages survive a restart) and shows it:

* ``GET /``                       HTML list (time, from, to, subject), click for the message
* ``GET /api/messages``           JSON list, newest first; filters ``?to=``, ``?subject=``, ``?limit=``
* ``GET /api/messages/{id}``      one message; ``GET /api/messages/{id}/raw`` its .eml
* ``DELETE /api/messages``        remove all messages; ``DELETE /api/messages/{id}`` one
* ``GET /api/health``             ``{"status": "ok", "pid": ..., "messages": n}``

A message in the API: ``id`` (int), ``received_at`` (ISO 8601, UTC), ``from`` (From header, else
the envelope sender), ``to`` (envelope recipients), ``subject``, ``text`` and ``html`` (bodies or
null), ``headers`` (name -> first value, decoded), ``envelope_from``, ``header_to``, ``cc``,
``size`` and ``attachments``.

Simulated failures: a recipient whose local part starts with ``bounce`` is refused with 550 (hard
failure), one starting with ``softfail`` with 451 (temporary failure).

Run: ``python -m estafette.tools.mailsink`` (foreground; SIGTERM/SIGINT stop it cleanly). Ports from
``MAILSINK_SMTP_PORT`` (1025) and ``MAILSINK_HTTP_PORT`` (8025), on 127.0.0.1; state under
``ESTAFETTE_STATE_DIR`` (default ``<repo>/.local``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.message
import email.parser
import email.policy
import html
import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("estafette.tools.mailsink")

DEFAULT_SMTP_PORT = 1025
DEFAULT_HTTP_PORT = 8025
HOST = "127.0.0.1"


#: Folders of messages being deleted in the background (MailStore.clear).
TRASH_PREFIX = "messages.deleted-"


def default_dir() -> Path:
    state = os.environ.get("ESTAFETTE_STATE_DIR") or Path(__file__).resolve().parents[2] / ".local"
    return Path(state) / "mail"


# --------------------------------------------------------------------------------------------
# Storage


def _addresses(msg: email.message.EmailMessage, name: str) -> list[str]:
    """Addresses in all headers NAME, as 'Display Name <addr>' (decoded) or 'addr'."""
    out = []
    for header in msg.get_all(name) or []:
        try:
            out.extend(str(a) for a in header.addresses)
        except (AttributeError, ValueError):  # unparsable header: keep its text
            out.append(str(header))
    return out


class MailStore:
    """Messages as ``messages/<id>.eml`` plus ``index.json`` (metadata, newest last).

    Each message's .eml is written when it arrives; the index is rewritten at most every
    ``FLUSH_SECONDS`` while messages arrive (rewriting it per message made the sink the bottleneck of
    any throughput test: O(n) per message), at once on a delete, and at shutdown. After a crash the
    .eml files the index does not list yet are indexed again at start-up."""

    #: How long the index on disk may lag behind the messages received (while the sink runs; longer
    #: for a big index: 20 times what writing it took).
    FLUSH_SECONDS = 0.5

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.msg_dir = directory / "messages"
        self.index_path = directory / "index.json"
        self.msg_dir.mkdir(parents=True, exist_ok=True)
        self._parsed: dict[int, dict[str, Any]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._save_seconds = 0.0
        for trash in directory.glob(f"{TRASH_PREFIX}*"):  # left by a clear() the sink did not finish
            shutil.rmtree(trash, ignore_errors=True)
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.index_path.read_text())
            self.entries: list[dict[str, Any]] = data["messages"]
            self.next_id: int = data["next_id"]
        except FileNotFoundError:
            self.entries, self.next_id = [], 1
            if any(self.msg_dir.glob("*.eml")):
                self._rebuild()
        except (ValueError, KeyError):
            log.warning("index %s unreadable; rebuilding it from the .eml files", self.index_path)
            self._rebuild()
        known = {e["id"] for e in self.entries}
        self.entries = [e for e in self.entries if (self.msg_dir / f"{e['id']}.eml").exists()]
        unindexed = self._unindexed(known)
        for msg_id, path in unindexed:  # received, but the sink stopped before its index was written
            received = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            self.entries.append(self._meta(msg_id, path.read_bytes(), None, [], received))
            self.next_id = max(self.next_id, msg_id + 1)
        if len(self.entries) != len(known) or unindexed:
            self._save()

    def _unindexed(self, known: set[int]) -> list[tuple[int, Path]]:
        found = []
        for path in self.msg_dir.glob("*.eml"):
            if path.stem.isdigit() and int(path.stem) not in known:
                found.append((int(path.stem), path))
        return sorted(found)

    def _rebuild(self) -> None:
        self.entries = []
        for path in sorted(self.msg_dir.glob("*.eml"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
            if not path.stem.isdigit():
                continue
            received = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            self.entries.append(self._meta(int(path.stem), path.read_bytes(), None, [], received))
        self.next_id = max((e["id"] for e in self.entries), default=0) + 1
        self._save()

    def _save(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        started = time.perf_counter()
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"next_id": self.next_id, "messages": self.entries}, separators=(",", ":")))
        os.replace(tmp, self.index_path)
        self._save_seconds = time.perf_counter() - started

    @staticmethod
    def _meta(
        msg_id: int, data: bytes, mail_from: str | None, rcpt_tos: list[str], received: datetime
    ) -> dict[str, Any]:
        msg = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(data)  # headers only
        header_from = str(msg.get("From", "") or "")
        return {
            "id": msg_id,
            "received_at": received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "from": header_from or mail_from or "",
            "to": list(rcpt_tos) or _addresses(msg, "To"),
            "subject": str(msg.get("Subject", "") or ""),
            "envelope_from": mail_from,
            "size": len(data),
        }

    def add(self, mail_from: str | None, rcpt_tos: list[str], data: bytes) -> dict[str, Any]:
        msg_id = self.next_id
        tmp = self.msg_dir / f"{msg_id}.eml.tmp"
        try:
            tmp.write_bytes(data)
        except FileNotFoundError:  # a clear() moved the folder away this very moment
            self.msg_dir.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
        os.replace(tmp, self.msg_dir / f"{msg_id}.eml")
        meta = self._meta(msg_id, data, mail_from, rcpt_tos, datetime.now(timezone.utc))
        self.entries.append(meta)
        self.next_id += 1
        self._save_soon()
        return meta

    def _save_soon(self) -> None:
        """Write the index within FLUSH_SECONDS (at once when no event loop runs)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._save()
            return
        if self._flush_handle is None:  # a big index is written less often: at most ~5% of the time
            self._flush_handle = loop.call_later(max(self.FLUSH_SECONDS, 20 * self._save_seconds), self._save)

    def flush(self) -> None:
        """Write the index now if messages arrived since it was last written."""
        if self._flush_handle is not None:
            self._save()

    def raw(self, msg_id: int) -> bytes | None:
        try:
            return (self.msg_dir / f"{msg_id}.eml").read_bytes()
        except FileNotFoundError:
            return None

    def get(self, msg_id: int) -> dict[str, Any] | None:
        if msg_id in self._parsed:
            return self._parsed[msg_id]
        meta = next((e for e in self.entries if e["id"] == msg_id), None)
        data = self.raw(msg_id) if meta else None
        if meta is None or data is None:
            return None
        full = {**meta, **_parse(data)}
        self._parsed[msg_id] = full
        return full

    def list(self, to: str | None = None, subject: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        out = []
        for meta in reversed(self.entries):
            if to and not any(to.lower() in addr.lower() for addr in meta["to"]):
                continue
            if subject and subject.lower() not in meta["subject"].lower():
                continue
            full = self.get(meta["id"])
            if full is not None:
                out.append(full)
            if limit and len(out) >= limit:
                break
        return out

    def delete(self, msg_id: int) -> bool:
        before = len(self.entries)
        self.entries = [e for e in self.entries if e["id"] != msg_id]
        self._parsed.pop(msg_id, None)
        (self.msg_dir / f"{msg_id}.eml").unlink(missing_ok=True)
        self._save()
        return len(self.entries) != before

    def clear(self) -> int:
        """Remove every message: the folder is moved aside at once and deleted in the background
        (unlinking tens of thousands of files one by one took longer than a client waits)."""
        count = len(self.entries)
        trash = self.dir / f"{TRASH_PREFIX}{time.time_ns()}"
        os.replace(self.msg_dir, trash)
        self.msg_dir.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=shutil.rmtree, args=(trash, True), daemon=True).start()
        self.entries, self._parsed = [], {}
        self._save()  # next_id keeps counting, so an id never names two messages
        return count


def _parse(data: bytes) -> dict[str, Any]:
    """Bodies, headers and attachments of a raw message."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    headers: dict[str, str] = {}
    for name, value in msg.items():
        headers.setdefault(name, str(value))

    def body(kind: str) -> str | None:
        try:
            part = msg.get_body(preferencelist=(kind,))
            return part.get_content() if part is not None else None
        except Exception:  # malformed part or unknown charset: keep the raw payload
            part = msg.get_body(preferencelist=(kind,))
            payload = part.get_payload(decode=True) if part is not None else None
            return payload.decode("utf-8", "replace") if payload else None

    attachments = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        attachments.append(
            {"filename": part.get_filename(), "content_type": part.get_content_type(), "size": len(payload)}
        )
    return {
        "text": body("plain"),
        "html": body("html"),
        "headers": headers,
        "header_to": _addresses(msg, "To"),
        "cc": _addresses(msg, "Cc"),
        "attachments": attachments,
    }


# --------------------------------------------------------------------------------------------
# SMTP


class SinkHandler:
    """aiosmtpd handler: simulated refusals at RCPT, storage at DATA."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:  # noqa: N802
        local = address.rsplit("@", 1)[0].lower()
        if local.startswith("bounce"):
            return f"550 5.1.1 <{address}>: mailbox unavailable (simulated hard bounce)"
        if local.startswith("softfail"):
            return f"451 4.3.0 <{address}>: temporary failure (simulated), try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        meta = self.store.add(envelope.mail_from, list(envelope.rcpt_tos), data)
        log.info("#%d from %s to %s: %s", meta["id"], meta["from"], ", ".join(meta["to"]), meta["subject"])
        return f"250 2.0.0 OK: queued as {meta['id']}"


# --------------------------------------------------------------------------------------------
# HTTP

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd}
tr:hover{background:#f4f6fa}a{color:#1f57a8;text-decoration:none}pre{white-space:pre-wrap;background:#f7f7f7;padding:1rem}
iframe{width:100%;height:32rem;border:1px solid #ccc}.muted{color:#777}button{cursor:pointer}.nw{white-space:nowrap}
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def create_app(store: MailStore):
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, Response

    app = FastAPI(title="Estafette mail sink", docs_url=None, redoc_url=None)

    def one(msg_id: int) -> dict[str, Any]:
        msg = store.get(msg_id)
        if msg is None:
            raise HTTPException(404, f"no message {msg_id}")
        return msg

    @app.get("/api/health")
    def health():
        return {"status": "ok", "pid": os.getpid(), "messages": len(store.entries)}

    @app.get("/api/messages")
    def list_messages(to: str | None = None, subject: str | None = None, limit: int | None = None):
        return store.list(to=to, subject=subject, limit=limit)

    @app.get("/api/messages/{msg_id}")
    def get_message(msg_id: int):
        return one(msg_id)

    @app.get("/api/messages/{msg_id}/raw")
    def get_raw(msg_id: int):
        one(msg_id)
        return Response(store.raw(msg_id) or b"", media_type="text/plain; charset=utf-8")

    @app.delete("/api/messages")
    def clear_messages():
        return {"deleted": store.clear()}

    @app.delete("/api/messages/{msg_id}")
    def delete_message(msg_id: int):
        if not store.delete(msg_id):
            raise HTTPException(404, f"no message {msg_id}")
        return {"deleted": 1}

    @app.get("/", response_class=HTMLResponse)
    def index():
        msgs = store.list()
        rows = "".join(
            f"<tr><td class='muted'>{m['id']}</td><td class='nw'>{_local_time(m['received_at'])}</td>"
            f"<td>{html.escape(m['from'])}</td><td>{html.escape(', '.join(m['to']))}</td>"
            f"<td><a href='/messages/{m['id']}'>{html.escape(m['subject'] or '(no subject)')}</a></td></tr>"
            for m in msgs
        )
        clear = (
            "<button onclick=\"fetch('/api/messages',{method:'DELETE'}).then(()=>location.reload())\">"
            "Delete all</button>"
        )
        body = (
            f"<h1>Mail sink</h1><p class='muted'>{len(msgs)} message(s) &middot; {clear}</p>"
            "<table><tr><th>#</th><th>Time</th><th>From</th><th>To</th><th>Subject</th></tr>"
            f"{rows or '<tr><td colspan=5 class=muted>No messages yet.</td></tr>'}</table>"
        )
        return _page("Mail sink", body)

    @app.get("/messages/{msg_id}", response_class=HTMLResponse)
    def show(msg_id: int):
        m = one(msg_id)
        heads = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in m["headers"].items()
        )
        parts = []
        if m["html"] is not None:
            parts.append(f"<h2>HTML</h2><iframe sandbox srcdoc=\"{html.escape(m['html'], quote=True)}\"></iframe>")
        if m["text"] is not None:
            parts.append(f"<h2>Text</h2><pre>{html.escape(m['text'])}</pre>")
        if m["attachments"]:
            items = "".join(
                f"<li>{html.escape(a['filename'] or '(unnamed)')} ({html.escape(a['content_type'])}, {a['size']} bytes)</li>"
                for a in m["attachments"]
            )
            parts.append(f"<h2>Attachments</h2><ul>{items}</ul>")
        body = (
            f"<p><a href='/'>&larr; all messages</a> &middot; <a href='/api/messages/{msg_id}/raw'>raw</a></p>"
            f"<h1>{html.escape(m['subject'] or '(no subject)')}</h1>"
            f"<p class='muted'>received {_local_time(m['received_at'])} &middot; envelope to "
            f"{html.escape(', '.join(m['to']))}</p><table>{heads}</table>{''.join(parts)}"
        )
        return _page(m["subject"] or "Message", body)

    return app


# --------------------------------------------------------------------------------------------
# Running both servers in one event loop


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"mailsink: cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


async def serve(directory: Path, host: str, smtp_port: int, http_port: int) -> None:
    import uvicorn
    from aiosmtpd.smtp import SMTP

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # signals are ours (see below), not uvicorn's
            yield

    loop = asyncio.get_running_loop()
    store = MailStore(directory)
    handler = SinkHandler(store)

    smtp_sock, http_sock = _bind(host, smtp_port), _bind(host, http_port)
    smtp_server = await loop.create_server(
        lambda: SMTP(handler, hostname="mailsink.local", ident="Estafette mail sink", enable_SMTPUTF8=True, loop=loop),
        sock=smtp_sock,
    )
    config = uvicorn.Config(create_app(store), log_level="warning", lifespan="off", access_log=False)
    web = _Server(config)
    web_task = asyncio.create_task(web.serve(sockets=[http_sock]))

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "SMTP on %s:%d, web on http://%s:%d/ (%d message(s) in %s)",
        host, smtp_port, host, http_port, len(store.entries), directory,
    )
    done, _ = await asyncio.wait({web_task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping")
    web.should_exit = True
    smtp_server.close()
    await smtp_server.wait_closed()
    store.flush()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(web_task, 10)
    if web_task in done and not stop.is_set():
        raise SystemExit("mailsink: the web server stopped unexpectedly")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m estafette.tools.mailsink", description="Local SMTP mail sink.")
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("MAILSINK_SMTP_PORT", DEFAULT_SMTP_PORT)))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("MAILSINK_HTTP_PORT", DEFAULT_HTTP_PORT)))
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--dir", type=Path, default=None, help="storage folder (default <state>/mail)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mailsink %(levelname)s %(message)s", stream=sys.stdout)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per SMTP command
    asyncio.run(serve(args.dir or default_dir(), args.host, args.smtp_port, args.http_port))


if __name__ == "__main__":
    main()
