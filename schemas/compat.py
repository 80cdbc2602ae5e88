"""Additive-only rule for v1 contracts: compare a committed JSON Schema with the current one.

Allowed within a version: new optional fields, new event types, looser descriptions.
Not allowed: removing a field, changing a field's schema, making a field required, removing an event.
"""

from __future__ import annotations

from typing import Any

_DOC_KEYS = {"description", "title", "examples"}


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k not in _DOC_KEYS}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def breaking_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable list of non-additive differences between two schemas of one event."""
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for field, old_schema in old_props.items():
        if field not in new_props:
            problems.append(f"{name}.{field}: removed")
        elif _strip_docs(old_schema) != _strip_docs(new_props[field]):
            problems.append(f"{name}.{field}: schema changed")
    for field in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        problems.append(f"{name}.{field}: newly required (new fields must be optional)")
    for ref, old_def in old.get("$defs", {}).items():
        new_def = new.get("$defs", {}).get(ref)
        if new_def is None:
            problems.append(f"{name}: nested type {ref} removed")
        else:
            problems.extend(breaking_changes(f"{name}.{ref}", old_def, new_def))
    return problems
