"""What a translator does with a field the target API cannot carry: it refuses the request
with ``translate.unsupported`` (400, naming the field), so no content is dropped unnoticed."""

from __future__ import annotations

from typing import Any

from gateway import errors
from gateway.errors import GatewayError

__all__ = ["check_keys", "unsupported"]


def unsupported(what: str, target: str) -> GatewayError:
    return GatewayError(
        errors.TRANSLATE_UNSUPPORTED,
        f"{what} cannot be sent to a model served through the {target} API.",
    )


def check_keys(
    obj: dict[str, Any], allowed: frozenset[str] | set[str], where: str, target: str
) -> None:
    """Refuse the first key of ``obj`` outside ``allowed`` that holds a value."""
    for key, value in obj.items():
        if key not in allowed and value is not None:
            raise unsupported(f"'{where}{key}'", target)
