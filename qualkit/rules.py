"""Compile a codebook's rules into spaCy matchers.

English keywords match lemma by lemma without lemmatizing the corpus: each
keyword is expanded into every inflected form that spaCy's lookup lemma table
(spacy-lookups-data) lists for its words, and those forms go into a
case-insensitive PhraseMatcher. ``LEMMA`` in Matcher patterns is rewritten the
same way. This keeps auto-coding near the speed of bare tokenization.

Chinese keywords are matched on a character-per-token copy of the text, so a
keyword matches whatever the word segmenter does with its characters.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from qualkit.codebook import Codebook

# A keyword whose words have many forms would otherwise expand into thousands
# of phrases; past this many, further combinations are dropped.
MAX_FORMS_PER_KEYWORD = 512


@dataclass(frozen=True)
class Match:
    """A rule hit: character offsets relative to the matched text."""

    code_id: str
    start: int
    end: int
    rule: str


@functools.lru_cache(maxsize=1)
def _english_forms() -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    """Load spacy-lookups-data's English lemma table and invert it."""
    import spacy_lookups_data
    import srsly

    # The package lists "en_lemma_lookup.json" but ships it gzipped.
    path = Path(str(spacy_lookups_data.en["lemma_lookup"]))
    if path.exists():
        table = srsly.read_json(path)
    else:
        table = srsly.read_gzip_json(path.with_name(path.name + ".gz"))
    lemma_of: dict[str, str] = {}
    forms: dict[str, set[str]] = defaultdict(set)
    for form, lemma in table.items():
        form_lower, lemma_lower = form.lower(), lemma.lower()
        lemma_of.setdefault(form_lower, lemma_lower)
        forms[lemma_lower].add(form_lower)

    return lemma_of, {lemma: frozenset(values) for lemma, values in forms.items()}


def word_forms(word: str) -> frozenset[str]:
    """Return ``word`` lower-cased with the forms the lookup table gives it.

    Keywords are written as base forms, so ``word`` is first taken as a lemma
    itself; only a word that is no lemma in the table ("talked") falls back
    to its own lemma. Taking every word through the table first would let
    "number" match "numb", which the table lists as its lemma.
    """
    lemma_of, forms = _english_forms()
    lower = word.lower()
    if lower in forms:
        return frozenset({lower} | forms[lower])
    if lower in STOP_WORDS:
        # The table's guesses for function words ("as" -> "a") are noise.
        return frozenset({lower})
    lemma = lemma_of.get(lower, lower)
    return frozenset({lower, lemma} | forms.get(lemma, frozenset()))


def expand_keyword(nlp: Language, keyword: str) -> list[str]:
    """Return the phrases, one per combination of word forms, for ``keyword``."""
    words = [token.text for token in nlp.make_doc(keyword)]
    choices = [sorted(word_forms(word)) for word in words]
    phrases = []
    for combination in itertools.islice(itertools.product(*choices), MAX_FORMS_PER_KEYWORD):
        phrases.append(" ".join(combination))
    return phrases


def _rewrite_lemma(token: dict[str, Any]) -> dict[str, Any]:
    token = {str(key).upper(): value for key, value in token.items()}
    lemma = token.pop("LEMMA", None)
    if lemma is None:
        return token
    lemmas = lemma.get("IN", []) if isinstance(lemma, dict) else [lemma]
    forms = sorted(set().union(*(word_forms(str(item)) for item in lemmas)))
    token["LOWER"] = {"IN": forms}
    return token


class RuleSet:
    """The compiled rules of a codebook for one language."""

    def __init__(self, codebook: Codebook, nlp: Language, language: str) -> None:
        self.language = language
        self.nlp = nlp
        self.phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.tokens = Matcher(nlp.vocab)
        self.regexes: list[tuple[str, re.Pattern[str], str]] = []
        self.excludes: dict[str, tuple[str, ...]] = {}
        self.keyword_of: dict[tuple[str, str], str] = {}
        for code in codebook.codes.values():
            rules = code.rules.get(language)
            if rules is None or rules.is_empty():
                continue
            self.excludes[code.id] = tuple(x.lower() for x in code.exclude)
            self._add_keywords(code.id, rules.keywords)
            for index, pattern in enumerate(rules.patterns):
                self.tokens.add(f"{code.id}|pattern {index + 1}", [[_rewrite_lemma(t) for t in pattern]])
            for expression in rules.regex:
                compiled = re.compile(expression, re.IGNORECASE)
                self.regexes.append((code.id, compiled, f"regex {expression}"))

    def _add_keywords(self, code_id: str, keywords: tuple[str, ...]) -> None:
        for keyword in keywords:
            key = f"{code_id}|keyword {keyword}"
            if self.language == "zh":
                patterns = [_char_doc(self.nlp, keyword.lower())]
            else:
                patterns = [self.nlp.make_doc(p) for p in expand_keyword(self.nlp, keyword)]
            self.phrases.add(key, patterns)

    def is_empty(self) -> bool:
        """Return True when no code has rules in this language."""
        return not (len(self.phrases) or len(self.tokens) or self.regexes)

    def match(self, doc: Doc) -> list[Match]:
        """Return every rule hit in ``doc``, offsets relative to ``doc.text``."""
        hits: list[Match] = []
        # Doc.text joins every token on each access, so read it once.
        text = doc.text
        if self.language == "zh":
            hits.extend(self._phrase_hits(_char_doc(self.nlp, text.lower())))
        else:
            hits.extend(self._phrase_hits(doc))
        token_hits = self.tokens(doc) if len(self.tokens) else []
        for key, start, end in token_hits:
            code_id, rule = self.nlp.vocab.strings[key].split("|", 1)
            hits.append(Match(code_id, doc[start].idx, doc[end - 1].idx + len(doc[end - 1]), rule))
        for code_id, expression, rule in self.regexes:
            for found in expression.finditer(text):
                hits.append(Match(code_id, found.start(), found.end(), rule))
        return hits

    def _phrase_hits(self, doc: Doc) -> list[Match]:
        hits = []
        for key, start, end in self.phrases(doc):
            code_id, rule = self.nlp.vocab.strings[key].split("|", 1)
            span = doc[start:end]
            hits.append(Match(code_id, span.start_char, span.end_char, rule))
        return hits


def _char_doc(nlp: Language, text: str) -> Doc:
    """Build a Doc with one token per character, whitespace included."""
    return Doc(nlp.vocab, words=list(text), spaces=[False] * len(text))
