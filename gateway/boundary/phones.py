"""Phone number validity from libphonenumber's metadata, without its parser.

``phonenumbers.parse`` plus ``is_valid_number`` costs ~100 us per candidate tried in ten
regions; a number in an entity-dense prompt is one of many candidates. The same test (does the
national number match one of the region's number-type patterns: fixed line, mobile, toll
free, ...) on precompiled patterns costs a few microseconds. bench/detect.py measures it.

Compiling every region's patterns costs ~0.15 s of CPU, too much for start-up (issue 22:
ready within a second): a policy that detects phone numbers asks for them (``compile_later``)
and the serving gateway compiles them once it is ready, one pattern per turn of its event
loop (``warm_up``); a number met before then compiles what it needs itself.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping

__all__ = ["NationalNumbers", "compile_later", "valid_international", "warm_up"]

_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


@functools.cache
def _regions() -> Mapping[int, tuple[str, ...]]:
    """libphonenumber's regions by country code: phonenumbers (58 modules, ~25 ms) is loaded
    by the first number validated or by ``warm_up``, not at start-up."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return COUNTRY_CODE_TO_REGION_CODE


@functools.cache
def _plan(region: str) -> tuple[re.Pattern[str], str] | None:
    """The region's valid national numbers as one pattern, and its trunk prefix ("0")."""
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return None
    patterns = [
        desc.national_number_pattern
        for desc in (getattr(meta, kind) for kind in _TYPES)
        if desc is not None and desc.national_number_pattern
    ]
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns)), meta.national_prefix or ""


# (trunk prefix, union of the national numbers dialled with it), union of those dialled as is
_Unions = tuple[list[tuple[str, re.Pattern[str]]], re.Pattern[str] | None]
_NATIONAL: list[NationalNumbers] = []  # every instance, for ``warm_up``
_wanted = False
_PAUSE_S = 0.005  # between two compiles: the warm-up takes a tenth of the loop at most


def compile_later() -> None:
    """A policy detects phone numbers: ``warm_up`` is to compile every pattern."""
    global _wanted
    _wanted = True


async def warm_up() -> None:
    """Every pattern phone validation may use, compiled one at a time with a pause between,
    so a request waits for one compile at most (a region's ~0.5 ms; the first, which imports
    phonenumbers, and a national union 10-25 ms) and the warm-up takes a small share of the
    loop while requests come in (without the pause the first requests took 3x as long,
    docs/performance.md); the national numbers first, as most candidates are. Nothing if no
    policy asked (``compile_later``)."""
    if not _wanted:
        return
    for numbers in _NATIONAL:
        for region in numbers.regions:
            _plan(region)
            await asyncio.sleep(_PAUSE_S)
        numbers.compile()
        await asyncio.sleep(_PAUSE_S)
    for regions in _regions().values():
        for region in regions:
            _plan(region)
            await asyncio.sleep(_PAUSE_S)


def _valid(region: str, number: str) -> bool:
    plan = _plan(region)
    return plan is not None and plan[0].fullmatch(number) is not None


class NationalNumbers:
    """Numbers as dialled inside any of ``regions``: one union pattern per trunk prefix.

    With ``trunk_required`` ("020 7946 0321"), a region with a trunk prefix only accepts
    numbers dialled with it; a region without one (Italy keeps its "0") accepts them as they
    are. One ``fullmatch`` of a union costs less than one per region.
    """

    def __init__(self, regions: tuple[str, ...], trunk_required: bool) -> None:
        self.regions = regions
        self._trunk_required = trunk_required
        self._unions: _Unions | None = None  # compiled on first use or by ``warm_up``
        _NATIONAL.append(self)

    def compile(self) -> _Unions:
        if self._unions is None:
            by_trunk: dict[str, list[str]] = {}
            as_is: list[str] = []
            for region in self.regions:
                plan = _plan(region)
                if plan is None:
                    continue
                pattern, trunk = plan
                if trunk:
                    by_trunk.setdefault(trunk, []).append(pattern.pattern)
                if not trunk or not self._trunk_required:
                    as_is.append(pattern.pattern)
            stripped = [(t, _union(patterns)) for t, patterns in by_trunk.items()]
            self._unions = stripped, _union(as_is) if as_is else None
        return self._unions

    def valid(self, digits: str) -> bool:
        stripped, as_is = self._unions or self.compile()
        for trunk, pattern in stripped:
            if digits.startswith(trunk) and pattern.fullmatch(digits[len(trunk) :]):
                return True
        return as_is is not None and as_is.fullmatch(digits) is not None


def _union(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def valid_international(digits: str) -> bool:
    """``digits`` after "+" or "00": a country code, then a valid number of that country."""
    for length in (1, 2, 3):
        regions = _regions().get(int(digits[:length] or "0"))
        if regions:
            rest = digits[length:]
            return any(_valid(r, rest) or _valid(r, rest.removeprefix("0")) for r in regions)
    return False
