"""The record's canonical JSON: what the hash chain covers."""

from __future__ import annotations

import dataclasses

import orjson

from gateway.audit.record import AuditRecord
from tests.audit.conftest import record


def test_fields_are_declared_in_sorted_order() -> None:
    # to_json relies on it: orjson writes a dataclass's fields in their declared order.
    names = [f.name for f in dataclasses.fields(AuditRecord)]
    assert names == sorted(names)


def test_to_json_is_the_fields_with_every_key_sorted() -> None:
    r = record(
        1,
        entities={"request": {"mask": {"PERSON": 1, "EMAIL_ADDRESS": 2}}, "answer": {}},
        candidate={"version": "v2", "decision": "deny", "differs": True},
        fingerprints={"tools": "ab", "instructions": "cd"},
    )
    values = {f.name: getattr(r, f.name) for f in dataclasses.fields(AuditRecord)}
    assert r.to_json() == orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    assert r.to_json().startswith(b'{"actual_usd":null,"attempts":1,')
    assert b'"entities":{"answer":{},"request":{"mask":{"EMAIL_ADDRESS":2,"PERSON":1}}}' in (
        r.to_json()
    )
    assert AuditRecord.from_json(r.to_json()) == r
