"""Sign-in with a JWT the gateway accepts: its roles claim opens the console, and the session
ends no later than the token."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.auth.conftest import jwt_settings
from tests.console.conftest import Console
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import Hook, start_review_gateway
from tests.support.tokens import Idp


def test_a_jwt_with_a_console_role_signs_in_until_it_expires(
    upstream: FakeUpstream, hook: Hook, tmp_path: Path
) -> None:
    idp = Idp()
    idp.write_keys(tmp_path / "idp")
    auth = {"api_keys_file": "keys.yaml",
            "jwt": jwt_settings(secret_env=None, algorithms=["RS256", "ES256", "EdDSA"])}  # fmt: skip
    gw = start_review_gateway(tmp_path, upstream, hook, extra={"auth": auth})
    try:
        exp = int(time.time()) + 120
        reviewer = idp.token(sub="jo", exp=exp, realm_access={"roles": ["reviewer"]})
        console = Console(gw.url, reviewer)
        try:
            assert console.status == 303
            max_age = int(re.search(r"Max-Age=(\d+)", console.cookie).group(1))  # type: ignore[union-attr]
            assert 0 < max_age <= 120  # the token's expiry, not console.session_minutes
            assert console.get("queue").status_code == 200
            assert console.get("keys").status_code == 403  # a reviewer, not an admin
        finally:
            console.close()
        for refused in (
            idp.token(sub="jo", realm_access={"roles": ["sales"]}),  # no console role
            idp.token(sub="jo", exp=int(time.time()) - 60, realm_access={"roles": ["admin"]}),
            idp.token(sub="jo", key=idp.rsa_other, realm_access={"roles": ["admin"]}),
        ):
            other = Console(gw.url, refused)
            assert other.status == 401
            assert other.cookie == ""
            other.close()
    finally:
        gw.server.stop()
