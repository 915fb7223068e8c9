"""Token offsets and sentences read as arrays equal what spaCy's objects report."""

from __future__ import annotations

import random

import pytest

from qualkit.nlp import load_pipeline
from qualkit.rules import TokenOffsets
from qualkit.sources import sentence_spans

FIXED_TEXTS = [
    "",
    " ",
    "Hello there.  How are you? Fine!! ok  ",
    "We beat the target by a wide margin... Then (they said) nothing!",
    "你好。我很好！？ 谢谢……好的",
    "“好。”他说。\n\n第二段。",
]


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("ab cd.!?。！？…“”\"')(\n12,;:-好的")
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(count)]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_offsets_equal_spacy_spans(language: str) -> None:
    nlp = load_pipeline(language)
    for text in FIXED_TEXTS + random_texts(300, seed=7):
        doc = nlp(text)
        offsets = TokenOffsets(doc)
        assert offsets.starts == [token.idx for token in doc], text
        assert offsets.ends == [token.idx + len(token) for token in doc], text
        assert offsets.sentences() == [(s.start_char, s.end_char) for s in doc.sents], text
        for token in doc:
            sentence = token.sent
            assert offsets.sentence_of(token.i) == (sentence.start, sentence.end), text


def trimmed_sentences(doc: object) -> list[tuple[int, int]]:
    """Return the sentences through spaCy's Span objects, trimmed of whitespace."""
    spans = []
    for sentence in doc.sents:  # type: ignore[attr-defined]
        start, end = sentence.start_char, sentence.end_char
        while start < end and doc.text[start].isspace():  # type: ignore[attr-defined]
            start += 1
        while end > start and doc.text[end - 1].isspace():  # type: ignore[attr-defined]
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


@pytest.mark.parametrize("language", ["en", "zh"])
def test_sentence_spans_equal_span_objects(language: str) -> None:
    nlp = load_pipeline(language)
    for text in FIXED_TEXTS + random_texts(100, seed=11):
        doc = nlp(text)
        assert sentence_spans(doc, text) == trimmed_sentences(doc), text
        assert sentence_spans(doc) == trimmed_sentences(doc), text
