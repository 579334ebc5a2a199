"""Normalization folds obfuscation; spans found on the folded text map back to the original."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.boundary import DetectionSpec, build_detector
from gateway.boundary.normalize import normalize


def test_ascii_is_returned_as_it_is() -> None:
    text = "plain ascii 4111"
    assert normalize(text).text is text
    assert normalize(text).span(6, 11) == (6, 11)


def test_fold_full_width_non_latin_digits_and_invisible_characters() -> None:
    norm = normalize("４１\u200b１１ ٤١١١ १२३ ＠ ﬁ\u00ad")
    assert norm.text == "4111 4111 123 @ fi"


def test_spans_map_back_through_deletions_and_expansions() -> None:
    text = "ﬁle a\u200bb@exa\u2060mple.com"
    norm = normalize(text)
    start = norm.text.index("ab@")
    assert text[slice(*norm.span(start, len(norm.text)))] == "a\u200bb@exa\u2060mple.com"
    assert text[slice(*norm.span(0, 2))] == "ﬁ"  # both folded letters come from one character


_NOISE = st.sampled_from(["\u200b", "\u200d", "\ufeff", "\u00ad", "\u2060"])


@given(st.lists(st.tuples(st.booleans(), _NOISE), min_size=16, max_size=16))
def test_a_card_with_noise_anywhere_is_found_at_its_original_span(
    noise: list[tuple[bool, str]],
) -> None:
    digits = "4111111111111111"
    card = "".join(d + (n if put else "") for d, (put, n) in zip(digits, noise, strict=True))
    card = card.rstrip("\u200b\u200d\ufeff\u00ad\u2060")
    text = f"pay with {card} now"
    findings = build_detector(DetectionSpec(frozenset({"CREDIT_CARD"})), None).find(text)
    assert [(f.start, f.end) for f in findings] == [(9, 9 + len(card))]
