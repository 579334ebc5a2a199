"""PERSON evidence beside the NER model: salutations, sign-offs, headers, honorifics, name
fields, e-mail local parts; listed names only back up a cue."""

from __future__ import annotations

import pytest

from gateway.boundary import DetectionSpec, build_detector, load_ner
from gateway.boundary.names import has_name_token, name_hits
from tests.boundary.corpus import NER_MODEL


def _names(text: str) -> list[str]:
    return sorted({text[a:b] for (a, b, _), _ in name_hits(text)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dear Mr. John Smith,\nthanks for writing", ["John Smith"]),
        ("Hi Anna,\nplease call me", ["Anna"]),
        ("Hallo Jörg, danke!", ["Jörg"]),
        ("Bonjour Mme Lefèvre, merci", ["Lefèvre"]),
        ("Thanks, Priya", ["Priya"]),
        ("Regards,\nMaría José García", ["María José García"]),
        ("Mit freundlichen Grüßen\nHans-Peter Müller", ["Hans-Peter Müller"]),
        ("Cordialement,\n-- Jean Dupont", ["Jean Dupont"]),
        ("From: Jane Doe <jane.doe@example.com>", ["Jane Doe"]),
        ('Cc: "Okafor, Chidi" <chidi@example.org>', ["Chidi", "Okafor, Chidi"]),
        ("To: Piet de Vries <piet@example.nl>", ["Piet de Vries"]),
        ("Herr Müller rief an", ["Müller"]),
        ("la Sra. Fernández llamó", ["Fernández"]),
        ("Dr Aisha Khan reviewed it", ["Aisha Khan"]),
        ('{"customer": "Ana Lima", "file_name": "Report Q3"}', ["Ana Lima"]),
        ("assignee: Tomasz Kowalski\nstatus: open", ["Tomasz Kowalski"]),
        ("patient=Olga Nowak ward=3", ["Olga Nowak"]),
        (
            "id,full_name,email\n1,Luca Rossi,lr@x.it\n2,Mei Tanaka,mt@x.jp\n",
            ["Luca Rossi", "Mei Tanaka"],
        ),
        (
            "INSERT INTO p (id, owner) VALUES (1, 'Olga Nowak'), (2, 'Sven Berg');",
            ["Olga Nowak", "Sven Berg"],
        ),
        ("Kevin O'Brien wrote; mail kevin.obrien@acme.io", ["Kevin O'Brien"]),
        ("jdoe@x.com says John Doe agreed", ["John Doe"]),
        ("assigned to Priya Patel yesterday", ["Priya Patel"]),
        ("a call from Lena Fischer today", ["Lena Fischer"]),
        # Look-alikes: cues without a name, names of things, a listed word alone.
        ("Best regards,\nThe Support Team", []),
        ("Hi team, hi all, dear customer", []),
        ("from Paris to Berlin for Monday", []),
        ('{"file_name": "Annual Report", "hostname": "Web Server"}', []),
        ("Thanks for the quick fix", []),
        ("Grant access to the bucket; Mark the ticket done", []),
        ("From: billing@example.com", []),
    ],
)
def test_name_cues(text: str, expected: list[str]) -> None:
    assert _names(text) == expected


def test_name_tokens_gate_ner() -> None:
    assert has_name_token("ping from Jane")
    assert has_name_token("émile et Éloïse")
    assert not has_name_token('{"level": "info", "msg": "cache miss", "ms": 12}')


def test_the_detector_reports_cues_with_the_ner_model() -> None:
    detector = build_detector(DetectionSpec(frozenset({"PERSON"})), load_ner("spacy", NER_MODEL))
    text = "ticket 4411\nregards,\nSiobhán Ní Bhriain"
    assert [(text[f.start : f.end], f.entity) for f in detector.find(text)] == [
        ("Siobhán Ní Bhriain", "PERSON")
    ]
