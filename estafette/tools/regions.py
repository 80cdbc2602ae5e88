"""The region registry as an operator sees it: deploy/regions.toml applied to Kafka.

`apply` creates each region's topics (partitions and retention from its entry), grants the services and
the region's pipeline their access (estafette/tools/kafka_security.py), and publishes one record per
region on the compacted national topic `estafette.regions.v1`, which every service reads whole (runtime/
regions.py). `remove` publishes a region's tombstone and, if asked, deletes its topics.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from estafette.runtime.kafka import KafkaAccess
from estafette.tools.topics import delete_topics, ensure_topics, national_specs, publish_records, read_compacted, region_specs
from schemas.regions import RegionRecord
from schemas.topics import REGIONAL, REGIONS

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_FILE = ROOT / "deploy" / "regions.toml"


class RegistryError(ValueError):
    """The registry file is missing or wrong; the message names the entry and the field."""


def load(path: Path = REGISTRY_FILE) -> list[RegionRecord]:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: not valid TOML ({exc})") from None
    entries = doc.get("region", [])
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{path}: no [[region]] entries")
    regions: list[RegionRecord] = []
    for i, entry in enumerate(entries):
        try:
            regions.append(RegionRecord.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            raise RegistryError(f"{path}: region[{i}] ({entry.get('id', '?')!r}) {where}: {first['msg']}") from None
    ids = [r.id for r in regions]
    if dupes := sorted({i for i in ids if ids.count(i) > 1}):
        raise RegistryError(f"{path}: region id(s) listed twice: {', '.join(dupes)}")
    return regions


async def apply(
    kafka: KafkaAccess, regions: list[RegionRecord], *, topics: bool = True, grants: bool = True,
    replication: int = 1, min_insync_replicas: int | None = None,
) -> dict[str, list[str]]:
    """Create what each region needs and publish the registry; return {region: topics created}.
    Without `topics` or `grants`, an operator makes those (on Kubernetes: Strimzi's KafkaTopic and
    KafkaUser resources of the Helm chart), and only the registry is published."""
    from estafette.tools import kafka_security

    if topics:
        await ensure_topics(kafka, national_specs(), replication, min_insync_replicas)
    created: dict[str, list[str]] = {}
    for region in regions:
        created[region.id] = (await ensure_topics(kafka, region_specs(region), replication, min_insync_replicas)
                              if topics else [])
        if grants:
            await kafka_security.grant_region(kafka, region.id)
    await publish_records(kafka, REGIONS.name, [(r.id, r.model_dump_json().encode()) for r in regions])
    return created


async def published(kafka: KafkaAccess, timeout: float = 10.0) -> dict[str, RegionRecord]:
    """The registry as the services see it (the topic read to its end; unreadable records skipped)."""
    found: dict[str, RegionRecord] = {}
    for value in (await read_compacted(kafka, REGIONS.name, timeout)).values():
        try:
            record = RegionRecord.model_validate_json(value)
        except ValidationError:
            continue
        found[record.id] = record
    return found


async def remove(kafka: KafkaAccess, region: str, delete: bool = False) -> list[str]:
    """Tombstone the region in the registry and withdraw its grants (the services' on its topics, its
    pipeline's user); with `delete`, also delete its topics (return their names)."""
    from estafette.tools import kafka_security

    await publish_records(kafka, REGIONS.name, [(region, None)])
    await kafka_security.revoke_region(kafka, region)
    if not delete:
        return []
    return await delete_topics(kafka, [t.name_in(region) for t in REGIONAL])
