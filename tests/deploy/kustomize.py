"""A small renderer of the kustomize features deploy/k8s uses, so the tests can validate the
objects ``kubectl apply -k`` would create without kustomize installed: resources (files and
folders), ``labels``, ``namespace``, ``images``, ``configMapGenerator`` with files (no hash
suffix) and strategic-merge ``patches`` (lists of named items merged by name). Anything else
in a kustomization fails the render, so the manifests cannot outgrow what is checked."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN = {
    "apiVersion", "kind", "resources", "labels", "namespace", "images", "patches",
    "generatorOptions", "configMapGenerator",
}  # fmt: skip

Obj = dict[str, Any]


def render(folder: Path) -> list[Obj]:
    spec: Obj = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN
    assert not unknown, f"{folder}: kustomization keys this renderer does not know: {unknown}"
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        if path.is_dir():
            objects += render(path)
        else:
            objects += [o for o in yaml.safe_load_all(path.read_text()) if o]
    options = spec.get("generatorOptions", {})
    for generator in spec.get("configMapGenerator", []):
        assert options.get("disableNameSuffixHash"), "hash suffixes are not rendered"
        data = {}
        for file in generator["files"]:
            key, _, source = file.rpartition("=") if "=" in file else ("", "", file)
            data[key or Path(source).name] = (folder / source).read_text()
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": generator["name"]}, "data": data}
        )  # fmt: skip
    for patch in spec.get("patches", []):
        change = yaml.safe_load((folder / patch["path"]).read_text())
        target = [o for o in objects if _id(o) == _id(change)]
        assert len(target) == 1, f"patch {patch['path']} matches {len(target)} objects"
        merged = _merge(target[0], change)
        objects[objects.index(target[0])] = merged
    for obj in objects:
        for label in spec.get("labels", []):
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
        if "namespace" in spec:
            obj["metadata"]["namespace"] = spec["namespace"]
        for image in spec.get("images", []):
            _retag(obj, image)
    return objects


def _id(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        out = copy.deepcopy(base)
        for key, value in change.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    named = isinstance(base, list) and all(isinstance(i, dict) and "name" in i for i in base)
    if named and isinstance(change, list) and all("name" in i for i in change):
        out = copy.deepcopy(base)
        for item in change:
            match = [i for i, b in enumerate(out) if b["name"] == item["name"]]
            if match:
                out[match[0]] = _merge(out[match[0]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(change)


def _retag(node: Any, image: Obj) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str) and value.split(":")[0] == image["name"]:
                node[key] = f"{image.get('newName', image['name'])}:{image['newTag']}"
            else:
                _retag(value, image)
    elif isinstance(node, list):
        for item in node:
            _retag(item, image)
