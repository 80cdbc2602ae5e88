"""Write the JSON Schema of every event (and the topic registry) under schemas/jsonschema/v<VERSION>/.

Run `estafette schemas generate` after changing an event and commit the result. It refuses to write a
non-additive change to an event of the current version (see schemas/compat.py). Earlier versions'
directories (v1) stay as they were published.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.compat import breaking_changes
from schemas.events import ALL_EVENTS
from schemas.regions import RegionRecord
from schemas.topics import TOPICS, VERSION

SCHEMA_DIR = Path(__file__).parent / "jsonschema" / f"v{VERSION}"


def current_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON document, as generated from the code now."""
    docs: dict[str, dict[str, Any]] = {
        f"{event.__name__}.json": event.model_json_schema(mode="serialization") for event in ALL_EVENTS
    }
    docs["RegionRecord.json"] = RegionRecord.model_json_schema(mode="serialization")
    docs["topics.json"] = {
        "topics": [
            {
                "name": t.template,
                "regional": t.regional,
                "partitions": "per region (registry)" if t.regional else t.partitions,
                "key": t.key,
                "cleanup_policy": t.cleanup_policy,
                "events": [e.__name__ for e in t.events],
            }
            for t in TOPICS
        ]
    }
    return docs


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def committed_schemas(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def check_additive(committed: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    for name, old in committed.items():
        if name in ("topics.json", "RegionRecord.json"):
            continue
        if name not in current:
            problems.append(f"{name.removesuffix('.json')}: event removed")
        else:
            problems.extend(breaking_changes(name.removesuffix(".json"), old, current[name]))
    return problems


def generate(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write the files; return the names written. Raises ValueError on a breaking change."""
    current = current_schemas()
    problems = check_additive(committed_schemas(directory), current)
    if problems:
        raise ValueError(f"non-additive change to v{VERSION} contracts:\n  " + "\n  ".join(problems))
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in current.items():
        path = directory / name
        text = render(doc)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(name)
    return written
