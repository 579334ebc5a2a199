"""``x-ratelimit-*`` headers as OpenAI sends them: for requests and for tokens, the tightest
rule's limit, what remains of it and how long until it is whole again."""

from __future__ import annotations

from gateway.limits.store import RateCheck, RateState

__all__ = ["duration", "rate_headers"]


def rate_headers(
    checks: tuple[RateCheck, ...], states: tuple[RateState, ...]
) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for unit in ("requests", "tokens"):
        pairs = [(c, s) for c, s in zip(checks, states, strict=True) if c.unit == unit]
        if not pairs:
            continue
        check, state = min(pairs, key=lambda p: (p[1].remaining, -p[1].reset_us))
        headers[f"x-ratelimit-limit-{unit}"] = str(check.limit)
        headers[f"x-ratelimit-remaining-{unit}"] = str(state.remaining)
        headers[f"x-ratelimit-reset-{unit}"] = duration(state.reset_us)
    return headers or None


def duration(us: float) -> str:
    """OpenAI's (Go's) duration format: ``17ms``, ``1.5s``, ``6m0s``, ``1h2m3s``.

    >>> duration(360e6), duration(1.5e6), duration(17_000)
    ('6m0s', '1.5s', '17ms')
    """
    if us < 1e6:
        return f"{max(0, round(us / 1e3))}ms"
    total_ms = round(us / 1e3)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, ms = divmod(rest, 60_000)
    seconds = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{seconds}s"
