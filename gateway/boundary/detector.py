"""Build one policy's detector: its rules compiled once, run on normalized text per call.

A call normalizes the text once, runs only the rules for the entities the policy names (each
skipped unless its needle occurs), drops hits under the entity's threshold or on the allow
list, keeps the strongest of overlapping hits and maps spans back to the original text.

Chat clients resend the whole conversation with every request: findings are cached per text
under a keyed hash of the detector's version and the text (keyed.py; never the text), in
one bounded LRU per process. ``find_many`` reads a request's texts with one NER batch, and
a text without a capitalized word skips NER (no name or place starts in lower case).
"""

from __future__ import annotations

import bisect
import difflib
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from gateway.boundary.fields import Fields
from gateway.boundary.findings import Detector, Finding
from gateway.boundary.keyed import KeyedCache, digest
from gateway.boundary.names import has_name_token, known_name, name_hits
from gateway.boundary.ner import NER_ENTITIES, NerModel
from gateway.boundary.network import NETWORK_RULES
from gateway.boundary.normalize import normalize
from gateway.boundary.patterns import PII_RULES
from gateway.boundary.phones import compile_later
from gateway.boundary.presidio_entities import PRESIDIO_ENTITIES
from gateway.boundary.rules import CONTEXT_BOOST, CONTEXT_SCORE, Rule, fixed
from gateway.boundary.secrets import SECRET_RULES
from gateway.boundary.spec import DetectionSpec

if TYPE_CHECKING:
    from gateway.boundary.extra import ExtraRecognizer

__all__ = [
    "DENY_TERM",
    "NATIVE_ENTITIES",
    "PatternDetector",
    "build_detector",
    "detectable_entities",
    "entity_problems",
    "resolve",
]

DENY_TERM = "DENY_TERM"
_RULES = PII_RULES + NETWORK_RULES + SECRET_RULES
NATIVE_ENTITIES = frozenset(rule.entity for rule in _RULES)

_Candidate = tuple[int, int, float, str, str]  # start, end, score, entity, rule
_NerHits = list[tuple[str, tuple[int, int, float]]]
# Findings per (detector version, text): offsets, entity names, scores and rule ids only.
CACHE_ENTRIES = 8192
# A text with more findings is not kept: a body of look-alikes would fill the cache with
# millions of objects that every full garbage collection then walks (a pause of 0.7 s was
# measured), and a chat's history rarely holds more per text.
CACHED_FINDINGS = 64
# Each entry one flat tuple of atoms (start, end, entity, score, rule, start, ...), which
# the collector stops tracking once it survives a collection: as Finding objects, a full
# cache (500,000 of them) made every full collection walk them, 100 ms each (1 ms so).
_Packed = tuple[int | str | float, ...]
_FOUND: KeyedCache[_Packed] = KeyedCache(CACHE_ENTRIES)


def _packed(found: list[Finding]) -> _Packed:
    return tuple(x for f in found for x in (f.start, f.end, f.entity, f.score, f.rule))


def _unpacked(entry: _Packed) -> list[Finding]:
    return [Finding._make(entry[i : i + 5]) for i in range(0, len(entry), 5)]


class PatternDetector:
    """The ``Detector`` for one policy; see ``build_detector``."""

    def __init__(
        self,
        spec: DetectionSpec,
        rules: tuple[Rule, ...],
        extras: tuple[ExtraRecognizer, ...],
        ner: NerModel | None,
    ) -> None:
        self._spec = spec
        self._rules = rules
        self._extras = extras
        self._ner = ner
        self._ner_entities = spec.entities & NER_ENTITIES
        self._names = "PERSON" in spec.entities
        if self._names:
            known_name("warm")  # load the name lists now, not on a request
        self._allow = frozenset(v.casefold() for v in spec.allow_list)
        self._thresholds = {rule.entity: spec.threshold(rule.entity) for rule in rules}
        self._thresholds.update({e: spec.threshold(e) for e in spec.entities})
        names = {rule.entity for rule in rules} | {x.entity for x in extras}
        self._entities = frozenset(names | self._ner_entities)
        # A policy version's own detector: its cache entries are never another's.
        self._version = secrets.token_hex(8)

    @property
    def entities(self) -> frozenset[str]:
        return self._entities

    @property
    def uses_ner(self) -> bool:
        """NER reads every text slowly (15-20 ms per KB): scan it off the loop."""
        return self._ner is not None and bool(self._ner_entities)

    @property
    def chunkable(self) -> bool:
        """Whether every entity it finds is short, so a long text may be scanned in windows.

        A policy's own patterns and long deny terms may match any length, and NER reads
        whole sentences.
        """
        short_terms = all(len(term) <= 128 for term in self._spec.deny_terms)
        return not self.uses_ner and not self._spec.custom and short_terms

    def find(self, text: str) -> list[Finding]:
        return self.find_many([text])[0]

    def find_patterns(self, text: str) -> list[Finding]:
        """``find`` without the NER model (for a text made of two texts' ends)."""
        key = digest(self._version, "patterns", text)
        if (entry := _FOUND.get(key)) is not None:
            return _unpacked(entry)
        found = self._find(text, ner=False, ner_hits=None)
        if len(found) <= CACHED_FINDINGS:
            _FOUND[key] = _packed(found)
        return found

    def find_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        """``find`` for each text: cached ones looked up, NER run once over the rest."""
        keys = [digest(self._version, "all", text) for text in texts]
        cached = [_FOUND.get(k) for k in keys]
        out = [_unpacked(entry) if entry else [] for entry in cached]  # missing ones: below
        missing = [i for i, entry in enumerate(cached) if entry is None]
        ner_hits: dict[int, _NerHits] = {}
        if self._ner is not None and self._ner_entities and missing:
            named = [i for i in missing if has_name_token(texts[i])]
            if named:
                normalized = [normalize(texts[i]).text for i in named]
                batch = self._ner.hits_many(normalized, self._ner_entities)
                ner_hits = dict(zip(named, batch, strict=True))
        for i in missing:
            found = self._find(texts[i], ner=True, ner_hits=ner_hits.get(i, []))
            if len(found) <= CACHED_FINDINGS:
                _FOUND[keys[i]] = _packed(found)
            out[i] = found
        return out

    def _find(self, text: str, ner: bool, ner_hits: _NerHits | None) -> list[Finding]:
        norm = normalize(text)
        t = norm.text
        lowered = t.lower()
        if len(lowered) != len(t):  # a few letters ("İ") lower to two characters
            lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in t)
        candidates: list[_Candidate] = []
        fields: Fields | None = None
        for rule in self._rules:
            floor = self._thresholds[rule.entity]
            named: bool | None = None  # whether a word of the rule's field names occurs at all
            for start, end, score in rule.hits(t, lowered):
                if score < floor and rule.fields:
                    # A weak or invalid value under a field named for the entity ("phone":,
                    # an ssn column): the field name is its context.
                    if named is None:
                        named = any(word in lowered for word in rule.fields)
                    if not named:
                        continue
                    fields = fields or Fields(t)
                    if rule.fields & fields.key_at(start):
                        score = max(CONTEXT_SCORE, min(1.0, score + CONTEXT_BOOST))
                if score >= floor:
                    candidates.append((start, end, score, rule.entity, rule.name))
        for extra in self._extras:
            floor = self._thresholds[extra.entity]
            for start, end, score in extra.hits(t, lowered):
                if score >= floor:
                    candidates.append((start, end, score, extra.entity, "presidio." + extra.entity))
        if ner and ner_hits:
            for entity, (start, end, score) in ner_hits:
                if score >= self._thresholds[entity]:
                    candidates.append((start, end, score, entity, "ner." + entity))
        if ner and self._names:
            floor = self._thresholds["PERSON"]
            for (start, end, score), cue in name_hits(t, fields):
                if score >= floor:
                    candidates.append((start, end, score, "PERSON", cue))
        if self._allow:
            candidates = [c for c in candidates if t[c[0] : c[1]].casefold() not in self._allow]
        return [
            Finding(*norm.span(start, end), entity, score, rule)
            for start, end, score, entity, rule in _joined(_strongest(candidates), t)
        ]


def resolve(findings: list[Finding]) -> list[Finding]:
    """The non-overlapping subset ``find`` would keep of ``findings``, sorted by start."""
    candidates = [(f.start, f.end, f.score, f.entity, f.rule) for f in findings]
    return [
        Finding(s, e, entity, score, rule) for s, e, score, entity, rule in _strongest(candidates)
    ]


def _strongest(candidates: list[_Candidate]) -> list[_Candidate]:
    """Non-overlapping hits, stronger (then longer, then earlier) ones first, sorted by start."""
    candidates.sort(key=lambda c: (-c[2], c[0] - c[1], c[0]))
    starts: list[int] = []
    kept: list[_Candidate] = []
    for cand in candidates:
        i = bisect.bisect_right(starts, cand[0])
        if i and kept[i - 1][1] > cand[0]:
            continue
        if i < len(kept) and kept[i][0] < cand[1]:
            continue
        starts.insert(i, cand[0])
        kept.insert(i, cand)
    return kept


def _joined(kept: list[_Candidate], text: str) -> list[_Candidate]:
    """Names split in two by the model ("Jasmijn van der" "Spaendonc") as one finding: the
    space between them is part of the name, and one placeholder stands for it."""
    out: list[_Candidate] = []
    for cand in kept:
        if out and cand[3] == "PERSON" == out[-1][3]:
            gap = text[out[-1][1] : cand[0]]
            if gap and gap.isspace() and "\n" not in gap:
                last = out[-1]
                out[-1] = (last[0], cand[1], max(last[2], cand[2]), "PERSON", last[4])
                continue
        out.append(cand)
    return out


def _policy_rules(spec: DetectionSpec) -> list[Rule]:
    rules: list[Rule] = []
    for custom in spec.custom:
        try:
            regex = re.compile(custom.pattern)
        except re.error as exc:
            raise ValueError(f"custom recognizer {custom.name}: invalid pattern: {exc}") from exc
        context = tuple(w.lower() for w in custom.context)
        rules.append(
            Rule(custom.name, f"custom.{custom.name}", regex, fixed(custom.score), context=context)
        )
    if spec.deny_terms:
        terms = sorted((t.lower() for t in spec.deny_terms), key=len, reverse=True)
        regex = re.compile(rf"(?<!\w)(?:{'|'.join(map(re.escape, terms))})(?!\w)")
        rules.append(Rule(DENY_TERM, "deny_term", regex, fixed(1.0), on_lowered=True))
    return rules


def build_detector(spec: DetectionSpec, ner: NerModel | None) -> Detector:
    """The detector for ``spec``, built once when the policy loads.

    Raises ValueError for an entity no detector provides (see ``entity_problems``) or an
    invalid custom pattern, so a bad policy fails at load and never per request.
    """
    problems = entity_problems(spec.entities, ner is not None)
    if problems:
        raise ValueError("; ".join(problems))
    if "PHONE_NUMBER" in spec.entities:
        compile_later()  # once serving, not at start-up (phones.py)
    rules = tuple(r for r in _RULES if r.entity in spec.entities) + tuple(_policy_rules(spec))
    wanted = sorted(spec.entities - NATIVE_ENTITIES - NER_ENTITIES)
    extras: tuple[ExtraRecognizer, ...] = ()
    if wanted:
        # presidio pulls in spaCy (~3 s, ~50 MiB): paid only by a policy that names its entities
        from gateway.boundary.extra import ExtraRecognizer

        extras = tuple(ExtraRecognizer(e) for e in wanted)
    return PatternDetector(spec, rules, extras, ner)


def detectable_entities(ner_configured: bool) -> frozenset[str]:
    """Entities a policy may name: ours, presidio's pattern recognizers', NER's if configured."""
    found = NATIVE_ENTITIES | PRESIDIO_ENTITIES
    return found | NER_ENTITIES if ner_configured else found


def entity_problems(entities: Iterable[str], ner_configured: bool) -> list[str]:
    """One message per entity that no detector provides, for policy validation."""
    known = detectable_entities(ner_configured)
    problems = []
    for entity in sorted(set(entities) - known):
        if entity in NER_ENTITIES:
            problems.append(
                f"entity {entity} needs an NER model: configure "
                "'nlp: {engine: spacy, model: NAME}' in gateway.yaml"
            )
            continue
        close = difflib.get_close_matches(entity, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"unknown entity {entity}{hint}")
    return problems
