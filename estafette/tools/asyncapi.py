"""AsyncAPI 3.0 documents generated from the services' FastStream apps (what each consumes and
publishes), written to schemas/asyncapi/<service>.json by `estafette schemas asyncapi`.

Regional topics appear as parameterised channels, `estafette.{region}.<kind>.v2` with a `region`
parameter (see runtime/docs.py `RegionalAsyncAPI`): the documents are the ones each service serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.registry import NAMES, service as find_service

ASYNCAPI_DIR = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi"


def document(service: str) -> dict[str, Any]:
    """The document the service serves at /asyncapi.json (runtime/docs.py `RegionalAsyncAPI`)."""
    app = find_service(service).create_app()
    return app.schema.to_specification().to_jsonable()


def documents() -> dict[str, str]:
    return {f"{s}.json": json.dumps(document(s), indent=2, sort_keys=True) + "\n" for s in NAMES}


def write() -> list[str]:
    ASYNCAPI_DIR.mkdir(exist_ok=True)
    written = []
    for name, text in documents().items():
        path = ASYNCAPI_DIR / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(name)
    return written
