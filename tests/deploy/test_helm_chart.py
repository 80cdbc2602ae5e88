"""The Helm chart (deploy/helm/estafette) lints and renders, with the default values and with the
three-region values file, and what it renders is what the services and the cluster accept:

- every core Kubernetes resource validates against the Kubernetes schemas of a pinned version
  (kubernetes-validate, strict: unknown fields are errors);
- one Deployment per national service and, per region, one of matching and notifications (or one
  for every region with perRegion false), each `serve <service> [--regions <region>]`, with probes
  on /healthz and /readyz, a Service and a PodDisruptionBudget;
- the environment uses the variable names the settings classes read, and every secret comes from a
  Secret reference (no literal password, DSN with a password, or link secret in the manifests);
- Strimzi and CloudNativePG resources carry the fields their operators require (no published models
  of them are packaged for Python), with replication 3 and min ISR 2;
- KafkaTopics are exactly the topics of schemas/topics.py with tools/topics.py's settings;
- kafka.manageTopics false and postgres.mode external render what they promise.
"""

from __future__ import annotations

import importlib
from typing import Any

import kubernetes_validate
import pytest
import yaml

from estafette.tools.topics import national_specs, region_specs
from schemas.regions import RegionNames, RegionRecord
from services.registry import SERVICES

from .conftest import CHART, KUBE_VERSION, THREE_REGIONS, Render, of_kind, run_helm

VALUES = {"default": None, "three-regions": THREE_REGIONS}
CORE_KINDS = {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "Job"}
CUSTOM_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "ScaledObject",
                "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}


def regions_of(values: Any) -> list[dict[str, Any]]:
    source = values or CHART / "values.yaml"
    return yaml.safe_load(source.read_text())["regions"]


@pytest.fixture(params=list(VALUES), scope="module")
def case(request: pytest.FixtureRequest, render: Render) -> tuple[Any, list[dict[str, Any]]]:
    values = VALUES[request.param]
    return values, render(values)


@pytest.mark.parametrize("name", list(VALUES))
def test_helm_lint(helm: Any, name: str) -> None:
    args = ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
    if VALUES[name]:
        args += ["-f", str(VALUES[name])]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_kind_is_checked(case: tuple[Any, list[dict[str, Any]]]) -> None:
    _, docs = case
    kinds = {d["kind"] for d in docs}
    assert kinds <= CORE_KINDS | CUSTOM_KINDS, f"kinds no test checks: {kinds - CORE_KINDS - CUSTOM_KINDS}"
    assert kinds == CORE_KINDS | CUSTOM_KINDS  # the defaults enable every part of the chart


def test_core_resources_match_the_kubernetes_schemas(case: tuple[Any, list[dict[str, Any]]]) -> None:
    _, docs = case
    core = [d for d in docs if d["kind"] in CORE_KINDS]
    assert core
    for doc in core:
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_the_validation_rejects_an_unknown_field(case: tuple[Any, list[dict[str, Any]]]) -> None:
    deployment = dict(of_kind(case[1], "Deployment")[0])
    deployment["spec"] = {**deployment["spec"], "replicaz": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_a_deployment_per_national_service_and_per_region_of_regional_ones(case: tuple[Any, list[dict[str, Any]]]) -> None:
    values, docs = case
    regions = [r["id"] for r in regions_of(values)]
    got = sorted(tuple(_container(d)["args"]) for d in of_kind(docs, "Deployment"))
    wanted = sorted(
        [("serve", s.name, "--regions", r) for s in SERVICES if s.regional for r in regions]
        + [("serve", s.name) for s in SERVICES if not s.regional]
    )
    assert got == wanted


def test_per_region_false_runs_one_instance_for_every_region(render: Render) -> None:
    docs = render(THREE_REGIONS, "services.matching.perRegion=false")
    args = sorted(tuple(_container(d)["args"]) for d in of_kind(docs, "Deployment"))
    assert ("serve", "matching") in args
    assert not [a for a in args if a[1] == "matching" and len(a) > 2]
    assert len([a for a in args if a[1] == "notifications"]) == 3


def test_probes_ports_services_and_budgets(case: tuple[Any, list[dict[str, Any]]]) -> None:
    _, docs = case
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    budgets = {p["metadata"]["name"]: p for p in of_kind(docs, "PodDisruptionBudget")}
    for deployment in of_kind(docs, "Deployment"):
        name, container = deployment["metadata"]["name"], _container(deployment)
        (port,) = container["ports"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert services[name]["spec"]["selector"] == selector
        assert services[name]["spec"]["ports"][0]["port"] == port["containerPort"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == selector
        env = {e["name"]: e for e in container["env"]}
        prefix = container["args"][1].upper()
        assert env[f"{prefix}_HTTP_PORT"]["value"] == str(port["containerPort"])
        assert env[f"{prefix}_HTTP_HOST"]["value"] == "0.0.0.0"


def _env_names(service: str) -> set[str]:
    """The variables the service's settings class reads: `<SERVICE>_<FIELD>`, or a field's own
    aliases (`ESTAFETTE_<FIELD>` for platform-wide settings; the prefix does not apply to those)."""
    spec = next(s for s in SERVICES if s.name == service)
    module, _, cls = spec.settings_class.partition(":")
    settings = getattr(importlib.import_module(module), cls)
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for field, info in settings.model_fields.items():
        alias = info.validation_alias
        if alias is None:
            names.add(f"{prefix}{field}".upper())
        else:
            choices = getattr(alias, "choices", [alias])
            names |= {c.upper() for c in choices if isinstance(c, str)}
    return names


def test_environment_names_are_read_by_the_settings(case: tuple[Any, list[dict[str, Any]]]) -> None:
    """Every variable is one the service's settings class reads, so a typo cannot pass silently."""
    _, docs = case
    for deployment in of_kind(docs, "Deployment"):
        container = _container(deployment)
        names = _env_names(container["args"][1])
        assert "MATCHING_HTTP_PORT" in _env_names("matching") and "ESTAFETTE_LINK_SECRET" in names
        for var in container["env"]:
            assert var["name"] in names, f"{deployment['metadata']['name']}: nothing reads {var['name']}"


SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN")


def test_secrets_only_by_reference(case: tuple[Any, list[dict[str, Any]]]) -> None:
    _, docs = case
    for deployment in of_kind(docs, "Deployment"):
        env = {e["name"]: e for e in _container(deployment)["env"]}
        for name, var in env.items():
            if any(word in name for word in SECRET_WORDS):
                assert "secretKeyRef" in var.get("valueFrom", {}), f"{name} is not a Secret reference"
        for name in [n for n in env if n.endswith("_DATABASE_URL")]:
            value = env[name].get("value")
            if value is not None:  # a DSN built from the password variable, never a literal password
                user_info = value.split("://", 1)[1].split("@", 1)[0]
                assert user_info.split(":", 1)[1].startswith("$("), value
    for config_map in of_kind(docs, "ConfigMap"):
        assert not any(word.lower() in key.lower() for word in SECRET_WORDS for key in config_map["data"])


def test_external_database_by_values(render: Render) -> None:
    docs = render(THREE_REGIONS, "postgres.mode=external")
    assert not of_kind(docs, "Cluster")
    for deployment in of_kind(docs, "Deployment"):
        container = _container(deployment)
        env = {e["name"]: e for e in container["env"]}
        ref = env[f"{container['args'][1].upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "estafette-database-urls", "key": container["args"][1]}


# --- Strimzi and CloudNativePG: the fields their operators require ------------------------------
def test_strimzi_kafka_and_node_pool(case: tuple[Any, list[dict[str, Any]]]) -> None:
    _, docs = case
    (kafka,) = of_kind(docs, "Kafka")
    (pool,) = of_kind(docs, "KafkaNodePool")
    assert kafka["apiVersion"] == pool["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    spec = kafka["spec"]["kafka"]
    assert "zookeeper" not in kafka["spec"] and spec["version"]
    (listener,) = spec["listeners"]
    assert {"name", "port", "type", "tls"} <= set(listener)
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert spec["authorization"]["type"] == "simple"
    assert spec["config"]["default.replication.factor"] == 3 and spec["config"]["min.insync.replicas"] == 2
    assert spec["config"]["auto.create.topics.enable"] is False
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert set(pool["spec"]["roles"]) == {"controller", "broker"} and pool["spec"]["replicas"] >= 3
    assert pool["spec"]["storage"]["type"] in {"jbod", "persistent-claim", "ephemeral"}
    # the Kafka exporter gives kafka_consumergroup_lag (the Grafana lag panel and the lag alert)
    assert kafka["spec"]["kafkaExporter"]["groupRegex"] and kafka["spec"]["kafkaExporter"]["topicRegex"]


def test_kafka_topics_are_the_registrys(case: tuple[Any, list[dict[str, Any]]]) -> None:
    values, docs = case
    (kafka,) = of_kind(docs, "Kafka")
    records = [RegionRecord(id=r["id"], names=RegionNames(**r["names"]), partitions=r.get("partitions", 4),
                            retention_days=r.get("retentionDays", 90)) for r in regions_of(values)]
    specs = national_specs() + [s for r in records for s in region_specs(r)]
    wanted = {s.name: (s.partitions, 3, {**s.configs, "min.insync.replicas": "2"}) for s in specs}
    got = {}
    for topic in of_kind(docs, "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        spec = topic["spec"]
        got[spec["topicName"]] = (spec["partitions"], spec["replicas"], spec["config"])
    assert got == wanted


def test_cloudnativepg_cluster(case: tuple[Any, list[dict[str, Any]]]) -> None:
    _, docs = case
    (cluster,) = of_kind(docs, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] >= 1 and spec["storage"]["size"]
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == {s.name for s in SERVICES}
    for name, role in roles.items():
        assert role["login"] is True and role["superuser"] is False
        assert role["passwordSecret"]["name"].endswith(name)
    sql = spec["bootstrap"]["initdb"]["postInitApplicationSQL"]
    for service in SERVICES:  # each service owns its schema
        assert f"CREATE SCHEMA {service.name} AUTHORIZATION {service.name}" in sql


def test_without_managed_topics_the_job_creates_them_replicated(render: Render) -> None:
    docs = render(THREE_REGIONS, "kafka.manageTopics=false")
    assert not of_kind(docs, "KafkaTopic")
    (job,) = of_kind(docs, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[:2] == ["regions", "apply"] and "--no-grants" in args and "--no-topics" not in args
    assert args[args.index("--replication-factor") + 1] == "3" and args[args.index("--min-insync-replicas") + 1] == "2"
    (with_topics,) = of_kind(render(THREE_REGIONS), "Job")
    (container,) = with_topics["spec"]["template"]["spec"]["containers"]
    assert {"--no-grants", "--no-topics"} <= set(container["args"])
    # the image has no Kafka admin program: no grants from a Job, the KafkaUsers hold them
    assert "initContainers" not in with_topics["spec"]["template"]["spec"]


def test_the_regions_job_publishes_the_values_regions(case: tuple[Any, list[dict[str, Any]]]) -> None:
    import tomllib

    values, docs = case
    config_map = next(c for c in of_kind(docs, "ConfigMap") if "regions.toml" in c["data"])
    parsed = tomllib.loads(config_map["data"]["regions.toml"])["region"]
    records = [RegionRecord.model_validate(r) for r in parsed]
    assert [r.id for r in records] == [r["id"] for r in regions_of(values)]
    assert [r.partitions for r in records] == [r.get("partitions", 4) for r in regions_of(values)]
