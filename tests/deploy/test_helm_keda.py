"""KEDA's ScaledObjects and TriggerAuthentications and the Prometheus operator's ServiceMonitor,
validated by the published pydantic models of their CRDs (cloudcoil-models-keda,
cloudcoil-models-prometheus-operator). Those models ignore unknown fields, so each document must
also survive a round trip unchanged (a misspelt field would be dropped, and the test fails).
Also: one ScaledObject per consuming Deployment, on the consumer group the runtime names
(`<service>.<region>` for a regional instance, `<service>` for one serving every region)."""

from __future__ import annotations

from typing import Any

import pytest
from cloudcoil.models.keda.v1alpha1 import ScaledObject, TriggerAuthentication
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor
from pydantic import BaseModel

from services.registry import SERVICES

from .conftest import THREE_REGIONS, Render, of_kind
from .test_helm_chart import VALUES

MODELS: dict[str, type[BaseModel]] = {
    "ScaledObject": ScaledObject, "TriggerAuthentication": TriggerAuthentication, "ServiceMonitor": ServiceMonitor,
    "PrometheusRule": PrometheusRule,
}


def check_model(model: type[BaseModel], doc: dict[str, Any]) -> None:
    parsed = model.model_validate(doc)
    back = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert back == doc, f"{doc['kind']}/{doc['metadata']['name']}: fields the model does not know"


@pytest.mark.parametrize("name", list(VALUES))
def test_custom_resources_match_the_published_models(render: Render, name: str) -> None:
    docs = render(VALUES[name])
    checked = 0
    for kind, model in MODELS.items():
        for doc in of_kind(docs, kind):
            check_model(model, doc)
            checked += 1
    assert checked and {d["kind"] for d in docs} >= set(MODELS)


def test_the_model_check_rejects_an_unknown_field(render: Render) -> None:
    doc = of_kind(render(None), "ScaledObject")[0]
    bad = {**doc, "spec": {**doc["spec"], "maxReplicas": 3}}
    with pytest.raises(AssertionError):
        check_model(ScaledObject, bad)


def test_a_scaled_object_per_consuming_deployment_on_its_group(render: Render) -> None:
    docs = render(THREE_REGIONS)
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    auths = {a["metadata"]["name"] for a in of_kind(docs, "TriggerAuthentication")}
    consumers = {s.name for s in SERVICES if s.reads}
    scaled = {}
    for obj in of_kind(docs, "ScaledObject"):
        target = obj["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka" and trigger["authenticationRef"]["name"] in auths
        assert int(trigger["metadata"]["lagThreshold"]) > 0
        scaled[target["name"]] = trigger["metadata"]["consumerGroup"]
    for name, deployment in deployments.items():
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        if args[1] in consumers:
            assert scaled[name] == (f"{args[1]}.{args[3]}" if "--regions" in args else args[1])
    assert set(scaled) == {n for n, d in deployments.items()
                           if d["spec"]["template"]["spec"]["containers"][0]["args"][1] in consumers}


def test_service_monitor_scrapes_every_service(render: Render) -> None:
    docs = render(THREE_REGIONS)
    (monitor,) = of_kind(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == ["/metrics"]
    port = monitor["spec"]["endpoints"][0]["port"]
    for service in of_kind(docs, "Service"):
        assert selector.items() <= service["metadata"]["labels"].items()
        assert port in [p["name"] for p in service["spec"]["ports"]]


def test_the_prometheus_rule_carries_the_checked_alert_rules(render: Render) -> None:
    """One copy of the rules: the chart's files/alerts.yaml is a link to deploy/prometheus/alerts.yaml,
    which promtool checks (test_observability.py)."""
    import yaml

    from .conftest import CHART

    (rule,) = of_kind(render(None), "PrometheusRule")
    assert (CHART / "files" / "alerts.yaml").resolve() == (CHART.parents[1] / "prometheus" / "alerts.yaml").resolve()
    assert rule["spec"] == yaml.safe_load((CHART.parents[1] / "prometheus" / "alerts.yaml").read_text())
