"""Reading the policy history: a version by its hash or a prefix of it, a readable diff of
two versions, the timeline of loads, promotions and rollbacks (``gateway policy history``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.audit.history import PolicyChange, PolicyVersion

__all__ = ["Entry", "UnknownVersion", "find_version", "text_diff", "timeline"]


class UnknownVersion(LookupError):
    """No stored version matches, or more than one does (the message says which)."""


def find_version(versions: Sequence[PolicyVersion], wanted: str) -> PolicyVersion:
    """The version whose hash is ``wanted`` or starts with it; ``sha256:`` may be left out."""
    key = wanted if wanted.startswith("sha256:") else f"sha256:{wanted}"
    found = [v for v in versions if v.version.startswith(key)]
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(v.version for v in versions) or "none recorded"
        raise UnknownVersion(f"no version {wanted} (known: {known})")
    raise UnknownVersion(
        f"{wanted} is ambiguous: {', '.join(v.version for v in found)}; give more of it"
    )


def text_diff(old: PolicyVersion, new: PolicyVersion) -> str:
    """A unified diff of the two texts, each side labelled with its version and file."""
    lines = difflib.unified_diff(
        old.text.splitlines(keepends=True),
        new.text.splitlines(keepends=True),
        fromfile=f"{old.workflow} {old.version} ({old.source})",
        tofile=f"{new.workflow} {new.version} ({new.source})",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline: a version first loaded, or a promotion / rollback."""

    at: float
    what: str  # loaded | promote | rollback
    version: str
    detail: str


def timeline(versions: Sequence[PolicyVersion], changes: Sequence[PolicyChange]) -> list[Entry]:
    """Loads and changes in time order."""
    out = [
        Entry(v.loaded_at, "loaded", v.version, f"{v.source}  owner {v.owner}") for v in versions
    ]
    for c in changes:
        before = f"from {c.from_version}" if c.from_version else "from nothing"
        out.append(Entry(c.at, c.action, c.to_version, f"{before}  by {c.by}: {c.reason}"))
    return sorted(out, key=lambda e: (e.at, e.what != "loaded"))
