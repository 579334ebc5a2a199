"""SECRET rules: provider API keys, private keys, JWTs, passwords in URLs and assignments.

Each key format has a fixed prefix, so each rule carries it as a needle and runs only on text
that contains it. Assignment rules report the value, not the name (``password=`` stays).
"""

from __future__ import annotations

import re

from gateway.boundary.rules import Check, Hit, Rule

__all__ = ["PEM_BEGIN", "SECRET_RULES", "open_secret"]

_END = r"(?![\w-])"
# After a key's first character: it starts a token (the character before it is not a word
# character or "-"). Written after the first character so the engine still finds candidates
# by a literal search, and so a long run of "sk-sk-sk-..." is read once from its start,
# not again from each "sk-" inside it (which would cost the run's length squared).
_AT = r"(?<![\w-][\s\S])"


def _key(name: str, pattern: str, *needles: str, score: float = 0.95) -> Rule:
    # A pattern that starts with its literal prefix is found by a fast substring search; a
    # leading \b would make the regex engine try every position (10x slower), so the check
    # tests the word boundary instead.
    regex = re.compile(pattern)
    return Rule("SECRET", f"secret.{name}", regex, _at_word_start(score), needles=needles)


def _token(name: str, prefix: str, cls: str, low: int, high: int, *needles: str) -> Rule:
    """A key of ``prefix`` and ``low``-``high`` characters of ``cls``, also with one line
    break inside (pasted from a wrapped terminal, or split to slip past a scanner)."""
    body = rf"(?P<body>{cls}+(?:\r?\n{cls}+)?)"
    regex = re.compile(prefix + body + (r"\b" if cls.endswith("0-9]") else _END))

    def check(match: re.Match[str]) -> Hit | None:
        start = match.start()
        if start and (match.string[start - 1].isalnum() or match.string[start - 1] in "_-"):
            return None
        head, brk, tail = match.group("body").partition("\n")
        head = head.removesuffix("\r")
        if brk and low <= len(head) + len(tail) <= high and _key_like(tail):
            return start, match.end(), 0.95
        if low <= len(head) <= high:
            return start, match.start("body") + len(head), 0.95
        return None

    return Rule("SECRET", f"secret.{name}", regex, check, needles=needles)


def _key_like(tail: str) -> bool:
    # "...\nThanks" is prose after a key; a key's own characters have digits or inner capitals.
    return len(tail) >= 12 or any(c.isdigit() or c.isupper() for c in tail[1:])


def _at_word_start(score: float) -> Check:
    def check(match: re.Match[str]) -> Hit | None:
        start = match.start()
        if start and (match.string[start - 1].isalnum() or match.string[start - 1] in "_-"):
            return None
        return start, match.end(), score

    return check


# A value that is a placeholder, not a secret: "${DB_PASSWORD}", "<redacted>", "****", "null".
_PLACEHOLDER = re.compile(
    r"(?i)^(?:\$\{?[\w.-]+\}?|\{\{.*\}\}|<[^>]*>|\*+|x+|\.+|null|none|true|false|"
    r"changeme|password|secret|redacted|\[redacted\]|env\(.*\)|os\.environ.*)$"
)


# The body is read line by line (real or JSON-escaped line breaks, or long base64 runs after
# spaces where line breaks were flattened), so a key cut short does not run into the prose
# after it, and one that is complete ends at its END line.
_BREAK = r"(?:\r?\n|\\r\\n|\\n)[ \t]*"
_PEM = (
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    rf"(?:{_BREAK}(?:[A-Za-z0-9+/=]{{1,100}}(?=[ \t]*(?:\r|\n|\\[rn]|-----END|$))"
    r"|[A-Za-z-]+:[^\n\\]*)| [A-Za-z0-9+/=]{16,})*"
    rf"(?:(?:{_BREAK}| )-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?"
)


def _value_hit(match: re.Match[str], group: int | str, score: float) -> Hit | None:
    value = match.group(group)
    if len(value) < 4 or _PLACEHOLDER.match(value):
        return None
    return match.start(group), match.end(group), score


def _value(group: int, score: float) -> Check:
    return lambda match: _value_hit(match, group, score)


# Anchored on the name, which may only end in a key-ish suffix: "DB_PASSWORD=", "apiKey:",
# "secret_key =>", but not "password_policy: strong" or "max_tokens: 512".
_ASSIGNMENT = re.compile(
    r"(?P<name>passw(?:or)?d|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key"
    r"|auth[_-]?token|access[_-]?token|refresh[_-]?token|private[_-]?key|credentials?|token)"
    r"(?:[_-]?(?:access[_-]?)?key|[_-]?token|[_-]?value)?"
    r"""["']?[ \t]*(?:=>|:=|=|:)[ \t]*"""
    r"""(?:"(?P<q2>[^"\n]+)"|'(?P<q1>[^'\n]+)'|(?P<bare>[^\s"',;}{)]+))"""
)


# An environment list entry: {name: DB_PASSWORD, value: "..."} (Kubernetes, compose, JSON).
_NAMED_VALUE = re.compile(
    r"""name["']?\s*:\s*["']?[\w.-]*(?:passw(?:or)?d|secret|token|api[_-]?key)["']?\s*,?"""
    r"""\s*["']?value["']?\s*:\s*(?:"(?P<q2>[^"\n]+)"|'(?P<q1>[^'\n]+)'|(?P<bare>[^\s"',;}{)]+))"""
)


def _quoted_group(match: re.Match[str]) -> str:
    return "q2" if match.group("q2") else "q1" if match.group("q1") else "bare"


def _assignment(match: re.Match[str]) -> Hit | None:
    group = _quoted_group(match)
    if match.group(group).isdigit() and not match.group("name").lower().startswith("p"):
        return None  # "max_tokens: 1024" is a number; "password: 123456" is still a password
    return _value_hit(match, group, 0.8)


SECRET_RULES: tuple[Rule, ...] = (
    _token("anthropic_key", rf"s{_AT}k-ant-(?:api|admin)\d\d-", r"[\w-]", 32, 1000, "sk-ant-"),
    _token("openai_key", rf"s{_AT}k-(?!ant-)(?:proj-|svcacct-|admin-)?", r"[\w-]", 32, 1000, "sk-"),
    _token(
        "aws_access_key", rf"A{_AT}(?:KIA|SIA|BIA|CCA)", "[A-Z0-9]", 16, 16, "akia", "asia", "abia"
    ),
    _token(
        "github_token", f"g{_AT}h[pousr]_", "[A-Za-z0-9]", 36, 255, "ghp_", "gho_", "ghu_", "ghs_"
    ),
    _token("github_pat", f"g{_AT}ithub_pat_", r"[A-Za-z0-9_]", 60, 255, "github_pat_"),
    _token("slack_token", f"x{_AT}ox[abposr]-", "[A-Za-z0-9-]", 10, 1000, "xox"),
    _key(
        "slack_webhook",
        r"https://hooks\.slack\.com/services/T\w+/B\w+/\w+",
        "hooks.slack.com",
    ),
    _token("google_api_key", f"A{_AT}Iza", r"[\w-]", 35, 35, "aiza"),
    _token("google_oauth_secret", f"G{_AT}OCSPX-", r"[\w-]", 28, 28, "gocspx-"),
    _token("stripe_key", f"[sr]{_AT}k_(?:live|test)_", "[A-Za-z0-9]", 20, 1000, "_live_", "_test_"),
    _token("stripe_webhook_secret", f"w{_AT}hsec_", "[A-Za-z0-9]", 24, 1000, "whsec_"),
    _key(
        "private_key",
        _PEM,
        "private key",
        score=1.0,
    ),
    _key("jwt", rf"e{_AT}yJ[\w-]{{8,}}+\.eyJ[\w-]{{8,}}+\.[\w-]{{8,}}", "eyj"),
    Rule(
        "SECRET",
        "secret.url_password",
        re.compile(r"://[^\s:/@\"']*:([^\s@/\"']+)@"),
        _value(1, 0.95),
        needles=("://",),
        on_lowered=True,
    ),
    Rule(
        "SECRET",
        "secret.bearer_token",
        re.compile(r"(?:bearer|token)\s+([a-z0-9._~+/-]{20,}=*)"),
        _value(1, 0.85),
        needles=("bearer", "token"),
        on_lowered=True,
    ),
    Rule(
        "SECRET",
        "secret.named_value",
        _NAMED_VALUE,
        lambda match: _value_hit(match, _quoted_group(match), 0.8),
        needles=("value",),
        on_lowered=True,
    ),
    Rule(
        "SECRET",
        "secret.assignment",
        _ASSIGNMENT,
        _assignment,
        needles=("pass", "pwd", "secret", "key", "token", "credential"),
        on_lowered=True,
    ),
)


# --- secrets still being written (a streamed answer) -------------------------------------

# The start of a value that may run long and matches only once complete: a JWT (its third
# part), a key or token by its prefix, a URL's password (until its "@"), an assigned value.
_LONG_START = re.compile(
    r"eyJ|sk-|ghp_|gho_|ghu_|ghs_|github_pat_|xox[abposr]-|AIza|GOCSPX-|whsec_|[sr]k_(?:live|test)_"
    r"|AKIA|ASIA|[a-z][\w+.-]*://[^\s:/@\"']*:"
    r"|(?i:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|credentials?)"
    r"[\"']?[ \t]*[:=][ \t]*[\"']?"
)
_TOKEN_END = frozenset(" \t\r\n\"'`<>)]}")
PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_LINE = re.compile(r"[ \t]*(?:[A-Za-z0-9+/=]{1,100}|[A-Za-z-]+:.*)?[ \t]*\Z")


def open_secret(text: str, start: int = 0) -> int | None:
    """Where a secret that is still being written begins in ``text`` (at or after ``start``).

    Open means it may go on and would only match, or match whole, once complete: the last
    token starts like a key, a JWT, a URL with a password or an assigned secret and runs to
    the end of the text; or a private key has begun and every line since is key material.
    A hold-back window keeps such text until it closes (hold-back.py).
    """
    found: int | None = None
    begin = text.rfind("-----BEGIN", start)
    if begin >= 0 and "-----END" not in text[begin:]:
        header = PEM_BEGIN.match(text, begin)
        lines = text[header.end() :].replace("\\n", "\n").split("\n") if header else []
        if header is None and len(text) - begin < 64:
            found = begin  # the header itself is still arriving
        elif header is not None and all(_PEM_LINE.match(line) for line in lines):
            found = begin
    last = len(text)
    while last > start and text[last - 1] not in _TOKEN_END:
        last -= 1
    if last < len(text):
        # The start of the value in the last token: after "password=", at "eyJ", ...
        m = _LONG_START.search(text, last)
        if m is None and last > start:
            # An assignment's value may follow "password: " across the space.
            m = _LONG_START.search(text, max(start, last - 48), last)
            if m is not None and m.end() != last:
                m = None
        if m is not None:
            found = m.start() if found is None else min(found, m.start())
    return found
