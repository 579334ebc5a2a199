"""deploy/k8s: every object of the base and of each overlay, rendered as ``kubectl apply -k``
would, is valid against the Kubernetes schemas (kubernetes-validate, strict: no unknown
field), and the deployment keeps the promises docs/operations.md makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import load_config
from tests.deploy.kustomize import render

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
ROOT = K8S.parents[1]
KUBERNETES = "1.33"  # the oldest release whose schema the manifests must pass
OVERLAYS = [K8S / "base", *sorted((K8S / "overlays").iterdir())]
# Prometheus Operator's kinds: kubernetes-validate ships no schema for them (checked below).
CRDS = {"ServiceMonitor", "PrometheusRule"}


def _by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        out.setdefault(obj["kind"], []).append(obj)
    return out


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_every_rendered_object_is_valid(folder: Path) -> None:
    objects = render(folder)
    assert len(objects) >= 10
    for obj in objects:
        if obj["kind"] in CRDS:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            assert set(obj["spec"]) <= {"selector", "endpoints", "groups"}
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    for secret in _by_kind(list(_examples()))["Secret"]:
        kubernetes_validate.validate(secret, KUBERNETES, strict=True)


def _examples() -> list[dict[str, Any]]:
    text = (K8S / "base" / "secret.example.yaml").read_text()
    return [o for o in yaml.safe_load_all(text) if o]


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_the_deployment_keeps_its_promises(folder: Path) -> None:
    kinds = _by_kind(render(folder))
    assert set(kinds) >= {
        "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job",
        "ConfigMap", "ServiceAccount", "ServiceMonitor", "PrometheusRule",
    }  # fmt: skip
    (deployment,) = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (gateway,) = pod["containers"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert gateway["resources"]["requests"]["cpu"]
    # Grace: the preStop pause plus the longest upstream deadline of any policy.
    policies = [yaml.safe_load(p.read_text()) for p in (ROOT / "policies").glob("*.yaml")]
    longest = max(p.get("upstream", {}).get("timeout_s", 0) for p in policies)
    assert longest > 0
    pause = gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= pause + longest
    # Workers: one per requested CPU.
    workers = int(gateway["args"][gateway["args"].index("--workers") + 1])
    assert workers == int(gateway["resources"]["requests"]["cpu"])
    # Config and policies mounted as whole folders: ConfigMap updates reach running pods.
    mounts = {m["name"]: m for m in gateway["volumeMounts"]}
    assert all("subPath" not in m for m in mounts.values())
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["policies"]["configMap"]["name"] == "gateway-policies"
    writable = {m["mountPath"] for m in mounts.values() if not m.get("readOnly")}
    assert writable == {"/var/lib/gateway", "/tmp"}
    (job,) = kinds["Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == gateway["image"]


def test_the_configuration_the_pods_mount_loads(tmp_path: Path) -> None:
    """gateway.yaml of the ConfigMap, with the pod's environment; its policies are the
    repository's, file for file."""
    env = {"REDIS_URL": "redis://r:6379/0", "AUDIT_DATABASE_URL": "postgresql://p/g",
           "GATEWAY_STATE_DIR": "/var/lib/gateway"}  # fmt: skip
    config = load_config(K8S / "base" / "gateway.yaml", env)
    assert config.policies_dir == "/etc/gateway/policies"
    assert config.audit.spool_dir == "/var/lib/gateway/audit-spool"
    for policy in (K8S / "base" / "policies").glob("*.yaml"):
        assert policy.read_text() == (ROOT / "policies" / policy.name).read_text()
    assert {p.name for p in (K8S / "base" / "policies").glob("*.yaml")} == {
        p.name for p in (ROOT / "policies").glob("*.yaml")
    }


def test_the_prometheus_rule_holds_the_shipped_alerts() -> None:
    (rule,) = _by_kind(render(K8S / "base"))["PrometheusRule"]
    shipped = yaml.safe_load((ROOT / "deploy" / "observability" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]
    assert sum(len(g["rules"]) for g in shipped["groups"]) >= 1
