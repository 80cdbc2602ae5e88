"""AsyncAPI 3.0 documents generated from the services' FastStream apps (what each consumes and
publishes), written to schemas/asyncapi/<service>.json by `estafette schemas asyncapi`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.registry import NAMES, service as find_service

ASYNCAPI_DIR = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi"


def document(service: str) -> dict[str, Any]:
    from faststream.specification import AsyncAPI

    app = find_service(service).create_app()
    spec = AsyncAPI(app.broker, title=f"Estafette {service}", version="1", schema_version="3.0.0")
    return json.loads(spec.to_specification().to_json())


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
