"""`estafette mail ...`: read the local mail sink (estafette/mailsink.py) through its JSON API.

The sink's address: ``MAILSINK_URL``, else ``http://127.0.0.1:$MAILSINK_HTTP_PORT`` (default 8025).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import typer

mail_app = typer.Typer(no_args_is_help=True, help="Local mail sink: list and show the messages it caught.")


def sink_url() -> str:
    url = os.environ.get("MAILSINK_URL")
    if url:
        return url.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('MAILSINK_HTTP_PORT', '8025')}"


def _get(path: str, **params: Any) -> Any:
    import httpx

    url = sink_url()
    try:
        response = httpx.get(url + path, params={k: v for k, v in params.items() if v is not None}, timeout=10)
    except httpx.TransportError:
        typer.secho(
            f"The mail sink is not running at {url} (start it with: deploy/local/mailsink.sh start).",
            err=True,
            fg="red",
        )
        raise typer.Exit(1) from None
    if response.status_code == 404:
        typer.secho(response.json().get("detail", "not found"), err=True, fg="red")
        raise typer.Exit(1)
    response.raise_for_status()
    return response.json()


def _time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


@mail_app.command("list")
def list_messages(
    to: str | None = typer.Option(None, "--to", help="only messages to an address containing this"),
    limit: int = typer.Option(50, "--limit", "-n", help="at most this many, newest first"),
) -> None:
    """List the messages the sink caught, newest first."""
    from rich.console import Console
    from rich.table import Table

    messages = _get("/api/messages", to=to, limit=limit)
    console = Console()
    if not messages:
        console.print("No messages.")
        return
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", style="dim")
    table.add_column("Time", no_wrap=True)
    table.add_column("To")
    table.add_column("Subject")
    for m in messages:
        table.add_row(str(m["id"]), _time(m["received_at"]), ", ".join(m["to"]), m["subject"] or "(no subject)")
    console.print(table)


@mail_app.command("show")
def show(
    message_id: int = typer.Argument(..., metavar="ID", help="the message's ID (see `list`)"),
    html: bool = typer.Option(False, "--html", help="print the HTML body instead of the text body"),
) -> None:
    """Show one message: its main headers and its body."""
    from rich.console import Console
    from rich.markup import escape

    m = _get(f"/api/messages/{message_id}")
    console = Console()
    headers = m.get("headers", {})
    console.print(f"[bold]Time:[/bold]     {_time(m['received_at'])}")
    console.print(f"[bold]From:[/bold]     {escape(m['from'])}")
    console.print(f"[bold]To:[/bold]       {escape(', '.join(m['to']))}")
    if m.get("cc"):
        console.print(f"[bold]Cc:[/bold]       {escape(', '.join(m['cc']))}")
    console.print(f"[bold]Subject:[/bold]  {escape(m['subject'])}")
    for name in ("Content-Language", "Message-ID"):
        if name in headers:
            console.print(f"[bold]{name}:[/bold] {escape(headers[name])}")
    for a in m.get("attachments", []):
        console.print(f"[bold]Attachment:[/bold] {escape(a['filename'] or '(unnamed)')} ({a['content_type']}, {a['size']} bytes)")
    console.print()
    body = m.get("html") if html else m.get("text")
    if body is None:
        other = "text" if html else "HTML"
        body = f"(no {'HTML' if html else 'text'} body; try {'without' if html else 'with'} --html for the {other} one)"
    console.print(body, markup=False, highlight=False)
