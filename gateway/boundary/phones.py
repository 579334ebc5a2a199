"""Phone number validity from libphonenumber's metadata, without its parser.

``phonenumbers.parse`` plus ``is_valid_number`` costs ~100 us per candidate tried in ten
regions; a number in an entity-dense prompt is one of many candidates. The same test (does the
national number match one of the region's number-type patterns: fixed line, mobile, toll
free, ...) on precompiled patterns costs a few microseconds. bench/detect.py measures it.
"""

from __future__ import annotations

import functools
import re

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

__all__ = ["compile_all", "valid_international", "valid_national"]

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
def _plan(region: str) -> tuple[re.Pattern[str], str] | None:
    """The region's valid national numbers as one pattern, and its trunk prefix ("0")."""
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


def compile_all() -> None:
    """Compile every region's patterns now (~0.3 s, once per process), not on a request."""
    for regions in COUNTRY_CODE_TO_REGION_CODE.values():
        for region in regions:
            _plan(region)


def _valid(region: str, number: str) -> bool:
    plan = _plan(region)
    return plan is not None and plan[0].fullmatch(number) is not None


def valid_national(digits: str, region: str, trunk_required: bool) -> bool:
    """``digits`` as dialled inside ``region`` (with its trunk prefix where one is used)."""
    plan = _plan(region)
    if plan is None:
        return False
    trunk = plan[1]
    if trunk and digits.startswith(trunk) and _valid(region, digits[len(trunk) :]):
        return True
    return not trunk_required and _valid(region, digits)


def valid_international(digits: str) -> bool:
    """``digits`` after "+" or "00": a country code, then a valid number of that country."""
    for length in (1, 2, 3):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length] or "0"))
        if regions:
            rest = digits[length:]
            return any(_valid(r, rest) or _valid(r, rest.removeprefix("0")) for r in regions)
    return False
