"""YAML files validated into pydantic models, with errors that point at file:line.

Operators edit these files by hand, so every problem in a file is reported at once, each with
the line it is on and, for a misspelt key, the key that was probably meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

__all__ = ["ConfigError", "Problem", "load_model"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in one file, located for a human."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a set of files; the message lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_model(
    path: Path, model: type[M], transform: Callable[[Any], Any] | None = None
) -> tuple[M, Any]:
    """Parse ``path`` and validate it as ``model``; raise ConfigError naming every problem.

    Returns the model and the raw parsed document (with line information) for callers that
    report further, semantic problems at a line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, f"cannot read file: {exc.strerror}")]) from exc
    try:
        doc = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(str(path), line, f"invalid YAML: {problem}")]) from exc
    data = transform(doc) if transform else doc
    try:
        return model.model_validate(data if data is not None else {}), doc
    except ValidationError as exc:
        problems = [
            Problem(str(path), line_of(doc, err["loc"]), _describe(model, err))
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError(problems) from None


def line_of(doc: Any, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the deepest node of ``loc`` that exists in ``doc``."""
    line, node = 1, doc
    for key in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(key, int) and isinstance(node, list):
                if lc is not None:
                    line = lc.item(key)[0] + 1
                node = node[key]
            elif isinstance(node, dict) and key in node:
                if lc is not None:
                    line = lc.key(key)[0] + 1
                node = node[key]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line


def _describe(model: type[BaseModel], err: Any) -> str:
    loc: tuple[int | str, ...] = err["loc"]
    where = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"{where}: unknown key{suggestion} (expected one of: {', '.join(sorted(known))})"
    return f"{where}: {err['msg']}"


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the nested model at ``loc`` (list indexes and dict keys are skipped)."""
    current: Any = model
    for key in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(key))
        if field is None:
            continue  # a list index or a mapping key: stay on the item model
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``list[M]``, ``dict[str, M]``, ``M | None`` and the like."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
