"""API documentation pages that render with no internet: every script and style sheet of `/docs`,
`/redoc` and `/asyncapi` is served by the service itself, under `/docs-assets/`.

- `/docs` (Swagger UI) and `/redoc` (ReDoc): the copies shipped in the `fastapi-offline` package,
  served from `/docs-assets/openapi/`.
- `/asyncapi`: the AsyncAPI viewer (npm `@asyncapi/react-component`, its standalone browser bundle
  and style sheet), fetched at install by `deploy/local/assets.sh` (`make install`) into
  `.local/assets/asyncapi-react/` (or `$ESTAFETTE_ASSETS_DIR/asyncapi-react/`) and served from
  `/docs-assets/asyncapi/`. Without the bundle `/asyncapi` answers 503 saying how to install it;
  `/asyncapi.json` (the document itself) works either way. The viewer's "try it" plugin (another
  CDN script that publishes to the broker) is left out.

The pages name no other host: no CDN, no web fonts, no remote favicon, no Swagger validator badge.

The AsyncAPI document (`RegionalAsyncAPI`) shows regional topics as parameterised channels,
`estafette.{region}.<kind>.v2` with a `region` parameter: FastStream documents a pattern subscription
as one channel whose address is a regular expression, which is replaced by one receive channel per
consumed topic with the events it carries. `estafette schemas asyncapi` commits the same documents.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi_offline import FastAPIOffline
from faststream.asgi import AsgiResponse, get
from faststream.asgi.factories.asyncapi import AsyncAPIRoute
from faststream.asgi.handlers import GetHandler
from faststream.specification import AsyncAPI
from faststream.specification.base import SpecificationFactory

from schemas.topics import Topic

ASSETS_URL = "/docs-assets"
OPENAPI_ASSETS_URL = f"{ASSETS_URL}/openapi"
ASYNCAPI_ASSETS_URL = f"{ASSETS_URL}/asyncapi"
#: Where deploy/local/assets.sh puts the fetched npm bundles (git-ignored).
ASSETS_DIR = Path(os.environ.get("ESTAFETTE_ASSETS_DIR") or Path(__file__).resolve().parents[2] / ".local" / "assets")
ASYNCAPI_BUNDLE_DIR = ASSETS_DIR / "asyncapi-react"
#: The files of the AsyncAPI viewer the page loads: URL name -> file in the bundle dir.
ASYNCAPI_FILES = {"index.js": "index.js", "default.min.css": "default.min.css"}
MISSING_BUNDLE = (
    "The AsyncAPI viewer is not installed on this machine: run `make install` "
    "(or deploy/local/assets.sh install) and reload. The AsyncAPI document itself is at /asyncapi.json.\n"
)
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}


def offline_fastapi(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose `/docs` and `/redoc` load Swagger UI and ReDoc from this service, and that
    serves the AsyncAPI viewer's files for the `/asyncapi` page (see `asyncapi_route`)."""
    api = FastAPIOffline(static_url=OPENAPI_ASSETS_URL, swagger_ui_parameters={"validatorUrl": None}, **kwargs)

    @api.get(ASYNCAPI_ASSETS_URL + "/{name}", include_in_schema=False)
    async def asyncapi_asset(name: str) -> Response:
        if name not in ASYNCAPI_FILES:
            return PlainTextResponse("not found\n", status_code=404)
        path = ASYNCAPI_BUNDLE_DIR / ASYNCAPI_FILES[name]
        if not path.is_file():
            return PlainTextResponse(MISSING_BUNDLE, status_code=503)
        return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix])

    return api


def asyncapi_bundle_installed() -> bool:
    return all((ASYNCAPI_BUNDLE_DIR / f).is_file() for f in ASYNCAPI_FILES.values())


def asyncapi_html(schema_json: str, title: str) -> str:
    """The AsyncAPI viewer page for a document (JSON text), loading the viewer from this service."""
    # "<" escaped so that no text in the document can close the <script> element.
    props = json.dumps({"schema": schema_json, "config": _VIEWER_CONFIG}).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{_escape(title)} AsyncAPI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASYNCAPI_ASSETS_URL}/default.min.css">
<style>html {{ font-family: ui-sans-serif, system-ui, sans-serif; line-height: 1.5; }}</style>
</head>
<body>
<div id="asyncapi"></div>
<script src="{ASYNCAPI_ASSETS_URL}/index.js"></script>
<script>window.AsyncApiStandalone.render({props}, document.getElementById("asyncapi"));</script>
</body>
</html>
"""


_VIEWER_CONFIG = {
    "show": {"sidebar": True, "info": True, "servers": True, "operations": True, "messages": True,
             "schemas": True, "errors": True},
    "expand": {"messageExamples": True},
    "sidebar": {"showServers": "byDefault", "showOperations": "byDefault"},
}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class OfflineAsyncAPIRoute(AsyncAPIRoute):
    """FastStream's AsyncAPI route (`/asyncapi` page + `/asyncapi.json`), with the viewer loaded from
    this service instead of a CDN and without the "try it" plugin (and its POST endpoint)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, try_it_out_path=None)

    def __call__(self, schema: SpecificationFactory) -> GetHandler:
        page: bytes | None = None

        @get(include_in_schema=self.include_in_schema)
        async def asyncapi_page(scope: Any) -> AsgiResponse:  # noqa: ARG001
            nonlocal page
            if not asyncapi_bundle_installed():
                return AsgiResponse(MISSING_BUNDLE.encode(), 503, {"Content-Type": "text/plain; charset=utf-8"})
            if page is None:
                spec = schema.to_specification()
                page = asyncapi_html(spec.to_json(), spec.title).encode()
            return AsgiResponse(page, 200, {"Content-Type": "text/html; charset=utf-8"})

        return asyncapi_page


def asyncapi_route(path: str = "/asyncapi") -> AsyncAPIRoute:
    """For `AsgiFastStream(asyncapi_path=...)`."""
    return OfflineAsyncAPIRoute(path)


REGION_PARAMETER = {
    "description": "A region id of the region registry (deploy/regions.toml, topic estafette.regions.v1), e.g. twente.",
}


class _RegionalSpecification:
    """FastStream's specification with the regional channels (what `/asyncapi` and `/asyncapi.json` serve)."""

    def __init__(self, inner: Any, service: str, consumed: list[Topic]) -> None:
        self.title = inner.title
        self._doc = regional_channels(inner.to_jsonable(), service, consumed)

    def to_jsonable(self) -> dict[str, Any]:
        return self._doc

    def to_json(self) -> str:
        return json.dumps(self._doc)


class RegionalAsyncAPI(AsyncAPI):
    def __init__(self, *brokers: Any, service: str, consumed: list[Topic], **kwargs: Any) -> None:
        super().__init__(*brokers, **kwargs)
        self._service = service
        self._consumed = consumed

    def to_specification(self) -> Any:
        return _RegionalSpecification(super().to_specification(), self._service, self._consumed)


def regional_channels(doc: dict[str, Any], service: str, consumed: list[Topic]) -> dict[str, Any]:
    """Replace the pattern-subscriber channel(s) by one receive channel per consumed topic, and give
    every channel of a regional topic its `region` parameter."""
    for name in [n for n, op in doc.get("operations", {}).items() if op["action"] == "receive"]:
        del doc["operations"][name]
        doc["channels"].pop(name, None)
        doc["components"]["messages"].pop(f"{name}:SubscribeMessage", None)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("EmptyPayload", None)
    for topic in consumed:
        channel_id = f"{service}:receives:{topic.template}"
        messages = {}
        for event in topic.events:
            schema = event.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
            for def_name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(def_name, definition)
            schemas.setdefault(event.__name__, schema)
            doc["components"].setdefault("messages", {}).setdefault(event.__name__, {
                "name": event.__name__, "title": event.__name__,
                "correlationId": {"location": "$message.header#/correlation_id"},
                "payload": {"$ref": f"#/components/schemas/{event.__name__}"},
            })
            messages[event.__name__] = {"$ref": f"#/components/messages/{event.__name__}"}
        doc["channels"][channel_id] = {
            "address": topic.template,
            "description": f"Events: {', '.join(e.__name__ for e in topic.events) or 'tombstones'}. Key: {topic.key}."
            + (" Compacted: a null value (tombstone) erases the key." if topic.compacted() else ""),
            "servers": [{"$ref": "#/servers/development"}],
            "messages": messages,
            "bindings": {"kafka": {"topic": topic.template, "bindingVersion": "0.4.0"}},
        }
        ref = "#/channels/" + channel_id.replace("{", "%7B").replace("}", "%7D")
        doc.setdefault("operations", {})[channel_id] = {
            "action": "receive",
            "channel": {"$ref": ref},
            "messages": [{"$ref": f"{ref}/messages/{m}"} for m in messages],
        }
    for channel in doc.get("channels", {}).values():
        if "{region}" in channel["address"]:
            channel["parameters"] = {"region": REGION_PARAMETER}
    return doc
