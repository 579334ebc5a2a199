"""Pattern rules for IP addresses (v4, v6) and URLs (with a scheme, www., or a bare domain).

A bare domain counts only under a common TLD and not right after "@" (an e-mail address) or
inside a path, so ``main.py``, ``README.md`` and ``self.app`` are not URLs; four-part version
numbers after "version"/"build" are not IPv4 addresses.
"""

from __future__ import annotations

import ipaddress
import re

from gateway.boundary.rules import Hit, Rule

__all__ = ["NETWORK_RULES"]

# --- IP address: candidates by shape, validated by ipaddress ------------------------------

# Both are found from a separator (a fast literal search), then read outwards: a pattern that
# starts with a digit or a hex digit would be tried at every one of them in the text.
_IPV4_CORE = re.compile(r"\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?")
_DIGITS = frozenset("0123456789")
# The first pair of colons of a run, and the rest of the run: one match per run, however long
# (each of a run's matches would be judged alike: the check reads the whole run).
_IPV6_CORE = re.compile(r":[0-9a-f]{0,4}:[0-9a-f:]*+")
_HEX_COLON = frozenset("0123456789abcdef:")
_IPV6_LONGEST = 39  # eight groups of four hex digits and seven colons
_DOT_DIGIT = frozenset(f".{d}" for d in "0123456789")
_VERSION_BEFORE = re.compile(r"(?:version|build|release|\bver)\W{0,3}$", re.IGNORECASE)


def _ipv4(match: re.Match[str]) -> Hit | None:
    text, start, end = match.string, match.start(), match.end()
    while start > 0 and match.start() - start < 3 and text[start - 1] in _DIGITS:
        start -= 1
    if start == match.start():
        return None
    if start and (text[start - 1].isalnum() or text[start - 1] in "._"):
        return None
    if end < len(text) and (
        text[end].isalnum() or text[end] == "_" or text[end : end + 2] in _DOT_DIGIT
    ):
        return None
    try:
        ipaddress.IPv4Interface(text[start:end])
    except ValueError:
        return None
    # "appVersion 2.14.3.1": four-part version numbers have the shape of an address.
    if _VERSION_BEFORE.search(text, max(0, start - 12), start):
        return None
    return start, end, 0.7


def _ipv6(match: re.Match[str]) -> Hit | None:
    text, start, end = match.string, match.start(), match.end()
    # Walks stop past the longest address: a long run of hex digits and colons is no address,
    # and walking all of it from each of its matches would cost its length squared.
    low, high = max(0, end - _IPV6_LONGEST - 1), min(len(text), start + _IPV6_LONGEST + 1)
    while start > low and text[start - 1] in _HEX_COLON:
        start -= 1
    while end < high and text[end] in _HEX_COLON:
        end += 1
    if end - start > _IPV6_LONGEST:
        return None
    if start and (text[start - 1].isalnum() or text[start - 1] in "._"):
        return None
    if end < len(text) and (text[end].isalnum() or text[end] == "_"):
        return None
    try:
        ipaddress.IPv6Address(text[start:end])
    except ValueError:
        return None
    return start, end, 0.7


# --- URL: matched on the lower-cased text ---------------------------------------------------

_TRAILING = ".,;:!?)]}'\""
_SCHEME_URL = re.compile(r"""(?:https?|ftps?|sftp|wss?)://[^\s<>"'`{}|\\^]+""")
# No "app", "dev", "at", "in", "it", "is", "be", "no": "self.app", "df.at" and friends are code.
_TLDS = (
    "com|org|net|edu|gov|io|co|ai|info|biz|cloud|tech|online|shop|"
    "us|uk|de|fr|es|nl|eu|ca|au|ch|se|dk|fi|pl|ie|nz|br|mx|jp|cn|ru"
)
# Found from the TLD (a "." is a cheap place to start), then the labels are read backwards.
_TLD = re.compile(rf"\.(?:{_TLDS})(?![\w\-@]|\.\w)")
_LABEL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
# Without a scheme, a path stops at ":" so "registry.example.com/app:1.8.2" keeps its tag.
_DOMAIN_TAIL = re.compile(r"""(?::\d{2,5})?(?:[/?#][^\s<>"'`{}|\\^:]*)?""")


def _trimmed(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return end


def _scheme_url(match: re.Match[str]) -> Hit | None:
    start, text = match.start(), match.string
    if start and text[start - 1].isalnum():
        return None
    return start, _trimmed(text, start, match.end()), 0.7


def _domain(match: re.Match[str]) -> Hit | None:
    text, start = match.string, match.start()
    while start > 0 and text[start - 1] in _LABEL:
        start -= 1
    while start < match.start() and text[start] in ".-":
        start += 1
    if start == match.start() or ".." in text[start : match.start()]:
        return None
    before = text[start - 1] if start else " "
    if before.isalnum() or before in "@/\\:_":
        return None  # inside a word, an e-mail address, a path or a scheme URL
    tail = _DOMAIN_TAIL.match(text, match.end())
    return start, _trimmed(text, start, tail.end() if tail else match.end()), 0.55


NETWORK_RULES: tuple[Rule, ...] = (
    Rule("IP_ADDRESS", "ipv4", _IPV4_CORE, _ipv4, needles=(".",)),
    Rule("IP_ADDRESS", "ipv6", _IPV6_CORE, _ipv6, needles=(":",), rescan=False, on_lowered=True),
    Rule("URL", "url", _SCHEME_URL, _scheme_url, needles=("://",), on_lowered=True),
    Rule("URL", "domain", _TLD, _domain, needles=(".",), on_lowered=True),
)
