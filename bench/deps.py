"""How tangled the package is: folder-level dependency counts in ``gateway/``.

    python bench/deps.py [ROOT]       # ROOT holds gateway/ (default: this checkout)

Units are the top-level folders and modules of ``gateway/``; every import counts, the ones
under ``TYPE_CHECKING`` too. It prints

* two-way pairs: units that import each other (folders only, then folders and modules);
* upward imports: a unit importing one of a higher layer, the layers being the request path
  from the bottom: the foundation, what the server reads (``policy``), the steps and the
  request context, the candidate judge (``rollout``), ``pipeline``, the app, the offline
  ``tools`` and the ``cli``.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

LAYERS: list[set[str]] = [  # lowest first
    {"errors", "yamlsource", "normalized", "config", "steps", "stores"},
    {"surfaces"},  # wire knowledge: the policy's endpoints come from its registry
    {"policy"},
    {
        "auth", "access", "limits", "boundary", "upstream", "translate", "quality",
        "fallback", "review", "audit", "context",
    },
    {"rollout"},
    {"pipeline", "relay", "protocol"},  # relay: the stream relay; protocol: the HTTP server
    {"observe", "console"},  # read the finished request; the operator pages
    {"app", "model_routes", "admin", "services", "workers"},
    {"tools"},
    {"cli", "__main__"},
]  # fmt: skip
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def imports(package: Path) -> dict[str, set[str]]:
    """unit -> the other units it imports."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if len(parts) < 2 or parts[1] == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                dotted = name.split(".")
                if dotted[0] != "gateway" or len(dotted) < 2 or dotted[1] == parts[1]:
                    continue
                if (package / dotted[1]).is_dir() or (package / f"{dotted[1]}.py").exists():
                    edges[parts[1]].add(dotted[1])
    return edges


def main() -> None:
    package = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1]) / "gateway"
    edges = imports(package)
    folders = {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    units = set(edges) | {u for targets in edges.values() for u in targets}

    def pairs(among: set[str]) -> list[str]:
        found = {
            tuple(sorted((a, b)))
            for a in among
            for b in edges.get(a, ())
            if b in among and a in edges.get(b, ())
        }
        return [f"{a}<->{b}" for a, b in sorted(found)]

    def rank(unit: str) -> int:
        return RANK.get(unit, -1)  # an unranked unit is reported below

    upward = sorted(f"{a}->{b}" for a, ts in edges.items() for b in ts if rank(b) > rank(a))
    for title, found in (
        ("two-way pairs, folders", pairs(folders)),
        ("two-way pairs, folders and modules", pairs(units)),
        ("upward imports", upward),
    ):
        print(f"{title}: {len(found)}  {', '.join(found)}")
    unranked = sorted(units - set(RANK))
    if unranked:
        sys.exit(f"no layer for: {', '.join(unranked)} (add it to LAYERS)")


if __name__ == "__main__":
    main()
