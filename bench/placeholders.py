"""What keyed placeholders (``data.placeholders: keyed``) cost next to numbered ones, in one run.

    python bench/placeholders.py            # about 5 s
    python bench/placeholders.py --quick    # smoke run

One request's rewriting of a long conversation: 40 texts holding 50 distinct e-mail addresses,
each seen four times (a history resent turn after turn), masked by a fresh ``Rewriter`` as the
boundary step does per request. Numbered (the default) counts per value; keyed computes one
HMAC-SHA256 per distinct value. Best of ``--repeat`` timing runs.
"""

from __future__ import annotations

import argparse
import timeit

from gateway.boundary import Finding
from gateway.boundary.actions import Rewriter, TokenMinter

ACTIONS = {"EMAIL_ADDRESS": "mask"}
MINTER = TokenMinter(b"k" * 32)


def texts() -> list[tuple[str, list[Finding]]]:
    out = []
    for t in range(40):
        values = [f"user{(t * 5 + i) % 50}@corp.example.com" for i in range(5)]
        text, found = "", []
        for value in values:
            text += "please write to "
            found.append(Finding(len(text), len(text) + len(value), "EMAIL_ADDRESS", 0.9, "email"))
            text += value + " about the invoice. "
        out.append((text, found))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    number, repeat = (50, 2) if args.quick else (500, args.repeat)
    work = texts()

    def run(keyed: bool) -> float:
        def once() -> None:
            rw = Rewriter(ACTIONS, "w", MINTER, keyed)  # type: ignore[arg-type]
            for text, found in work:
                rw.request_text(text, found)

        return min(timeit.repeat(once, number=number, repeat=repeat)) / number

    numbered, keyed = run(False), run(True)
    print("| placeholders | one request (40 texts, 200 findings, 50 values) | per finding |")
    print("|---|---|---|")
    for name, t in (("numbered (baseline)", numbered), ("keyed", keyed)):
        print(f"| {name} | {t * 1e6:,.1f} µs | {t * 1e6 / 200:.2f} µs |")
    print(f"\nkeyed adds {(keyed - numbered) * 1e6:,.1f} µs a request ({keyed / numbered:.2f}x)")


if __name__ == "__main__":
    main()
