"""``/admin/...``: one guard in front of every route; only ``auth.admin_role`` opens it."""

from __future__ import annotations

import time

import httpx2
import pytest

from tests.auth.conftest import ADMIN_ROLE, POLICIES, AuthGateway
from tests.conftest import Gateway
from tests.support.clients import TLS
from tests.support.server import new_key
from tests.support.tokens import Idp


def _get(gw: Gateway, path: str, credential: str | None) -> httpx2.Response:
    headers = {"authorization": f"Bearer {credential}"} if credential else {}
    return httpx2.get(f"{gw.url}{path}", headers=headers, timeout=10, verify=TLS)


def test_admin_key_lists_the_loaded_policies(jwt_gateway: AuthGateway) -> None:
    response = _get(jwt_gateway, "/admin/policies", jwt_gateway.admin_key)
    assert response.status_code == 200
    listed = response.json()["policies"]
    assert [p["workflow"] for p in listed] == sorted(p["workflow"] for p in POLICIES)
    first = listed[0]
    assert first["version"].startswith("sha256:")
    assert first["path"] == f"{first['workflow']}.yaml"  # never the host's absolute path
    assert first["owner"] == f"{first['workflow']}@example.com"


def test_admin_role_in_a_jwt_opens_it(jwt_gateway: AuthGateway, idp: Idp) -> None:
    token = idp.token(realm_access={"roles": [ADMIN_ROLE]})
    assert _get(jwt_gateway, "/admin/policies", token).status_code == 200


@pytest.mark.parametrize("roles", [["sales"], ["admin"], ["Gw-Admin"], []])
def test_other_roles_are_refused(jwt_gateway: AuthGateway, idp: Idp, roles: list[str]) -> None:
    """The default name ``admin`` means nothing once ``admin_role`` is renamed; case matters."""
    response = _get(jwt_gateway, "/admin/policies", idp.token(realm_access={"roles": roles}))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "access.admin_required"
    assert response.headers["x-gateway-decision"] == "deny; reason=access.admin_required"


def test_workflow_keys_are_refused(jwt_gateway: AuthGateway) -> None:
    response = _get(jwt_gateway, "/admin/policies", jwt_gateway.sales_key)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("credential", "code"), [(None, "auth.missing_key"), ("gwk_nope", "auth.invalid_key"),
                             ("not.a.jwt", "auth.malformed")],
)  # fmt: skip
def test_unauthenticated_is_401_with_a_challenge(
    jwt_gateway: AuthGateway, credential: str | None, code: str
) -> None:
    response = _get(jwt_gateway, "/admin/policies", credential)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["www-authenticate"].startswith('Bearer realm="llm-gateway"')


def test_unknown_admin_routes_are_guarded_too(jwt_gateway: AuthGateway) -> None:
    """Without the role, an unknown admin path looks like any other: the table is not probed."""
    assert _get(jwt_gateway, "/admin/secrets", None).status_code == 401
    assert _get(jwt_gateway, "/admin/secrets", jwt_gateway.sales_key).status_code == 403
    response = _get(jwt_gateway, "/admin/secrets/deeper", jwt_gateway.admin_key)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request.unknown_route"


def test_the_default_admin_role_is_admin(gateway: Gateway) -> None:
    assert _get(gateway, "/admin/policies", gateway.ops_key).status_code == 403
    key = new_key(gateway.config_dir / "keys.yaml", "root", ["admin"])
    deadline = time.monotonic() + 3
    while (status := _get(gateway, "/admin/policies", key).status_code) == 401:
        assert time.monotonic() < deadline, "new key not picked up"
        time.sleep(0.1)
    assert status == 200
