"""The ACL table derived from services/registry.py (estafette/tools/kafka_security.py), without a broker."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from estafette.runtime.kafka import KafkaAccess
from estafette.tools import kafka_security as ks
from estafette.tools.cli import app
from schemas.topics import (
    API_KEYS,
    DEAD_LETTERS,
    MATCHES,
    NATIONAL,
    NATIONAL_DEAD_LETTERS,
    PARTICIPANTS,
    REGIONAL,
    REGIONS,
    RELAY,
    SIGNUPS,
    Topic,
)
from services.registry import SERVICES, ServiceSpec, service

Grant = tuple[str, str, str, str, str]  # principal, resource type, pattern, name, operation


def grants(acls: list[ks.Acl]) -> set[Grant]:
    assert all(a.permission == "ALLOW" and a.host == "*" for a in acls)
    return {(a.principal, a.resource_type, a.pattern, a.name, a.operation) for a in acls}


def topic_ops(acls: list[ks.Acl], principal: str) -> dict[str, set[str]]:
    ops: dict[str, set[str]] = {}
    for a in acls:
        if a.principal == principal and a.resource_type == "TOPIC":
            ops.setdefault(a.name, set()).add(a.operation)
    return ops


def test_each_service_gets_the_region_topics_it_reads_and_writes_and_no_other() -> None:
    acls = ks.region_acls("twente")
    for spec in SERVICES:
        expected: dict[str, set[str]] = {}
        for topic in spec.reads:
            if topic.regional:
                expected.setdefault(topic.name_in("twente"), set()).update({"READ", "DESCRIBE"})
        for topic in spec.writes:
            if topic.regional:
                expected.setdefault(topic.name_in("twente"), set()).update({"WRITE", "DESCRIBE"})
        assert topic_ops(acls, f"User:{spec.name}") == expected, spec.name
    assert {a.pattern for a in acls} == {"LITERAL"}
    assert all(a.name.startswith("estafette.twente.") for a in acls)
    assert {a.resource_type for a in acls} == {"TOPIC"}


def test_the_cases_the_issue_names() -> None:
    region = ks.region_acls("friesland")
    participants = PARTICIPANTS.name_in("friesland")
    assert "READ" not in topic_ops(region, "User:matching").get(participants, set())
    assert "READ" not in topic_ops(region, "User:reporting").get(participants, set())
    assert topic_ops(region, "User:notifications")[participants] == {"READ", "DESCRIBE"}
    assert topic_ops(region, "User:registration")[participants] == {"WRITE", "DESCRIBE"}
    assert "READ" not in topic_ops(region, "User:registration").get(SIGNUPS.name_in("friesland"), set())
    assert topic_ops(region, "User:matching")[MATCHES.name_in("friesland")] == {"WRITE", "DESCRIBE"}
    assert topic_ops(region, "User:matching")[DEAD_LETTERS.name_in("friesland")] == {"WRITE", "DESCRIBE"}


def test_national_grants_groups_and_the_topics_read_whole() -> None:
    acls = ks.national_acls()
    for spec in SERVICES:
        principal = f"User:{spec.name}"
        ops = topic_ops(acls, principal)
        assert ops[API_KEYS.name] == ops[REGIONS.name] == {"READ", "DESCRIBE"}  # every service reads them whole
        groups = {(a.pattern, a.name) for a in acls if a.principal == principal and a.resource_type == "GROUP"}
        assert groups == ({("LITERAL", spec.name), ("PREFIXED", f"{spec.name}.")} if spec.reads else set())
        assert all(a.operation == "READ" for a in acls if a.resource_type == "GROUP")
        assert not any(name.startswith("estafette.") and ".v2" in name and name.count(".") == 3 for name in ops), \
            "no regional topic in the national grants"
    reporting = topic_ops(acls, "User:reporting")
    assert reporting[RELAY.name] == {"READ", "DESCRIBE"}
    assert reporting[NATIONAL_DEAD_LETTERS.name] == {"WRITE", "DESCRIBE"}
    # nobody but admin writes the registry or the keys
    assert not any(a.operation == "WRITE" and a.name in (API_KEYS.name, REGIONS.name) for a in acls)


def test_the_table_follows_the_registry() -> None:
    """A new service or topic is granted what it declares, and nothing for what it does not."""
    audit_log = Topic("audit", "audit_id", ())
    audit = ServiceSpec("audit", "x:Y", "audit trail", regional=True, reads=(SIGNUPS, RELAY), writes=(audit_log,))
    region = grants(ks.region_acls("drenthe", services=[audit]))
    assert region == {
        ("User:audit", "TOPIC", "LITERAL", "estafette.drenthe.signups.v2", "READ"),
        ("User:audit", "TOPIC", "LITERAL", "estafette.drenthe.signups.v2", "DESCRIBE"),
        ("User:audit", "TOPIC", "LITERAL", "estafette.drenthe.audit.v2", "WRITE"),
        ("User:audit", "TOPIC", "LITERAL", "estafette.drenthe.audit.v2", "DESCRIBE"),
    }
    national = grants(ks.national_acls(services=[audit]))
    assert ("User:audit", "TOPIC", "LITERAL", RELAY.name, "READ") in national
    assert ("User:audit", "GROUP", "PREFIXED", "audit.", "READ") in national
    assert ks.region_acls("drenthe", services=[ServiceSpec("idle", "x:Y", "", regional=False)]) == []


def test_a_pipeline_reads_its_region_and_nothing_else() -> None:
    acls = ks.pipeline_acls("utrecht")
    assert grants(acls) == {
        ("User:pipeline-utrecht", "TOPIC", "PREFIXED", "estafette.utrecht.", "READ"),
        ("User:pipeline-utrecht", "TOPIC", "PREFIXED", "estafette.utrecht.", "DESCRIBE"),
        ("User:pipeline-utrecht", "GROUP", "LITERAL", "pipeline-utrecht", "READ"),
        ("User:pipeline-utrecht", "GROUP", "PREFIXED", "pipeline-utrecht.", "READ"),
    }
    prefix = ks.topic_prefix("utrecht")
    assert all(t.name_in("utrecht").startswith(prefix) for t in REGIONAL)
    assert not any(t.name.startswith(prefix) for t in NATIONAL)


def test_a_region_prefix_never_covers_another_region() -> None:
    """`noord` must not reach `noord-holland`: the topic prefix ends with the dot, the group prefix too."""
    for topic in REGIONAL:
        assert not topic.name_in("noord-holland").startswith(ks.topic_prefix("noord"))
    group_prefixes = [a.name for a in ks.pipeline_acls("noord") if a.resource_type == "GROUP" and a.pattern == "PREFIXED"]
    assert group_prefixes == ["pipeline-noord."]
    assert not "pipeline-noord-holland".startswith(group_prefixes[0])
    service_prefixes = [a.name for a in ks.national_acls() if a.resource_type == "GROUP" and a.pattern == "PREFIXED"]
    assert all(p.endswith(".") for p in service_prefixes)


@pytest.mark.parametrize("bad", ["", "Twente", "a.b", "../x", "-x"])
def test_region_ids_are_checked(bad: str) -> None:
    with pytest.raises(ValueError):
        ks.pipeline_acls(bad)
    with pytest.raises(ValueError):
        ks.region_acls(bad)


def test_client_properties_quote_the_jaas_values() -> None:
    assert ks.client_properties(KafkaAccess("h:1")) == {"bootstrap.servers": "h:1"}
    props = ks.client_properties(KafkaAccess("h:1", 'we"ird', 'pa\\ss"word'))
    assert props["security.protocol"] == "SASL_PLAINTEXT" and props["sasl.mechanism"] == "SCRAM-SHA-512"
    assert props["sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="we\\"ird" password="pa\\\\ss\\"word";'
    )


def test_acl_json_round_trip_and_display() -> None:
    for acl in ks.pipeline_acls("limburg"):
        assert ks.Acl.from_json(acl.as_json()) == acl
        assert str(acl).startswith("User:pipeline-limburg") and acl.name in str(acl)
        assert ("(prefixed)" in str(acl)) == (acl.pattern == "PREFIXED")


def test_registry_services_have_a_grant() -> None:
    """Every service of the registry appears in the table (no service is forgotten)."""
    principals = {a.principal for a in ks.region_acls("twente") + ks.national_acls()}
    assert principals == {f"User:{s.name}" for s in SERVICES}
    assert service("registration").reads == (MATCHES,)  # its participants' pages show where they go


def test_cli_without_an_admin_password_is_one_red_line() -> None:
    env = {"ESTAFETTE_KAFKA_USERNAME": "someone", "ESTAFETTE_KAFKA_PASSWORD": "", "ESTAFETTE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    for args in (["kafka", "acls"], ["kafka", "credentials", "--region", "twente"]):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 1, result.output
        assert "no admin password" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_a_region_id_before_asking_kafka() -> None:
    result = CliRunner().invoke(app, ["kafka", "credentials", "--region", "Not A Region"], env={"ESTAFETTE_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert result.exit_code == 2
    assert "is not a region id" in result.stderr and "Traceback" not in result.output


def test_cli_with_kafka_away_is_one_red_line() -> None:
    env = {"ESTAFETTE_KAFKA_USERNAME": "admin", "ESTAFETTE_KAFKA_PASSWORD": "x", "ESTAFETTE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    result = CliRunner().invoke(app, ["kafka", "acls"], env=env)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "cannot reach Kafka at 127.0.0.1:1; is it running (make run / make infra-up)?"
