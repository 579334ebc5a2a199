"""Hot reload: the policies folder is re-read on change and swapped in whole, or not at all.

The folder is polled once a second (``os.scandir``: name, size, mtime and inode of each file,
about 20 µs for a dozen files, measured in bench/policy_live.py) rather than watched with
inotify: it works the same on every platform and on mounted ConfigMaps, whose updates are
symlink swaps that inotify watchers often miss. ``POST /admin/policies/reload`` reloads at
once. Loading (YAML, validation, detectors) runs in a worker thread, so the event loop keeps
serving; the swap itself is one assignment in the loop.

Every version loaded (live and candidate, at start and on each reload) is handed to the
``record`` hook with its file's text (gateway/audit/history.py keeps them). The text is read
after the load and kept only if the folder's fingerprint did not move meanwhile, so a version
is never stored with the text of a later edit; a change caught that way is reloaded, and
recorded, on the next poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.boundary.ner import NerModel
from gateway.policy.candidates import as_shadow, load_candidates
from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies
from gateway.policy.registry import PolicyRegistry, PolicySet, ReloadError
from gateway.yamlsource import ConfigError

__all__ = [
    "PolicyReloader",
    "PolicyVersion",
    "Recorder",
    "ReloadResult",
    "folder_fingerprint",
    "load_live_set",
    "start_registry",
]

log = logging.getLogger("gateway.policy")

Fingerprint = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """A policy version as loaded: its content hash, the file's text, the file relative to
    the policies folder (``W.yaml`` or ``W.candidate.yaml``), the owner, when."""

    workflow: str
    version: str
    text: str
    source: str
    owner: str
    loaded_at: float


# Told every version of each set loaded; it must not raise (the history logs its own errors).
Recorder = Callable[[Sequence[PolicyVersion]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: ``applied`` False means the last good set stayed live."""

    applied: bool
    current: PolicySet
    error: ReloadError | None


def load_live_set(
    directory: Path, known_models: Collection[str], ner: NerModel | None
) -> tuple[dict[str, CompiledPolicy], dict[str, CompiledPolicy] | ConfigError]:
    """Live policies (ConfigError raised) and candidates (a ConfigError returned: a broken
    candidate never stops the live set)."""
    live = load_policies(directory, known_models, ner)
    try:
        candidates = load_candidates(directory, live, known_models, ner)
    except ConfigError as exc:
        return live, exc
    return live, {name: as_shadow(c, live.get(name)) for name, c in candidates.items()}


def folder_fingerprint(directory: Path) -> Fingerprint:
    """Name, size, mtime and inode of every policy file: an editor's rewrite or a
    rename-over changes at least one of them."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return ()
    out = []
    for entry in entries:
        if entry.name.endswith((".yaml", ".yml")):
            try:
                st = entry.stat()
            except OSError:  # removed between the listing and the stat
                continue
            out.append((entry.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sorted(out))


def shown(path: str | Path, directory: Path) -> str:
    """``path`` as the admin API and ``/readyz`` show it: relative to the policies folder, so
    no absolute path of the host leaves the process."""
    try:
        return str(Path(path).relative_to(directory))
    except ValueError:
        return Path(path).name


def problems_in(error: ConfigError, directory: Path) -> tuple[str, ...]:
    """``file:line: message`` for each problem, the file named relative to ``directory``."""
    return tuple(f"{shown(p.file, directory)}:{p.line}: {p.message}" for p in error.problems)


def start_registry(
    directory: Path, known_models: Collection[str], ner: NerModel | None
) -> PolicyRegistry:
    """The registry at start-up: a broken live policy stops the gateway (ConfigError), a
    broken candidate is only reported (``/readyz``, the log)."""
    live, candidates = load_live_set(directory, known_models, ner)
    if isinstance(candidates, ConfigError):
        log.error("candidate policies refused:\n%s", candidates)
        registry = PolicyRegistry(live)
        registry.last_error = ReloadError(time.time(), problems_in(candidates, directory), True)
        return registry
    return PolicyRegistry(live, candidates)


class PolicyReloader:
    """Reloads ``directory`` into ``registry`` on change or on demand, one reload at a time."""

    def __init__(
        self,
        registry: PolicyRegistry,
        directory: Path,
        known_models: Collection[str],
        ner: NerModel | None = None,
        interval_s: float = 1.0,
        seen: Fingerprint | None = None,
        record: Recorder | None = None,
    ) -> None:
        """``seen``: the folder's fingerprint from before the registry was loaded, so a
        change made while it loaded is reloaded on the first poll. ``record``: told the
        versions of the set at start (the first ``watch`` step) and of every reload."""
        self._registry = registry
        self._directory = directory
        self._models = known_models
        self._ner = ner
        self._interval = interval_s
        self._lock = asyncio.Lock()
        self._seen = self.fingerprint() if seen is None else seen
        self._record = record

    def fingerprint(self) -> Fingerprint:
        return folder_fingerprint(self._directory)

    async def reload(self, why: str) -> ReloadResult:
        """Load and validate every policy together; swap them in, or keep the last good set;
        then record the versions of the set taken."""
        result, seen = await self._reload(why)
        if result.applied:
            await self._recorded(result.current, seen)
        return result

    async def _reload(self, why: str) -> tuple[ReloadResult, Fingerprint]:
        async with self._lock:
            self._seen = seen = self.fingerprint()
            try:
                live, candidates = await asyncio.to_thread(
                    load_live_set, self._directory, self._models, self._ner
                )
            except (ConfigError, OSError) as exc:  # OSError: the folder itself unreadable
                problems = (
                    problems_in(exc, self._directory)
                    if isinstance(exc, ConfigError)
                    else (f"policies folder unreadable: {exc}",)
                )
                error = self._registry.last_error = ReloadError(time.time(), problems)
                log.error(
                    "policy reload (%s) refused, %s stays live:\n%s",
                    why,
                    self._registry.current.version,
                    exc,
                )
                return ReloadResult(False, self._registry.current, error), seen
            broken: ReloadError | None = None
            if isinstance(candidates, ConfigError):
                broken = ReloadError(time.time(), problems_in(candidates, self._directory), True)
                log.error("policy reload (%s): candidates refused:\n%s", why, candidates)
                current = self._registry.replace(live)  # the last good candidates stay
            else:
                current = self._registry.replace(live, candidates)
            self._registry.last_error = broken
            log.info(
                "policy reload (%s): %s live (generation %d): %s",
                why,
                current.version,
                current.generation,
                ", ".join(f"{n} {p.version}" for n, p in sorted(current.policies.items())),
            )
            return ReloadResult(True, current, broken), seen

    async def _recorded(self, current: PolicySet, seen: Fingerprint) -> None:
        if self._record is None:
            return
        loaded = await asyncio.to_thread(self._versions, current, seen)
        if loaded is None:
            log.info("policy history: the folder changed while it loaded; recorded next time")
        elif loaded:
            await self._record(loaded)

    def _versions(self, current: PolicySet, seen: Fingerprint) -> list[PolicyVersion] | None:
        """The versions of ``current`` with their files' texts, or None when a file may have
        changed since ``seen`` (its text might not be the version loaded)."""
        out: list[PolicyVersion] = []
        for policy in (*current.policies.values(), *current.candidates.values()):
            try:
                text = Path(policy.path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return None  # removed or rewritten since: the next reload records it
            source = shown(policy.path, self._directory)
            out.append(
                PolicyVersion(
                    policy.name, policy.version, text, source, policy.source.owner,
                    current.loaded_at,
                )
            )  # fmt: skip
        return out if self.fingerprint() == seen else None

    async def watch(self) -> None:
        """Record the set loaded at start, then poll the folder until cancelled; reload
        when a file appears, changes or goes (a reload refuses what it cannot load, so
        nothing it raises is expected here)."""
        await self._recorded(self._registry.current, self._seen)
        while True:
            await asyncio.sleep(self._interval)
            if self.fingerprint() != self._seen:
                await self.reload("file change")
