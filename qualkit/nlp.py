"""spaCy pipelines for English and Chinese transcripts.

Pipelines are blank (``spacy.blank``) with a rule-based sentencizer, so
nothing is downloaded at run time; Chinese uses the jieba word segmenter.
A user may name an installed trained pipeline instead.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING

from qualkit.errors import QualkitError

if TYPE_CHECKING:
    from spacy.language import Language

log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh")
MAX_TEXT_LENGTH = 100_000_000
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ffff]")


def detect_language(text: str) -> str:
    """Guess ``zh`` when over 20% of the letters are CJK ideographs, else ``en``."""
    sample = text[:20000]
    letters = sum(1 for char in sample if char.isalpha())
    if letters == 0:
        return "en"
    return "zh" if len(_CJK.findall(sample)) / letters > 0.2 else "en"


@functools.lru_cache(maxsize=8)
def load_pipeline(language: str, model: str | None = None) -> Language:
    """Return the sentence-splitting pipeline for ``language``.

    ``model`` names an installed trained pipeline (``en_core_web_sm``) to use
    instead of the blank one.
    """
    # spaCy takes about a second to import; commands that never tokenize skip it.
    import spacy

    if language not in LANGUAGES:
        raise QualkitError(
            f"Unsupported language {language!r}. Use one of: {', '.join(LANGUAGES)}."
        )
    if model:
        try:
            nlp = spacy.load(model)
        except OSError as error:
            raise QualkitError(
                f"spaCy pipeline {model!r} is not installed ({error}). Install it "
                "with pip, or leave the model setting empty to use a blank pipeline."
            ) from None
    elif language == "zh":
        import jieba

        # jieba logs its dictionary loading at DEBUG through its own handler.
        jieba.setLogLevel(logging.WARNING)
        nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    else:
        nlp = spacy.blank(language)
    if not (nlp.has_pipe("parser") or nlp.has_pipe("senter")):
        nlp.add_pipe("sentencizer")
        # spaCy's 1,000,000-character cap protects parsers' memory; a blank
        # pipeline with a sentencizer handles a whole unbroken transcript.
        nlp.max_length = MAX_TEXT_LENGTH

    return nlp


def add_words_to_segmenter(words: list[str]) -> None:
    """Teach jieba the codebook's Chinese terms, so it keeps them as one token."""
    import jieba

    for word in words:
        if _CJK.search(word):
            jieba.add_word(word)
