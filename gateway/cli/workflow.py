"""``gateway workflow pause W --reason TEXT | resume W | status``: the runtime switches of a
running gateway, through its admin API (``/admin/workflows/...``, ``/admin/rollout``).

Going through a gateway (any instance: the switch reaches the others through Redis or the
policies folder) means the pause is written, obeyed and recorded in the audit chain by the
same code as a console or API call, under the identity of the admin key in
``$GATEWAY_ADMIN_KEY``. ``--url`` defaults to gateway.yaml's ``listen`` address.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from typing import Any
from urllib.error import HTTPError, URLError

import orjson

from gateway.cli.common import load_or_exit

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("workflow", help="pause, resume and show workflows' rollout")
    sub = parser.add_subparsers(dest="workflow_command", required=True)
    pause = sub.add_parser("pause", help="stop a workflow's traffic on every instance")
    pause.add_argument("workflow")
    pause.add_argument("--reason", required=True, help="why: kept in the audit chain")
    resume = sub.add_parser("resume", help="let a paused workflow's traffic through again")
    resume.add_argument("workflow")
    status = sub.add_parser("status", help="pauses, canaries and aborts of every workflow")
    for p in (pause, resume, status):
        p.add_argument("--url", help="a running gateway (default: gateway.yaml's listen)")
        p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    key = os.environ.get("GATEWAY_ADMIN_KEY")
    if not key:
        print("workflow: set GATEWAY_ADMIN_KEY to a key with the admin role", file=sys.stderr)
        return 2
    url = args.url
    if not url:
        listen = load_or_exit(args).listen
        url = f"http://{listen.host}:{listen.port}"
    base = f"{url.rstrip('/')}/admin"
    try:
        if args.workflow_command == "pause":
            body = orjson.dumps({"reason": args.reason})
            done = _call(f"{base}/workflows/{args.workflow}/pause", key, body)
            print(f"paused {done['workflow']}: {done['paused']['reason']}")
        elif args.workflow_command == "resume":
            done = _call(f"{base}/workflows/{args.workflow}/resume", key, b"{}")
            if done["mode_paused"]:
                print(f"{done['workflow']} stays paused: its policy file says mode: paused")
            else:
                print(f"resumed {done['workflow']}" if done["resumed"] else "was not paused")
        else:
            for row in _call(f"{base}/rollout", key, None)["workflows"]:
                print(_line(row))
    except HTTPError as exc:
        print(f"workflow: {exc.code}: {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except URLError as exc:
        print(f"workflow: cannot reach {url}: {exc.reason}", file=sys.stderr)
        return 1
    return 0


def _call(url: str, key: str, body: bytes | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        out: dict[str, Any] = orjson.loads(response.read())
    return out


def _line(row: dict[str, Any]) -> str:
    parts = [row["workflow"], row["live_version"]]
    if row["mode_paused"]:
        parts.append("paused (mode: paused)")
    elif (pause := row.get("paused")) is not None:
        parts.append(f"paused by {pause.get('by')}: {pause.get('reason')}")
    candidate = row.get("candidate")
    if candidate is not None:
        parts.append(
            f"candidate {candidate['version']} {candidate['effective_percent']}%"
            f" of {candidate['percent']}% by {candidate['key']}"
        )
        if (aborted := candidate.get("aborted")) is not None:
            parts.append(f"aborted: {aborted.get('signal')} {aborted.get('candidate')}"
                         f" vs live {aborted.get('live')}")  # fmt: skip
    return "  ".join(str(p) for p in parts)
