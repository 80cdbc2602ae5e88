"""A headless Chromium driven over the DevTools protocol, for tests that must press a button.

Debian's chromium runs with the same flags as tests/e2e/test_docs_offline.py and a fresh profile, and
speaks the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON messages ending in a NUL
byte, the browser reads on its fd 3 and writes on its fd 4), so no WebSocket library is needed. The
page is loaded, and the button pressed with real mouse events at its place on the page; the answer's
HTTP status and the resulting DOM are read back.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import ROOT

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium, installed with apt-get by the project's script (deploy/local/chromium.sh) if missing."""
    done = subprocess.run([str(ROOT / "deploy" / "local" / "chromium.sh"), "install"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"deploy/local/chromium.sh failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


def _above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class CdpError(AssertionError):
    pass


@dataclass(frozen=True)
class Loaded:
    """A document the browser navigated to: its URL, the HTTP status it was answered with, its DOM."""

    url: str
    status: int
    html: str
    text: str


class Browser:
    """One Chromium process; `tab()` opens a tab. Use as a context manager."""

    def __init__(self, chromium: str, timeout: float = 30) -> None:
        self.timeout = timeout
        self._dir = tempfile.TemporaryDirectory(prefix="estafette-chromium-")  # a fresh profile, and the log
        self._log = Path(self._dir.name) / "chromium.log"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser expects the pipe on fds 3 and 4: bash moves them there, then becomes chromium
        # (the browser's ends are first moved above 9, so that they cannot be fds 3 or 4 themselves).
        to_browser_r, from_browser_w = (_above_9(fd) for fd in (to_browser_r, from_browser_w))
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                ["/bin/bash", "-c", script, chromium, *FLAGS, "--remote-debugging-pipe",
                 f"--user-data-dir={self._dir.name}/profile", "about:blank"],
                pass_fds=(to_browser_r, from_browser_w), stdout=log, stderr=subprocess.STDOUT,
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def tab(self) -> Tab:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        tab = Tab(self, self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
        for domain in ("Page", "Network", "Runtime"):
            tab.send(f"{domain}.enable")
        return tab

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (CdpError, OSError):
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._dir.cleanup()

    # --- protocol ----------------------------------------------------------------------------------
    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command (to a tab's `session`) and wait for its result (events meanwhile are kept
        for `wait_for`)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline, f"the answer to {method}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _receive(self, deadline: float, what: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError(f"chromium: no {what} within {self.timeout}s")
            if select.select([self._from_browser], [], [], left)[0]:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    log = self._log.read_text(errors="replace")[-2000:]
                    raise CdpError(f"chromium closed its pipe (exit {self._proc.poll()}): {log}")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def wait_for(self, session: str, method: str, what: str) -> dict[str, Any]:
        """The next event `method` of a tab (taken from those already received, else waited for);
        the tab's earlier events are dropped."""
        deadline = time.monotonic() + self.timeout
        while True:
            mine = [i for i, e in enumerate(self._events) if e.get("sessionId") == session]
            for i in mine:
                if self._events[i].get("method") == method:
                    params = self._events[i]["params"]
                    self._events = [e for j, e in enumerate(self._events) if j > i or j not in mine]
                    return params
            self._events.append(self._receive(deadline, what))

    def forget(self, session: str) -> None:
        self._events = [e for e in self._events if e.get("sessionId") != session]


@dataclass
class Tab:
    """One tab: what a person does in it."""

    browser: Browser
    session: str

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, session=self.session, **params)

    def open(self, url: str) -> Loaded:
        """Load `url` as a person following a link would."""
        self.browser.forget(self.session)
        self.send("Page.navigate", url=url)
        return self._loaded(f"the page {url}")

    def press(self, selector: str = "form button") -> Loaded:
        """Press the page's button with the mouse (moved to its middle, pressed, released) and wait for
        the page that answers."""
        box = self.evaluate(
            f"(() => {{ const b = document.querySelector({json.dumps(selector)}); if (!b) return null;"
            " b.scrollIntoView(); const r = b.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()")
        if box is None:
            raise CdpError(f"no {selector!r} on the page to press")
        self.browser.forget(self.session)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                      button="left", clickCount=1)
        return self._loaded(f"the page after pressing {selector!r}")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _loaded(self, what: str) -> Loaded:
        """Wait for the main document's response and its load event."""
        while True:
            response = self.browser.wait_for(self.session, "Network.responseReceived", f"the response for {what}")
            if response.get("type") == "Document":
                break
        self.browser.wait_for(self.session, "Page.loadEventFired", f"the load of {what}")
        html = self.evaluate("document.documentElement.outerHTML")
        text = self.evaluate("document.body ? document.body.innerText : ''")
        return Loaded(response["response"]["url"], int(response["response"]["status"]), html, text)
