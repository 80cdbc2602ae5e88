"""API documentation pages served with their own assets (runtime/docs.py): /docs and /redoc load
Swagger UI and ReDoc from the service, /asyncapi the AsyncAPI viewer fetched at install, and no page
names another host. The browser check is tests/e2e/test_docs_offline.py."""

import re
from html.parser import HTMLParser

import httpx
import pytest
from faststream.kafka import KafkaBroker

from estafette.runtime import docs
from estafette.runtime.app import ServiceApp
from estafette.runtime.http import create_http_api

EXTERNAL = re.compile(r"https?://")


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.refs += [v for k, v in attrs if k == wanted and v and not v.startswith("data:")]


def refs(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


def service_app(description: str = "Sign-ups.") -> ServiceApp:
    broker = KafkaBroker("127.0.0.1:1")

    @broker.subscriber("estafette.signups.v1", group_id="test", description=description)
    async def on_signup(body: dict) -> None: ...

    return ServiceApp(broker, http_api=create_http_api("Estafette test"), asyncapi_path=docs.asyncapi_route())


@pytest.fixture
def client():
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=service_app()), base_url="http://t")


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """A stand-in for the fetched viewer bundle."""
    (tmp_path / "index.js").write_text("window.AsyncApiStandalone = {};")
    (tmp_path / "default.min.css").write_text(".aui-root {}")
    monkeypatch.setattr(docs, "ASYNCAPI_BUNDLE_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_swagger_ui_and_redoc_load_their_assets_from_the_service(client, page):
    r = await client.get(page)
    assert r.status_code == 200
    assert not EXTERNAL.search(r.text), r.text
    assert any(ref.endswith(".js") for ref in refs(r.text))
    for ref in refs(r.text):
        assert ref.startswith(docs.OPENAPI_ASSETS_URL + "/"), ref
        asset = await client.get(ref)
        assert asset.status_code == 200 and asset.content, ref


async def test_swagger_ui_asks_no_outside_validator(client):
    assert '"validatorUrl": null' in (await client.get("/docs")).text


async def test_asyncapi_page_loads_the_viewer_from_the_service(client, bundle):
    r = await client.get("/asyncapi")
    assert r.status_code == 200
    assert not EXTERNAL.search(r.text), r.text
    assert sorted(refs(r.text)) == [f"{docs.ASYNCAPI_ASSETS_URL}/default.min.css", f"{docs.ASYNCAPI_ASSETS_URL}/index.js"]
    assert "estafette.signups.v1" in r.text
    js = await client.get(f"{docs.ASYNCAPI_ASSETS_URL}/index.js")
    assert (js.status_code, js.text) == (200, "window.AsyncApiStandalone = {};")
    assert js.headers["content-type"].startswith("text/javascript")
    css = await client.get(f"{docs.ASYNCAPI_ASSETS_URL}/default.min.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await client.get(f"{docs.ASYNCAPI_ASSETS_URL}/package.json")).status_code == 404


async def test_without_the_bundle_asyncapi_says_how_to_install_it(client, tmp_path, monkeypatch):
    monkeypatch.setattr(docs, "ASYNCAPI_BUNDLE_DIR", tmp_path / "missing")
    r = await client.get("/asyncapi")
    assert r.status_code == 503 and "make install" in r.text
    assert not EXTERNAL.search(r.text)
    assert (await client.get(f"{docs.ASYNCAPI_ASSETS_URL}/index.js")).status_code == 503
    assert (await client.get("/asyncapi.json")).status_code == 200  # the document itself needs no viewer


async def test_no_try_it_plugin_and_no_endpoint_that_publishes(client, bundle):
    assert "TryIt" not in (await client.get("/asyncapi")).text
    assert (await client.post("/asyncapi/try", json={"channelName": "estafette.signups.v1"})).status_code == 404


async def test_text_in_the_document_cannot_close_the_script(bundle):
    app = service_app(description="</script><script>alert(1)</script>")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        html = (await client.get("/asyncapi")).text
    assert html.count("</script>") == 2 and "alert(1)" in html
