"""API keys for portals: create, list, revoke — records on the compacted key topic (schemas/access.py).

The key is printed once and never stored: the topic holds its SHA-256. Every service reads the whole
topic into memory (runtime/auth.py `KeyRing`), so a revocation reaches all of them within seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from estafette.runtime.auth import key_sha256, new_key
from estafette.runtime.kafka import KafkaAccess
from estafette.tools.topics import publish_records, read_compacted
from schemas.access import ApiKeyRecord, KeyRole
from schemas.topics import API_KEYS


async def _publish(kafka: KafkaAccess, record: ApiKeyRecord) -> None:
    await publish_records(kafka, API_KEYS.name, [(record.key_id, record.model_dump_json().encode())])


async def create(kafka: KafkaAccess, role: KeyRole, region: str | None = None, name: str = "") -> tuple[ApiKeyRecord, str]:
    """Publish a new key; return its record and the key (shown once). ValueError for a region
    missing on an organiser key or given on another one; pydantic's ValidationError for a bad name."""
    region = region or None
    if role == "organiser" and region is None:
        raise ValueError("an organiser key needs --region (the region it may act in)")
    if role != "organiser" and region is not None:
        raise ValueError(f"{'an' if role == 'admin' else 'a'} {role} key is not bound to a region: leave out --region")
    key_id, key = new_key()
    record = ApiKeyRecord(key_id=key_id, key_sha256=key_sha256(key), role=role, region=region, name=name,
                          created_at=datetime.now(UTC))
    await _publish(kafka, record)
    return record, key


async def records(kafka: KafkaAccess, timeout: float = 10.0) -> dict[str, ApiKeyRecord]:
    """Every key's latest record (the topic read to its end; unreadable records are skipped, as the
    services' KeyRing skips them)."""
    found: dict[str, ApiKeyRecord] = {}
    for value in (await read_compacted(kafka, API_KEYS.name, timeout)).values():
        try:
            record = ApiKeyRecord.model_validate_json(value)
        except ValidationError:
            continue
        found[record.key_id] = record
    return found


async def revoke(kafka: KafkaAccess, key_id: str) -> ApiKeyRecord:
    """Publish the key's record with `revoked_at` (nothing when it is revoked already); KeyError
    when there is no such key."""
    record = (await records(kafka))[key_id]
    if record.revoked:
        return record
    revoked = record.revoke(datetime.now(UTC))
    await _publish(kafka, revoked)
    return revoked
