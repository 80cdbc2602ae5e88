"""The rendered KafkaUsers grant exactly what estafette/tools/kafka_security.py derives from the
registry: each service its national ACLs plus its ACLs in every region of the values, each
`pipeline-<region>` its pipeline ACLs, which cover only its own region's topics and groups. Compared
as sets of (principal, resource type, pattern, name, operation), with the three-region values too."""

from __future__ import annotations

from typing import Any

import pytest

from estafette.tools import kafka_security as ks
from services.registry import SERVICES

from .conftest import THREE_REGIONS, Render, of_kind
from .test_helm_chart import VALUES, regions_of

_TYPE = {"topic": ks.TOPIC, "group": ks.GROUP}
_PATTERN = {"literal": ks.LITERAL, "prefix": ks.PREFIXED}


def rendered_acls(docs: list[dict[str, Any]]) -> dict[str, set[ks.Acl]]:
    users: dict[str, set[ks.Acl]] = {}
    for user in of_kind(docs, "KafkaUser"):
        name = user["metadata"]["name"]
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        acls = users.setdefault(name, set())
        for rule in user["spec"].get("authorization", {}).get("acls", []):
            resource = rule["resource"]
            for op in rule["operations"]:
                acls.add(ks.Acl(ks.user(name), _TYPE[resource["type"]], _PATTERN[resource["patternType"]],
                                resource["name"], op.upper(), "ALLOW", rule.get("host", "*")))
    return users


def expected_acls(regions: list[str]) -> dict[str, set[ks.Acl]]:
    wanted: dict[str, set[ks.Acl]] = {s.name: set() for s in SERVICES}
    for acl in ks.national_acls() + [a for r in regions for a in ks.region_acls(r)]:
        wanted[acl.principal.removeprefix("User:")].add(acl)
    for region in regions:
        wanted[ks.pipeline_user(region)] = set(ks.pipeline_acls(region))
    return wanted


@pytest.mark.parametrize("name", list(VALUES))
def test_kafka_users_have_exactly_kafka_securitys_acls(render: Render, name: str) -> None:
    values = VALUES[name]
    docs = render(values)
    got = rendered_acls(docs)
    (kafka,) = of_kind(docs, "Kafka")
    admins = kafka["spec"]["kafka"]["authorization"]["superUsers"]
    assert admins == ["admin"] and got.pop("admin") == set()  # the operator's principal: no ACLs, super user
    assert got == expected_acls([r["id"] for r in regions_of(values)])


def test_each_pipeline_reads_only_its_own_region(render: Render) -> None:
    regions = [r["id"] for r in regions_of(THREE_REGIONS)]
    got = rendered_acls(render(THREE_REGIONS))
    topics = {a.name for acls in got.values() for a in acls if a.resource_type == ks.TOPIC and a.pattern == ks.LITERAL}
    assert len(regions) == 3
    for region in regions:
        acls = got[ks.pipeline_user(region)]
        assert acls and all(a.operation in {"READ", "DESCRIBE"} for a in acls)
        for acl in acls:
            if acl.resource_type == ks.TOPIC:
                assert acl.pattern == ks.PREFIXED and acl.name == f"estafette.{region}."
                own = {t for t in topics if t.startswith(acl.name)}
                assert own and all(t.split(".")[1] == region for t in own)
            else:
                assert acl.name in {f"pipeline-{region}", f"pipeline-{region}."}


def test_the_comparison_notices_a_missing_grant(render: Render) -> None:
    got = rendered_acls(render(THREE_REGIONS))
    wanted = expected_acls([r["id"] for r in regions_of(THREE_REGIONS)])
    got.pop("admin")
    got["matching"].discard(next(iter(wanted["matching"])))
    assert got != wanted
