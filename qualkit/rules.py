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
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacy.attrs import IDX, LENGTH, SENT_START
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

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
    itself. Only a word that is no lemma in the table ("talked") falls back
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
    """The compiled rules of a codebook for one language.

    A token pattern with required words (tokens it cannot match without)
    runs only on sentences that contain one word of each, found first by a
    PhraseMatcher, so it matches only within one sentence. A regular
    expression runs only on text that contains its longest required
    literal. The literal check compares lower-cased text, so a regular
    expression that matches only through Unicode case folding (the Kelvin
    sign for "k") is skipped.
    """

    def __init__(self, codebook: Codebook, nlp: Language, language: str) -> None:
        self.language = language
        self.nlp = nlp
        self.phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        # Each pattern with required words has a Matcher of its own, and
        # patterns_by_word lists the patterns that require each word.
        self.anchored: list[tuple[Matcher, list[frozenset[str]]]] = []
        self.patterns_by_word: dict[str, list[int]] = defaultdict(list)
        self.unanchored = Matcher(nlp.vocab)
        self.anchors = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.regexes: list[tuple[str, re.Pattern[str], str, str | None]] = []
        self.excludes: dict[str, tuple[str, ...]] = {}
        for code in codebook.codes.values():
            rules = code.rules.get(language)
            if rules is None or rules.is_empty():
                continue
            self.excludes[code.id] = tuple(x.lower() for x in code.exclude)
            self._add_keywords(code.id, rules.keywords)
            for index, pattern in enumerate(rules.patterns):
                rewritten = [_rewrite_lemma(token) for token in pattern]
                key = f"{code.id}|pattern {index + 1}"
                required = _required_words(rewritten)
                if required:
                    matcher = Matcher(nlp.vocab)
                    matcher.add(key, [rewritten])
                    for word in set().union(*required):
                        self.patterns_by_word[word].append(len(self.anchored))
                    self.anchored.append((matcher, required))
                else:
                    self.unanchored.add(key, [rewritten])
            for expression in rules.regex:
                compiled = re.compile(expression, re.IGNORECASE)
                literal = required_literal(expression)
                self.regexes.append((code.id, compiled, f"regex {expression}", literal))
        for word in sorted(self.patterns_by_word):
            self.anchors.add(word, [nlp.make_doc(word)])

    def _add_keywords(self, code_id: str, keywords: tuple[str, ...]) -> None:
        for keyword in keywords:
            key = f"{code_id}|keyword {keyword}"
            if self.language == "zh":
                patterns = [_char_doc(self.nlp, lower_same_length(keyword))]
            else:
                patterns = [self.nlp.make_doc(p) for p in expand_keyword(self.nlp, keyword)]
            self.phrases.add(key, patterns)

    def is_empty(self) -> bool:
        """Return True when no code has rules in this language."""
        return not (
            len(self.phrases) or self.anchored or len(self.unanchored) or self.regexes
        )

    @property
    def needs_tokens(self) -> bool:
        """True when matching needs the language's own tokenization.

        Chinese keywords and regular expressions work on the text alone, so
        a Chinese rule set without token patterns skips the word segmenter.
        """
        return self.language != "zh" or bool(self.anchored or len(self.unanchored))

    def match_text(self, text: str) -> list[Match]:
        """Return every hit in ``text``; only for rule sets that do not need tokens."""
        hits = self._phrase_hits(_char_doc(self.nlp, lower_same_length(text)))
        hits.extend(self._regex_hits(text))
        return hits

    def match(self, doc: Doc, text: str | None = None) -> list[Match]:
        """Return every rule hit in ``doc``, offsets relative to ``doc.text``.

        ``text`` is the string the doc was made from, which equals
        ``doc.text``. Passing it saves rebuilding the text from the tokens.
        """
        hits: list[Match] = []
        if text is None:
            text = doc.text
        offsets = TokenOffsets(doc)
        if self.language == "zh":
            hits.extend(self._phrase_hits(_char_doc(self.nlp, lower_same_length(text))))
        else:
            hits.extend(self._phrase_hits(doc, offsets))
        hits.extend(self._pattern_hits(doc, offsets))
        hits.extend(self._regex_hits(text))
        return hits

    def _regex_hits(self, text: str) -> list[Match]:
        hits = []
        lowered = text.lower()
        for code_id, expression, rule, literal in self.regexes:
            if literal is not None and literal not in lowered:
                continue
            for found in expression.finditer(text):
                hits.append(Match(code_id, found.start(), found.end(), rule))
        return hits

    def _phrase_hits(self, doc: Doc, offsets: TokenOffsets | None = None) -> list[Match]:
        """Return the PhraseMatcher's hits. Without ``offsets``, ``doc`` has one token per character."""
        hits = []
        for key, start, end in self.phrases(doc):
            code_id, rule = self.nlp.vocab.strings[key].split("|", 1)
            if offsets is None:
                hits.append(Match(code_id, start, end, rule))
            else:
                hits.append(Match(code_id, offsets.starts[start], offsets.end_char(end), rule))
        return hits

    def _pattern_hits(self, doc: Doc, offsets: TokenOffsets) -> list[Match]:
        found: list[tuple[int, int, int]] = []
        if len(self.unanchored):
            found.extend(self.unanchored(doc))
        if self.anchored:
            found.extend(self._anchored_hits(doc, offsets))
        hits = []
        for key, start, end in found:
            code_id, rule = self.nlp.vocab.strings[key].split("|", 1)
            hits.append(Match(code_id, offsets.starts[start], offsets.end_char(end), rule))
        return hits


    def _anchored_hits(self, doc: Doc, offsets: TokenOffsets) -> list[tuple[int, int, int]]:
        """Run each pattern with required words on the sentences that contain them all.

        Hits come in pattern order, then sentence order.
        """
        sentences: dict[int, int] = {}
        present: dict[int, set[str]] = defaultdict(set)
        for key, start, _ in self.anchors(doc):
            first, last = offsets.sentence_of(start)
            sentences[first] = last
            present[first].add(self.nlp.vocab.strings[key])
        runs = []
        for first, words in present.items():
            candidates = set().union(*(self.patterns_by_word[word] for word in words))
            for index in candidates:
                required = self.anchored[index][1]
                if all(not words.isdisjoint(options) for options in required):
                    runs.append((index, first))
        runs.sort()
        found = []
        for index, first in runs:
            matcher = self.anchored[index][0]
            for key, start, end in matcher(doc[first : sentences[first]]):
                found.append((key, first + start, first + end))
        return found


class TokenOffsets:
    """Character offsets and sentence starts of a doc's tokens, read in one call.

    ``Doc.to_array`` copies the token attributes without building a Python
    ``Token`` per token, which iterating the doc or slicing it into sentence
    spans does. Offsets equal those of spaCy's ``Token.idx``,
    ``Span.start_char``/``end_char`` and sentences equal ``Doc.sents``.
    """

    def __init__(self, doc: Doc) -> None:
        self.length = len(doc)
        if self.length == 0:
            self.starts: list[int] = []
            self.ends: list[int] = []
            self.sentence_starts: list[int] = []
            return
        columns = doc.to_array([IDX, LENGTH, SENT_START]).astype("int64")
        self.starts = columns[:, 0].tolist()
        self.ends = (columns[:, 0] + columns[:, 1]).tolist()
        if "sents" in doc.user_hooks:
            # A pipeline may define sentences by a hook instead of the
            # SENT_START attribute, so ask spaCy for them.
            self.sentence_starts = [sentence.start for sentence in doc.sents]
        else:
            # Doc.sents starts a sentence at token 0 and at each later token
            # whose SENT_START is 1.
            flags = columns[:, 2]
            flags[0] = 1
            self.sentence_starts = (flags == 1).nonzero()[0].tolist()

    def end_char(self, end: int) -> int:
        """Return the character offset just after the token before ``end``."""
        return self.ends[end - 1] if end > 0 else 0

    def sentence_of(self, token: int) -> tuple[int, int]:
        """Return (first token, end token) of the sentence that contains ``token``."""
        index = bisect_right(self.sentence_starts, token) - 1
        first = self.sentence_starts[index]
        if index + 1 < len(self.sentence_starts):
            return first, self.sentence_starts[index + 1]
        return first, self.length

    def sentences(self) -> list[tuple[int, int]]:
        """Return the (start, end) character offsets of each sentence, untrimmed."""
        bounds = self.sentence_starts + [self.length]
        return [
            (self.starts[first], self.ends[end - 1])
            for first, end in zip(bounds, bounds[1:])
            if end > first
        ]


def _required_words(pattern: list[dict[str, Any]]) -> list[frozenset[str]]:
    """Return, for each token the pattern cannot match without, its allowed words.

    A token without an operator (or with "+") constrained by LOWER, ORTH or
    TEXT to literal strings counts. A sentence can contain a match only if it
    contains one word of every set. An empty list means the pattern has no
    such token and must run on every token.
    """
    required = []
    for token in pattern:
        if token.get("OP", "1") not in ("1", "+"):
            continue
        for attribute in ("LOWER", "ORTH", "TEXT"):
            value = token.get(attribute)
            if isinstance(value, str):
                required.append(frozenset({value.lower()}))
                break
            if isinstance(value, dict) and set(value) == {"IN"}:
                required.append(frozenset(str(item).lower() for item in value["IN"]))
                break
    return required


def required_literal(expression: str) -> str | None:
    """Return the longest literal text every match of ``expression`` contains.

    The standard library's regular expression parser does the analysis.
    Returns None when the expression has no such literal of three or more
    characters (a top level alternation, for example) or cannot be parsed.
    """
    try:
        from re import _constants as constants
        from re import _parser as parser
    except ImportError:  # pragma: no cover - Python 3.10 names
        import sre_constants as constants  # type: ignore[no-redef]
        import sre_parse as parser  # type: ignore[no-redef]
    try:
        parsed = parser.parse(expression, re.IGNORECASE)
    except (re.error, RecursionError):
        return None
    best, run = "", ""
    for op, argument in parsed:
        if op is constants.LITERAL:
            run += chr(argument).lower()
            best = max(best, run, key=len)
        else:
            run = ""
    return best if len(best) >= 3 else None


def lower_same_length(text: str) -> str:
    """Lower-case ``text`` without changing its length, so offsets still hold.

    ``str.lower`` turns a few characters into two ("İ" into "i̇"); those
    characters are kept as they are.
    """
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(char.lower() if len(char.lower()) == 1 else char for char in text)


def _char_doc(nlp: Language, text: str) -> Doc:
    """Build a Doc with one token per character, whitespace included."""
    return Doc(nlp.vocab, words=list(text), spaces=[False] * len(text))
