"""Every route of every service declares its policy: the services' OpenAPI documents are walked (the
apps are built from services/registry.py, nothing runs) and each operation must name one of the
policies of estafette/runtime/auth.py as `x-policy`; routes that take credentials must name the
declared `bearer` security scheme. A new route without a policy fails here, listed by name."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from services.registry import SERVICES

POLICIES = {"public", "organiser", "figures", "admin", "link"}
#: Link routes take their capability from the token in the path, not from a credential.
WITHOUT_CREDENTIALS = {"link"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@cache
def openapi(service: str) -> dict[str, Any]:
    spec = next(s for s in SERVICES if s.name == service)
    return spec.create_app().http_api.openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, item in doc.get("paths", {}).items()
            for method, op in item.items() if method in METHODS]


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_every_operation_declares_one_policy(service):
    found = operations(openapi(service))
    assert found, f"{service} has no HTTP operations in its OpenAPI"
    missing = [route for route, op in found if op.get("x-policy") not in POLICIES]
    assert not missing, f"{service}: {len(missing)} of {len(found)} routes without a policy " \
                        f"(x-policy one of {sorted(POLICIES)}): " + "; ".join(missing)


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_the_bearer_scheme_is_declared_and_used_by_every_route_that_takes_credentials(service):
    doc = openapi(service)
    schemes = doc.get("components", {}).get("securitySchemes", {})
    assert schemes.get("bearer", {}).get("scheme") == "bearer", f"{service} declares no bearer security scheme"
    without = [route for route, op in operations(doc)
               if op.get("x-policy") in POLICIES - WITHOUT_CREDENTIALS and {"bearer": []} not in op.get("security", [])]
    assert not without, f"{service}: routes with a credential policy but no bearer security: " + "; ".join(without)
