"""Issue 10, "What it must show", in a real browser: the dashboard updates live and nothing overflows.

Registration and reporting run as processes on real Kafka and PostgreSQL; Debian's headless Chromium
(tests/e2e/cdp.py) opens an edition's dashboard page. Twelve sign-ups (above the suppression threshold)
are posted to registration; once reporting's JSON feed (`GET /feeds/dashboard`) has the new figure, the
page must show it within 2 s without a reload (the page's own script, on the server-sent event: a marker
set on `window` before survives, and there is still one navigation). That separates the platform's
event latency (registration -> Kafka -> reporting) from the page's live update.

Then at 375 px and 1,280 px the dashboard, the edition's page and the relay page do not overflow
horizontally (`scrollWidth <= clientWidth`); screenshots are saved under pytest's tmp_path. The relay
page gets content of the test's own (planned legs with long words, an approved knowledge item)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from schemas import KnowledgeItemApproved, RelayLegPlanned
from tests.e2e.cdp import Browser, Tab, chromium_path
from tests.support import Infra, ServiceProcess, eventually, region, services

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RUN = uuid.uuid4().hex[:6]
REGION = f"db{RUN}-noordoostpolder-en-omstreken"
EDITION = f"db-{RUN}-week"
SIGNUPS = 12
LIVE_WITHIN_SECONDS = 2.0
#: Recorded before any script of the page runs: the page's EventSource streams and the events they got.
WATCH_STREAMS = """(function () {
  var Original = window.EventSource;
  if (!Original) return;
  window.__streams = [];
  window.__events = 0;
  function Watched(url, options) {
    var source = new Original(url, options);
    window.__streams.push(source);
    source.addEventListener("changed", function () { window.__events += 1; });
    return source;
  }
  Watched.prototype = Original.prototype;
  window.EventSource = Watched;
})();"""
SIGNUPS_SHOWN = """(() => {
  for (const dt of document.querySelectorAll("dl.figures dt"))
    if (dt.textContent.trim() === "Sign-ups") return dt.nextElementSibling.textContent.trim();
  return null;
})()"""
OVERFLOW = """(() => {
  const root = document.documentElement, width = root.clientWidth, wide = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node && wide.length < 5; node = walker.nextNode()) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const right = range.getBoundingClientRect().right;
    if (right > width + 0.5) {
      const p = node.parentElement;
      wide.push(`${p.tagName.toLowerCase()}.${p.className} in ${p.closest("li,section").tagName.toLowerCase()}`
                + `.${p.closest("li,section").className}: text to ${Math.round(right)}px: ${node.textContent.trim().slice(0, 40)}`);
    }
  }
  return {scrollWidth: root.scrollWidth, clientWidth: width, wide: wide};
})()"""


@pytest.fixture(scope="module")
def platform(infra: Infra) -> Iterator[dict[str, ServiceProcess]]:
    infra.add_regions(region(REGION, partitions=1))
    infra.reset_relay()  # the country has one relay: other tests' legs are forgotten first
    with services(infra, "registration", "reporting") as svc:
        yield svc


def relay_content(infra: Infra) -> None:
    """Two planned legs of the test's region in the past (they never hold the baton) whose activities
    have what organisers write (a long Dutch compound, a link), and an approved knowledge item: content
    for the relay page."""
    long_word = "Arbeidsongeschiktheidsverzekeringsmaatschappij"
    common = {"region": REGION, "edition": EDITION, "correlation_id": uuid.uuid4()}
    infra.produce([
        RelayLegPlanned(**common, leg_id=f"leg-db-{RUN}-{n}", position=n, first_day=date(2026, 11, 3 * n),
                        last_day=date(2026, 11, 3 * n + 2), activity=f"{long_word}, sign up at https://www.slimmerwerken.nl/estafette/2027/leg-{n}/aanmelden")
        for n in (1, 2)
    ] + [KnowledgeItemApproved(**common, feedback_id=f"fb-db-{RUN}", offer_id=f"{EDITION}-o",
                               text=f"{long_word}{long_word}: hybrid meetings need a host",
                               approved_at=datetime(2026, 11, 4, 12, tzinfo=UTC), offer_title="Bakery",
                               host_org="bakker-bart")])


def viewport(tab: Tab, width: int) -> None:
    tab.send("Emulation.setDeviceMetricsOverride", width=width, height=800, deviceScaleFactor=1, mobile=width < 600)


def edition_signups(reporting: str) -> int | None | str:
    """The edition's sign-ups as reporting's public JSON feed publishes them ("unknown" before it knows it)."""
    body = httpx.get(f"{reporting}/feeds/dashboard", timeout=10).json()
    return next((e["signups"] for e in body["editions"] if e["edition"] == EDITION), "unknown")


def test_the_dashboard_updates_live_and_no_page_overflows(infra: Infra, platform, tmp_path: Path) -> None:
    registration, reporting = platform["registration"].url, platform["reporting"].url
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    with httpx.Client(base_url=registration, timeout=30) as http:
        eventually(lambda: REGION in {r["id"] for r in http.get("/regions").json()}, timeout=30)
        resp = http.post("/editions", headers=admin, json={
            "id": EDITION, "region": REGION, "name": "Live week", "languages": ["nl", "en"],
            "signup_deadline": "2099-01-01T00:00:00Z", "starts_on": "2099-05-01", "ends_on": "2099-05-05"})
        assert resp.status_code == 201, resp.text
        resp = http.post(f"/editions/{EDITION}/offers", headers=admin, json={
            "id": f"{EDITION}-o", "host_org": "bakker-bart", "title": "Bakery", "date": "2099-05-02", "capacity": 30})
        assert resp.status_code == 201, resp.text
    relay_content(infra)
    assert eventually(lambda: edition_signups(reporting) == 0, timeout=60)

    page = f"{reporting}/dashboard?lang=en&edition={EDITION}"
    with Browser(chromium_path()) as browser:
        tab = browser.tab()
        tab.send("Page.addScriptToEvaluateOnNewDocument", source=WATCH_STREAMS)
        viewport(tab, 1280)
        loaded = tab.open(page)
        assert loaded.status == 200, loaded.text
        assert tab.evaluate(SIGNUPS_SHOWN) == "0"
        # The page's live script is connected and has had its first event (the one at connect).
        eventually(lambda: tab.evaluate("window.__streams.length === 1 && window.__streams[0].readyState === 1"
                                        " && window.__events >= 1"), timeout=30)
        tab.evaluate("window.__marker = 1")
        navigations = tab.evaluate("performance.getEntriesByType('navigation').length")

        with httpx.Client(base_url=registration, timeout=30) as http:
            for n in range(SIGNUPS):
                resp = http.post(f"/editions/{EDITION}/signups", json={
                    "org": "gemeente", "name": f"Live {n}", "email": f"live{n}-{RUN}@example.org",
                    "choices": [f"{EDITION}-o"], "language": "en", "consent": True})
                assert resp.status_code == 201, resp.text

        # The platform's latency: until reporting has all 12 (its exact, authenticated report) and so
        # publishes the figure: 12, or null when complementary suppression withholds it (on the page "×":
        # the session's other regions' small counts may force that). A null before all 12 arrived would
        # be a small count ("< 5"), so the exact report decides when to look, not the public figure.
        eventually(lambda: httpx.get(f"{reporting}/reports/editions/{EDITION}", headers=admin, timeout=10)
                   .json().get("signups") == SIGNUPS, timeout=60, interval=0.05)
        published_value = str(edition_signups(reporting))
        published = time.monotonic()
        assert published_value in (str(SIGNUPS), "None"), published_value
        expected = "×" if published_value == "None" else published_value
        # The page's: it must show the figure within 2 s of that, without a reload.
        shown = None
        while time.monotonic() - published <= LIVE_WITHIN_SECONDS and shown != expected:
            shown = tab.evaluate(SIGNUPS_SHOWN)
            time.sleep(0.05)
        took = time.monotonic() - published
        later = tab.evaluate(SIGNUPS_SHOWN) if shown != expected else shown
        assert shown == expected, (
            f"the page showed {shown!r} {took:.2f}s after reporting published {expected} (a moment later: {later!r})")
        assert tab.evaluate("window.__marker") == 1  # the same document: no reload
        assert tab.evaluate("performance.getEntriesByType('navigation').length") == navigations
        assert tab.evaluate("document.documentElement.dataset.updated") is not None  # the live script's update
        tab.send("Page.captureScreenshot", format="png")  # the page is still alive to be pictured

        # No horizontal overflow at 375 px and 1,280 px on the dashboard, the edition page, the relay page.
        overflowing = []
        pages = {"dashboard": f"{reporting}/dashboard?lang=en", "edition": page, "relay": f"{reporting}/relay?lang=en"}
        relay = httpx.get(pages["relay"], timeout=10).text
        assert "Arbeidsongeschiktheidsverzekeringsmaatschappij" in relay and "hybrid meetings need a host" in relay
        for width in (375, 1280):
            viewport(tab, width)
            for name, url in pages.items():
                loaded = tab.open(url)
                assert loaded.status == 200, (name, loaded.text)
                measured = tab.evaluate(OVERFLOW)
                shot = tab.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                (tmp_path / f"{name}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
                if measured["scrollWidth"] > measured["clientWidth"]:
                    overflowing.append((name, width, measured))
        assert not overflowing, f"horizontal overflow (screenshots in {tmp_path}): {overflowing}"
