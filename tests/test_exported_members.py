"""Every module's ``__all__`` names things that exist, and the package exports its API."""

from __future__ import annotations

import importlib
import pkgutil

import gateway


def test_all_names_exist() -> None:
    for info in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"


def test_package_api() -> None:
    assert set(gateway.__all__) == {
        "GatewayConfig",
        "GatewayError",
        "Reason",
        "__version__",
        "create_app",
        "load_config",
    }
