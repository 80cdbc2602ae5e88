"""`estafette match run`: start an edition's match run over HTTP and follow it with a progress bar."""

from __future__ import annotations

import time

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


def run(edition: str, url: str, wait: bool, key: str) -> int:
    if not key.strip():
        console.print("[red]an API key is needed: --key KEY or ESTAFETTE_API_KEY (estafette keys create)")
        return 2
    auth = {"Authorization": f"Bearer {key.strip()}"}
    try:
        response = httpx.post(f"{url}/editions/{edition}/match-runs", headers=auth, timeout=30)
    except httpx.HTTPError as exc:
        console.print(f"[red]matching service not reachable at {url}: {exc}")
        return 2
    if response.status_code >= 400:
        console.print(f"[red]{response.json().get('message', response.text)}")
        return 2
    run_id = response.json()["id"]
    if response.json()["status"] == "queued":
        console.print(f"match run {run_id} queued for edition {edition}: an instance serving its region starts it")
    else:
        console.print(f"match run {run_id} started for edition {edition}")
    if not wait:
        return 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("loading", total=1.0)
        while True:
            state = httpx.get(f"{url}/match-runs/{run_id}", headers=auth, timeout=30).json()
            bar.update(task, completed=state["progress"], description=state["stage"])
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.3)
    if state["status"] == "failed":
        console.print(f"[red]match run failed: {state['error']}")
        return 1
    console.print(
        f"assigned {state['assigned']} (new {state['newly_assigned']}), waitlisted {state['waitlisted']}, "
        f"unmatched {state['unmatched']}, rank cost {state['rank_cost']}, {state['duration_ms']} ms, input {state['input_hash']}"
    )
    return 0
