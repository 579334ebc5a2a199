"""SECRET rules: provider API keys, private keys, JWTs, passwords in URLs and assignments.

Each key format has a fixed prefix, so each rule carries it as a needle and runs only on text
that contains it. Assignment rules report the value, not the name (``password=`` stays).
"""

from __future__ import annotations

import re

from gateway.boundary.rules import Check, Hit, Rule, fixed

__all__ = ["SECRET_RULES"]

_END = r"(?![\w-])"


def _key(name: str, pattern: str, *needles: str, score: float = 0.95) -> Rule:
    return Rule("SECRET", f"secret.{name}", re.compile(pattern), fixed(score), needles=needles)


# A value that is a placeholder, not a secret: "${DB_PASSWORD}", "<redacted>", "****", "null".
_PLACEHOLDER = re.compile(
    r"(?i)^(?:\$\{?[\w.-]+\}?|\{\{.*\}\}|<[^>]*>|\*+|x+|\.+|null|none|true|false|"
    r"changeme|password|secret|redacted|\[redacted\]|env\(.*\)|os\.environ.*)$"
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
    r"(?i)(?P<name>passw(?:or)?d|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key"
    r"|auth[_-]?token|access[_-]?token|refresh[_-]?token|private[_-]?key|credentials?|token)"
    r"(?:[_-]?(?:access[_-]?)?key|[_-]?token|[_-]?value)?"
    r"""["']?[ \t]*(?:=>|:=|=|:)[ \t]*"""
    r"""(?:"(?P<q2>[^"\n]+)"|'(?P<q1>[^'\n]+)'|(?P<bare>[^\s"',;}{)]+))"""
)


# An environment list entry: {name: DB_PASSWORD, value: "..."} (Kubernetes, compose, JSON).
_NAMED_VALUE = re.compile(
    r"""(?i)name["']?\s*:\s*["']?[\w.-]*(?:passw(?:or)?d|secret|token|api[_-]?key)["']?\s*,?"""
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
    _key("anthropic_key", r"\bsk-ant-(?:api|admin)\d\d-[\w-]{32,}" + _END, "sk-ant-"),
    _key("openai_key", r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[\w-]{32,}" + _END, "sk-"),
    _key("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b", "akia", "asia", "abia"),
    _key("github_token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", "ghp_", "gho_", "ghu_", "ghs_"),
    _key("github_pat", r"\bgithub_pat_\w{60,255}\b", "github_pat_"),
    _key("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "xox"),
    _key(
        "slack_webhook",
        r"https://hooks\.slack\.com/services/T\w+/B\w+/\w+",
        "hooks.slack.com",
    ),
    _key("google_api_key", r"\bAIza[\w-]{35}" + _END, "aiza"),
    _key("google_oauth_secret", r"\bGOCSPX-[\w-]{28}" + _END, "gocspx-"),
    _key("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}\b", "_live_", "_test_"),
    _key("stripe_webhook_secret", r"\bwhsec_[A-Za-z0-9]{24,}\b", "whsec_"),
    _key(
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:-]*)",
        "private key",
        score=1.0,
    ),
    _key("jwt", r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}", "eyj"),
    Rule(
        "SECRET",
        "secret.url_password",
        re.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@\"']*:([^\s@/\"']+)@"),
        _value(1, 0.95),
        needles=("://",),
    ),
    Rule(
        "SECRET",
        "secret.bearer_token",
        re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/-]{20,}=*)"),
        _value(1, 0.85),
        needles=("bearer", "token"),
    ),
    Rule(
        "SECRET",
        "secret.named_value",
        _NAMED_VALUE,
        lambda match: _value_hit(match, _quoted_group(match), 0.8),
        needles=("value",),
    ),
    Rule(
        "SECRET",
        "secret.assignment",
        _ASSIGNMENT,
        _assignment,
        needles=("pass", "pwd", "secret", "key", "token", "credential"),
    ),
)
