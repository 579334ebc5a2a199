"""``auth.jwt``, ``auth.admin_role`` and policy ``access`` mistakes are caught at start-up,
at file:line, before a single token is judged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.app import create_app
from gateway.config import load_config
from gateway.policy import load_policies
from gateway.yamlsource import ConfigError
from tests.auth.conftest import jwt_settings
from tests.support.tokens import SECRET, Idp, public_pem

BASE: dict[str, Any] = {
    "providers": {"demo": {"type": "mock"}},
    "models": {"m": {"provider": "demo", "upstream_model": "m"}},
}


def _config(tmp_path: Path, jwt: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({**BASE, "auth": {"jwt": jwt}}, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"algorithms": ["RS256", "none"]}, "auth.jwt.algorithms: Value error, 'none' is never accepted"),
        ({"algorithms": ["NONE"]}, "'none' is never accepted"),
        ({"algorithms": ["RS257"]}, "unknown algorithm 'RS257'"),
        ({"algorithms": []}, "auth.jwt.algorithms: List should have at least 1 item"),
        ({"algorithms": ["HS256"], "secret_env": None}, "HS256 need secret_env"),
        ({"algorithms": ["RS256"], "public_key_files": [], "jwks_file": None, "secret_env": None},
         "RS256 need public_key_files, jwks_file or jwks_url"),
        ({"algorithms": ["RS256"]}, "secret_env is set but no HS* algorithm is allowed"),
        ({"jwks_url": "file:///etc/passwd"}, "jwks_url must be an http(s) URL"),
        ({"roles_claim": "realm_access..roles"}, "auth.jwt.roles_claim: String should match"),
        ({"audiance": "x"}, "auth.jwt.audiance: unknown key; did you mean 'audience'?"),
        ({"issuer": None}, "auth.jwt.issuer: Field required"),
        ({"leeway_s": 3600}, "auth.jwt.leeway_s: Input should be less than or equal to 300"),
    ],
)  # fmt: skip
def test_jwt_config_errors(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    path = _config(tmp_path, jwt_settings(**change))
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"{path}:")


def _start(tmp_path: Path, idp: Idp, env: dict[str, str], **change: Any) -> None:
    idp.write_keys(tmp_path / "idp")
    (tmp_path / "policies").mkdir(exist_ok=True)
    create_app(load_config(_config(tmp_path, jwt_settings(**change)), env), env)


def test_keys_are_checked_at_start(tmp_path: Path, idp: Idp) -> None:
    _start(tmp_path, idp, {"JWT_SECRET": SECRET})  # the good configuration starts
    with pytest.raises(ConfigError, match="environment variable JWT_SECRET is not set"):
        _start(tmp_path, idp, {})
    with pytest.raises(ConfigError, match="the secret has 5 bytes, HS256 need 32"):
        _start(tmp_path, idp, {"JWT_SECRET": "short"})
    weak = tmp_path / "idp" / "weak.pem"
    weak.write_bytes(public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(ConfigError, match="RSA key of 1024 bits"):
        _start(tmp_path, idp, {"JWT_SECRET": SECRET}, public_key_files=["idp/weak.pem"])
    (tmp_path / "idp" / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        _start(tmp_path, idp, {"JWT_SECRET": SECRET}, public_key_files=["idp/junk.pem"])
    with pytest.raises(ConfigError, match="no allowed algorithm fits this"):
        _start(tmp_path, idp, {"JWT_SECRET": SECRET}, algorithms=["ES256", "HS256"], jwks_file=None)
    (tmp_path / "idp" / "empty.json").write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    with pytest.raises(ConfigError, match="no usable signing key"):
        _start(tmp_path, idp, {"JWT_SECRET": SECRET}, jwks_file="idp/empty.json")


POLICY = "workflow: w\nowner: o\naccess:\n  roles: [r]\n  models: [m]\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("  on_exceed: truncate\n", "w.yaml:6: access.on_exceed: Input should be 'clamp' or 'reject'"),
        ("  endpoints: [chat, audio_speech]\n", "w.yaml:6: access.endpoints.1: Input should be"),
        ("  allowtools: false\n", "w.yaml:6: access.allowtools: unknown key; did you mean 'allow_tools'?"),
        ("  subjects: []\n", "w.yaml:6: access.subjects: List should have at least 1 item"),
    ],
)  # fmt: skip
def test_access_policy_errors(tmp_path: Path, extra: str, expected: str) -> None:
    (tmp_path / "w.yaml").write_text(POLICY + extra)
    with pytest.raises(ConfigError) as caught:
        load_policies(tmp_path, ["m"])
    assert expected in str(caught.value)
