"""``gateway policy explain``: why one message by one caller would be allowed, changed or
refused, step by step: the real pipeline runs it offline (the mock answers for the model, no
audit record), so its decision is the live gateway's. Detected values are never printed.

Exit 0 with an explanation whatever it decides; 1 when the configuration or a policy does
not load.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from gateway.boundary.service import configured_ner
from gateway.cli.common import config_path
from gateway.config import GatewayConfig, load_config
from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies
from gateway.surfaces import EMBEDDINGS
from gateway.tools.cases import CASE_APIS, CasePrincipal, CaseRequest
from gateway.tools.explain import Explanation, explain
from gateway.yamlsource import ConfigError

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "explain", help="each step's decision for one message, run offline (nothing sent)"
    )
    p.add_argument("--workflow", required=True)
    p.add_argument("--subject", required=True)
    p.add_argument("--roles", required=True, help="comma-separated, e.g. sales-agent,ops")
    p.add_argument("--team", default=None)
    p.add_argument("--model", default=None, help="default: the workflow's first model")
    p.add_argument(
        "--api",
        choices=tuple(CASE_APIS),
        default=None,
        help="default: the model's provider's own API (openai for the mock)",
    )
    p.add_argument("--stream", action="store_true", help="ask for a streamed answer")
    p.add_argument("--message", required=True, help="the user message")
    p.add_argument(
        "--answer", default=None, help="the model's answer (default: the mock quotes the message)"
    )
    p.add_argument("--dir", default=None, help="policies folder (default: policies_dir)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    try:
        config = load_config(config_path(args))
        directory = Path(args.dir) if args.dir else config.path(config.policies_dir)
        policies = load_policies(directory, config.models, configured_ner(config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    roles = tuple(sorted({r.strip() for r in args.roles.split(",") if r.strip()}))
    caller = CasePrincipal(subject=args.subject, roles=roles, team=args.team)
    result = asyncio.run(_explain(config, policies, caller, args))
    if args.format == "json":
        print(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(result)
    return 0


async def _explain(
    config: GatewayConfig,
    policies: dict[str, CompiledPolicy],
    caller: CasePrincipal,
    args: argparse.Namespace,
) -> Explanation:
    policy = policies.get(args.workflow)
    model = args.model or (policy.access.models[0] if policy else next(iter(config.models)))
    api = args.api if args.api is not None else _native_api(config, model)
    said: dict[str, Any] = {"messages": [{"role": "user", "content": args.message}]}
    if CASE_APIS[api] is EMBEDDINGS:  # the message is the text to embed
        said = {"input": args.message}
    request = CaseRequest(api=api, model=model, stream=args.stream, **said)
    return await explain(config, policies, args.workflow, caller, request, args.answer)


def _native_api(config: GatewayConfig, model: str) -> str:
    """Providers take either API (translated), so the default is the one needing no
    translation; an embedding model's is embeddings."""
    route = config.models.get(model)
    if route is not None and route.endpoints == [EMBEDDINGS.endpoint]:
        return EMBEDDINGS.endpoint
    native = route is not None and config.providers[route.provider].type == "anthropic"
    return "anthropic" if native else "openai"


def _print(e: Explanation) -> None:
    if e.policy_file:
        print(f"workflow {e.workflow}  {e.policy_file}  {e.policy_version}  mode {e.mode}")
    print(f"caller   {e.subject}  roles [{', '.join(e.roles)}]  team {e.team or '-'}")
    print()
    code_width = max([len(s.code or "") for s in e.steps] + [4])
    print(f"{'step':<14}  {'decision':<9}  {'code':<{code_width}}  rule")
    for s in e.steps:
        print(f"{s.step:<14}  {s.outcome:<9}  {s.code or '':<{code_width}}  {s.rule}")
    if e.findings:
        rows = [("text", "span", "entity", "rule", "score", "action", "preview")]
        rows += [
            (str(f.text), f"{f.start}-{f.end}", f.entity, f.rule, f"{f.score:.2f}", f.action,
             f.preview)
            for f in e.findings
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        print("\nfindings (values shown as previews)")
        for row in rows:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if e.sent is not None:
        print("\ntext as it would leave")
        for text in e.sent:
            print(f"  {text}")
    if e.answer is not None:
        print("\nanswer as the caller would get it")
        print(f"  {e.answer}")
    answered = {
        "message": "; the fallback message answered",
        "model": "; a fallback model answered",
    }
    review = "; flagged for review" if e.review else ""
    print(f"\nstatus {e.status}{answered.get(e.fallback or '', '')}{review}")
    print(f"x-gateway-decision: {e.header}")
    reasons = f" ({', '.join(e.reasons)})" if e.reasons else ""
    print(f"decision: {e.decision}{reasons}")
