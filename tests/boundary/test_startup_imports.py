"""Start-up imports no NER: presidio and spaCy (~3 s, ~50 MiB) load only for a policy that
needs them, so the default deployment is ready in about a second (docs/performance.md); and
the phone patterns (~0.15 s of CPU) are compiled once serving, not while starting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gateway.boundary.extra import extra_entities
from gateway.boundary.presidio_entities import PRESIDIO_ENTITIES

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("spacy", "presidio_analyzer", "thinc", "tldextract")

_SERVE = """
import json, sys
from pathlib import Path
import gateway.app
from gateway.config import load_config
after_import = sorted(m for m in {heavy!r} if m in sys.modules)
gateway.app.create_app(load_config(Path({config!r})))
print(json.dumps([after_import, sorted(m for m in {heavy!r} if m in sys.modules)]))
"""

_PRESIDIO_POLICY = """
import json, sys
from gateway.boundary import DetectionSpec, build_detector
before = "presidio_analyzer" in sys.modules
detector = build_detector(DetectionSpec(frozenset({"UK_NHS"})), None)
text = "NHS number 943 476 5919"
found = [text[f.start : f.end] for f in detector.find(text)]
print(json.dumps([before, "presidio_analyzer" in sys.modules, found]))
"""


def _run(code: str, tmp_path: Path) -> object:
    env = {
        **os.environ,
        "GATEWAY_AUDIT_DB": str(tmp_path / "audit.db"),
        "GATEWAY_AUDIT_SPOOL": str(tmp_path / "spool"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_default_deployment_starts_without_presidio_or_spacy(tmp_path: Path) -> None:
    code = _SERVE.format(heavy=HEAVY, config=str(ROOT / "gateway.yaml"))
    after_import, after_build = _run(code, tmp_path)  # type: ignore[misc]
    assert after_import == []
    assert after_build == []


_PHONES = """
import asyncio, json, sys
from pathlib import Path
import gateway.app
from gateway.boundary import phones
from gateway.config import load_config
app = gateway.app.create_app(load_config(Path({config!r})))
built = [phones._plan.cache_info().currsize, "phonenumbers" in sys.modules]
regions = len({{r for rs in phones._regions().values() for r in rs}})

async def serve():
    async with app.lifespan():
        for _ in range(12000):  # a minute at most: the warm-up paces itself
            if phones._plan.cache_info().currsize == regions and all(n._unions for n in phones._NATIONAL):
                return True
            await asyncio.sleep(0.005)
    return False

print(json.dumps([built, asyncio.run(serve())]))
"""


def test_phone_patterns_are_compiled_once_serving(tmp_path: Path) -> None:
    # gateway.yaml's policies detect phone numbers: their patterns (and phonenumbers, which
    # they come from) are compiled by the running app (phones.warm_up), not while it is built.
    code = _PHONES.format(config=str(ROOT / "gateway.yaml"))
    assert _run(code, tmp_path) == [[0, False], True]


def test_a_policy_naming_a_presidio_entity_still_loads_it(tmp_path: Path) -> None:
    assert _run(_PRESIDIO_POLICY, tmp_path) == [False, True, ["943 476 5919"]]


def test_entity_list_matches_the_installed_presidio() -> None:
    assert extra_entities() == PRESIDIO_ENTITIES
