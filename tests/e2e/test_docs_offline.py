"""Every service's `/docs`, `/redoc` and `/asyncapi` render on a machine without internet.

The four services run as processes. Each page's HTML names no host but the service itself, every
script and style sheet it references answers 200 from the service, and a real headless Chromium
that can resolve no other host than 127.0.0.1 (and has its background traffic switched off) renders
the API: an operation path for Swagger UI and ReDoc, a Kafka topic for the AsyncAPI viewer. Chromium
is Debian's package, installed by deploy/local/chromium.sh when missing; the AsyncAPI viewer's
bundle is fetched by `make install` (deploy/local/assets.sh).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.e2e.cdp import FLAGS, chromium_path
from tests.support import SERVICES, Infra, services

pytestmark = pytest.mark.e2e

#: What the rendered page of each service must show (text only the page's scripts can put there).
EXPECTED = {
    "registration": {"/docs": "/editions/{edition_id}/signups", "/redoc": "/editions/{edition_id}/signups",
                     "/asyncapi": "estafette.{region}.signups.v2"},
    "matching": {"/docs": "/match-runs/{run_id}", "/redoc": "/match-runs/{run_id}",
                 "/asyncapi": "estafette.{region}.matches.v2"},
    "notifications": {"/docs": "/notifications", "/redoc": "/notifications",
                      "/asyncapi": "estafette.{region}.notifications.v2"},
    "reporting": {"/docs": "/reports/regions", "/redoc": "/reports/regions", "/asyncapi": "estafette.{region}.signups.v2"},
}
TITLES = {name: f"Estafette {name}" for name in SERVICES}
CHROMIUM_FLAGS = [
    *FLAGS,
    # Nothing but this machine can be reached, as on a machine without internet.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",
    "--dump-dom",
]
URL = re.compile(r"""https?://[^\s"'<>()\\]+""")


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_path()


@pytest.fixture(scope="module")
def origin(infra: Infra) -> Iterator[Callable[[str], str]]:
    """`origin(name)`: the URL of the service, started as a process on first use and kept running for the
    module (so a service that does not start fails its own tests only)."""
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        def start(name: str) -> str:
            if name not in urls:
                urls[name] = stack.enter_context(services(infra, name))[name].url
            return urls[name]

        yield start


class _References(HTMLParser):
    """The URLs a page loads: script src, link href (style sheets, icons), img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "iframe": "src"}.get(tag)
        self.urls += [v for k, v in attrs if k == wanted and v and not v.startswith("data:")]


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def _foreign(text: str, origin: str) -> list[str]:
    return [u for u in URL.findall(text) if not u.startswith(origin + "/") and u != origin]


def _render(chromium: str, url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="estafette-chromium-") as profile:
        done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium failed on {url}: {done.stderr[-2000:]}"
    return done.stdout


def _shown(doc: str) -> str:
    """The document without its <head> (the title there comes from the server), scripts and styles."""
    return re.sub(r"<(head|script|style|noscript)\b.*?</\1>", "", doc, flags=re.S | re.I)


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/asyncapi"])
@pytest.mark.parametrize("service", SERVICES)
def test_page_renders_offline(origin: Callable[[str], str], chromium: str, service: str, page: str) -> None:
    url = origin(service) + page
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]} (is the AsyncAPI viewer installed? make install)"
    html = r.text
    assert _foreign(html, origin(service)) == [], f"{url} names another host"
    assets = [urljoin(url, ref) for ref in _references(html)]
    assert any(a.endswith(".js") for a in assets), f"{url} loads no script: {assets}"
    for asset in assets:
        assert urlsplit(asset).netloc == urlsplit(url).netloc, f"{url} loads {asset} from another host"
        answer = httpx.get(asset, timeout=10)
        assert answer.status_code == 200, f"{asset}: {answer.status_code}"
        assert answer.content, f"{asset} is empty"

    dom = _render(chromium, url)
    body = _shown(dom)
    expected = EXPECTED[service][page]
    assert expected not in _shown(html), f"{expected!r} is shown by the server's HTML: the check would prove nothing"
    assert expected in body, f"{url} did not render {expected!r}; rendered DOM starts:\n{body[:3000]}"
    if page != "/asyncapi":  # the AsyncAPI document has FastStream's title, not the API's
        assert TITLES[service] in body, f"{url} did not render the title {TITLES[service]!r}"
    loaded = [v for v in re.findall(r"""\ssrc=["']([^"']+)""", dom) if not v.startswith("data:")]
    assert all(urlsplit(urljoin(url, v)).netloc == urlsplit(url).netloc for v in loaded), loaded
