"""Joint displays: each target's negotiability figures beside the interview evidence.

For every target, ``joint_displays`` puts the quantitative side next to the
qualitative side. The quantitative side is the ``scores`` row: frequency of
rank change, priority and typology cell. The qualitative side comes from
the interviews whose coded passages are linked to the target through
``quote_links``. Each display also carries the strongest quotes and a
meta-inference with the rule that produced it. ``TriangulationRules``
contains every threshold, so a researcher can state and change them.

The meta-inference compares two classifications:

- quantitative: "more" negotiable (the typology's ``negotiability_level``,
  or ``frequency >= negotiability_cut`` when a cut is given), "less"
  negotiable, or none (no score, or a target not eligible for scoring).
- qualitative: "negotiable" when at least ``min_bargaining_interviews``
  interviews code a bargaining strategy or channel on a passage about the
  target, and they outnumber the interviews that call it non-negotiable.
  "non-negotiable" when at least ``min_nonnegotiable_interviews`` interviews
  call it non-negotiable, and they outnumber the bargaining interviews.
  "split" when both thresholds are met with equal counts. Otherwise none.

The result is "convergent" (both sides agree), "divergent" (they disagree,
or the interviews are split on a scored target), "quantitative-only",
"qualitative-only" or "no-evidence".
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit import store
from qualkit.errors import InputError, QualkitError
from qualkit.redaction import Redactor

log = logging.getLogger(__name__)

CONVERGENT = "convergent"
DIVERGENT = "divergent"
QUALITATIVE_ONLY = "qualitative-only"
QUANTITATIVE_ONLY = "quantitative-only"
NO_EVIDENCE = "no-evidence"
META_INFERENCES = (
    CONVERGENT,
    DIVERGENT,
    QUALITATIVE_ONLY,
    QUANTITATIVE_ONLY,
    NO_EVIDENCE,
)

DEFAULT_STATUSES = ("accepted", "suggested")
DEFAULT_CITATION = (
    "Interview with a {level}-level official in {province} province (Interview #{id})"
)


@dataclass(frozen=True)
class TriangulationRules:
    """Thresholds and code lists behind the qualitative counts and the meta-inference."""

    # Codes (and their children) whose presence on a linked passage counts as
    # talk of bargaining over the target.
    bargaining_codes: tuple[str, ...] = ("strategy", "channel")
    # Codes under bargaining_codes that state the opposite and are not counted:
    # the weight (points) of a target cannot be bargained.
    excluded_codes: tuple[str, ...] = ("channel.nonnegotiable_weight",)
    # Codes that state that the target's value cannot be bargained.
    nonnegotiable_codes: tuple[str, ...] = ("target.nonnegotiable",)
    min_bargaining_interviews: int = 2
    min_nonnegotiable_interviews: int = 1
    # Frequency of rank change at or above which a target counts as "more"
    # negotiable. None uses the typology level stored with the scores.
    negotiability_cut: float | None = None
    # Quote selection: quotes shorter or longer than these (in characters)
    # rank after those within the bounds.
    min_quote_chars: int = 40
    max_quote_chars: int = 600
    # Quotes from one interview, beyond those flagged as key quotes.
    max_quotes_per_interview: int = 2
    # Codes counted as evidence on a quote when ranking quotes.
    evidence_codes: tuple[str, ...] = ("strategy", "channel", "target.nonnegotiable")

    @classmethod
    def from_mapping(
        cls, values: dict[str, Any] | None, *, path: str | None = None
    ) -> TriangulationRules:
        """Build rules from a mapping of field names to values; lists become tuples."""
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"Unknown triangulation setting {unknown[0]!r}.",
                path=path,
                fix=f"Use one of: {', '.join(sorted(known))}.",
            )
        code_fields = (
            "bargaining_codes",
            "excluded_codes",
            "nonnegotiable_codes",
            "evidence_codes",
        )
        for name, value in values.items():
            if isinstance(value, list):
                values[name] = tuple(value)
            elif name in code_fields and isinstance(value, str):
                # A single code id written without brackets in TOML.
                values[name] = (value,)
        try:
            rules = cls(**values)
        except TypeError as error:
            raise InputError(
                f"Invalid triangulation settings: {error}.", path=path
            ) from None
        rules.check(path=path)
        return rules

    def check(self, *, path: str | None = None) -> None:
        """Raise InputError if a threshold is out of range."""
        for name in (
            "min_bargaining_interviews",
            "min_nonnegotiable_interviews",
            "max_quotes_per_interview",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(
                    f"{name} must be a whole number of at least 1, not {value!r}.",
                    path=path,
                )
        if self.min_quote_chars < 0 or self.max_quote_chars < self.min_quote_chars:
            raise InputError(
                f"The quote length bounds {self.min_quote_chars}..{self.max_quote_chars} are invalid.",
                path=path,
                fix="Set min_quote_chars >= 0 and max_quote_chars >= min_quote_chars.",
            )
        if self.negotiability_cut is not None and not 0 <= self.negotiability_cut <= 1:
            raise InputError(
                f"negotiability_cut must be a frequency between 0 and 1, not {self.negotiability_cut!r}.",
                path=path,
            )


def code_matches(code_id: str, prefixes: tuple[str, ...]) -> bool:
    """Return True if ``code_id`` is one of ``prefixes`` or a descendant of one."""
    return any(
        code_id == prefix or code_id.startswith(prefix + ".") for prefix in prefixes
    )


def joint_displays(
    db: sqlite_utils.Database,
    *,
    statuses: tuple[str, ...] = DEFAULT_STATUSES,
    quotes_per_target: int = 5,
    rules: TriangulationRules | None = None,
    redactor: Any = None,
    citation: str | Callable[[dict[str, Any]], str] | None = None,
) -> list[dict[str, Any]]:
    """Build one joint display per target that has a score or a linked quote.

    Targets come in the researcher's order, then by name. ``citation`` is a
    format string with the fields {id}, {level}, {province}, {date} and
    {group}, or a function of the case dict. ``redactor`` (a
    ``qualkit.redaction.Redactor``) is applied to each quote's text and
    citation. A caller that writes files applies it to everything else it writes.
    """
    rules = rules or TriangulationRules()
    rules.check()
    if not statuses:
        raise QualkitError(
            "No coding statuses given. Pass at least one of accepted, suggested."
        )
    _warn_missing_codes(db, rules)
    cases = _cases(db)
    labels = dict(db.execute("SELECT id, label FROM codes").fetchall())
    scores = _scores(db)
    passages = _linked_passages(db, statuses, cases)
    cite = _citation_function(citation)

    displays = []
    targets = db.execute(
        "SELECT id, name, category FROM targets ORDER BY coalesce(researcher_order, 999999), name, id"
    ).fetchall()
    for target_id, name, category in targets:
        score = scores.get(target_id)
        target_passages = passages.get(target_id, [])
        if score is None and not target_passages:
            continue
        for passage in target_passages:
            _annotate(passage, rules)
        quantitative = _quantitative_side(score, rules)
        qualitative = _qualitative_side(target_passages, rules, labels)
        meta, rule = meta_inference(quantitative, qualitative, rules)
        quotes = select_quotes(target_passages, rules, quotes_per_target)
        displays.append(
            {
                "target_id": target_id,
                "name": name,
                "category": category,
                "quantitative": quantitative,
                "qualitative": qualitative,
                "quotes": [_quote_output(quote, cite, redactor) for quote in quotes],
                "quote_count": len(target_passages),
                "meta_inference": meta,
                "rule": rule,
            }
        )
    return displays


def triangulation_frame(
    displays: list[dict[str, Any]], redactor: Redactor | None = None
) -> pd.DataFrame:
    """Return one row per joint display: target, both classifications, meta-inference and rule.

    ``redactor`` is applied to the target name and the rule text.
    """
    redact = redactor.apply if redactor else (lambda text: text)
    rows = []
    for display in displays:
        quantitative = display["quantitative"]
        qualitative = display["qualitative"]
        rows.append(
            {
                "target": display["target_id"],
                "name": redact(display["name"]),
                "frequency": quantitative["frequency"],
                "negotiability": quantitative["negotiability"] or "",
                "bargaining_interviews": qualitative["bargaining_interviews"],
                "nonnegotiable_interviews": qualitative["nonnegotiable_interviews"],
                "interview_stance": qualitative["stance"] or "",
                "meta_inference": display["meta_inference"],
                "rule": redact(display["rule"]),
            }
        )
    columns = [
        "target",
        "name",
        "frequency",
        "negotiability",
        "bargaining_interviews",
        "nonnegotiable_interviews",
        "interview_stance",
        "meta_inference",
        "rule",
    ]
    return pd.DataFrame(rows, columns=columns)


# The two sides ---------------------------------------------------------------


def _quantitative_side(
    score: dict[str, Any] | None, rules: TriangulationRules
) -> dict[str, Any]:
    side: dict[str, Any] = {
        "scored": score is not None,
        "eligible": bool(score and score["eligible"]),
        "ineligible_reason": score["ineligible_reason"] if score else None,
        "years": score["years"] if score else None,
        "frequency": score["frequency"] if score else None,
        "observed": score["observed"] if score else None,
        "possible": score["possible"] if score else None,
        "mean_cv": score["mean_cv"] if score else None,
        "priority": score["mean_points"] if score else None,
        "priority_level": score["priority_level"] if score else None,
        "negotiability_level": score["negotiability_level"] if score else None,
        "cell": score["cell"] if score else None,
        "expected_response": score["expected_response"] if score else None,
        "negotiability": None,
    }
    if not side["eligible"]:
        return side
    if rules.negotiability_cut is not None and side["frequency"] is not None:
        side["negotiability"] = (
            "more" if side["frequency"] >= rules.negotiability_cut else "less"
        )
    else:
        side["negotiability"] = side["negotiability_level"]
    return side


def _qualitative_side(
    passages: list[dict[str, Any]], rules: TriangulationRules, labels: dict[str, str]
) -> dict[str, Any]:
    bargaining_cases: set[str] = set()
    nonnegotiable_cases: set[str] = set()
    all_cases: dict[str, dict[str, Any]] = {}
    code_passages: Counter[str] = Counter()
    code_cases: dict[str, set[str]] = defaultdict(set)
    for passage in passages:
        case_id = passage["case_id"]
        all_cases[case_id] = passage["case"]
        if passage["bargaining"]:
            bargaining_cases.add(case_id)
        if passage["nonnegotiable"]:
            nonnegotiable_cases.add(case_id)
        for code_id in passage["bargaining_codes"]:
            code_passages[code_id] += 1
            code_cases[code_id].add(case_id)

    def code_rows(prefix: str) -> list[dict[str, Any]]:
        chosen = [
            code_id for code_id in code_passages if code_matches(code_id, (prefix,))
        ]
        chosen.sort(
            key=lambda code_id: (
                -len(code_cases[code_id]),
                -code_passages[code_id],
                code_id,
            )
        )
        return [
            {
                "code": code_id,
                "label": labels.get(code_id, code_id),
                "interviews": len(code_cases[code_id]),
                "passages": code_passages[code_id],
            }
            for code_id in chosen
        ]

    bargaining_case_rows = [all_cases[case_id] for case_id in sorted(bargaining_cases)]
    side = {
        "interviews": len(all_cases),
        "bargaining_interviews": len(bargaining_cases),
        "nonnegotiable_interviews": len(nonnegotiable_cases),
        "bargaining_interview_ids": sorted(bargaining_cases),
        "nonnegotiable_interview_ids": sorted(nonnegotiable_cases),
        "levels": _count_field(bargaining_case_rows, "level"),
        "provinces": _count_field(bargaining_case_rows, "province"),
        "strategies": code_rows("strategy"),
        "channels": code_rows("channel"),
        "stance": None,
    }
    side["stance"] = _stance(
        side["bargaining_interviews"], side["nonnegotiable_interviews"], rules
    )
    return side


def _count_field(cases: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Count cases per value of ``name``; the most frequent first, then by value."""
    counts = Counter(case.get(name) or "unknown" for case in cases)
    return [
        {"value": value, "interviews": count}
        for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _stance(
    bargaining: int, nonnegotiable: int, rules: TriangulationRules
) -> str | None:
    enough_bargaining = bargaining >= rules.min_bargaining_interviews
    enough_nonnegotiable = nonnegotiable >= rules.min_nonnegotiable_interviews
    if enough_bargaining and bargaining > nonnegotiable:
        return "negotiable"
    if enough_nonnegotiable and nonnegotiable > bargaining:
        return "non-negotiable"
    if enough_bargaining and enough_nonnegotiable:
        return "split"
    return None


def meta_inference(
    quantitative: dict[str, Any], qualitative: dict[str, Any], rules: TriangulationRules
) -> tuple[str, str]:
    """Return the meta-inference for one target and the rule, in words, that produced it."""
    negotiability = quantitative["negotiability"]
    stance = qualitative["stance"]
    bargaining = qualitative["bargaining_interviews"]
    nonnegotiable = qualitative["nonnegotiable_interviews"]
    quant_text = _quantitative_text(quantitative, rules)
    qual_text = (
        f"{bargaining} interview(s) describe bargaining over it and {nonnegotiable} call it "
        f"non-negotiable (thresholds: {rules.min_bargaining_interviews} and "
        f"{rules.min_nonnegotiable_interviews})"
    )

    if negotiability is None and stance is None:
        return (
            NO_EVIDENCE,
            f"No quantitative classification ({quant_text}) and no qualitative one: {qual_text}.",
        )
    if negotiability is None:
        return (
            QUALITATIVE_ONLY,
            f"Interviews are {stance}: {qual_text}; no quantitative classification ({quant_text}).",
        )
    if stance is None:
        return (
            QUANTITATIVE_ONLY,
            f"Quantitatively {negotiability} negotiable ({quant_text}); too few interviews: {qual_text}.",
        )
    if stance == "split":
        return (
            DIVERGENT,
            f"Quantitatively {negotiability} negotiable ({quant_text}), but the interviews are split: {qual_text}.",
        )
    agree = (negotiability == "more") == (stance == "negotiable")
    verdict = CONVERGENT if agree else DIVERGENT
    relation = "agrees with" if agree else "contradicts"
    return verdict, (
        f"Quantitatively {negotiability} negotiable ({quant_text}), which {relation} the interviews, "
        f"which are {stance}: {qual_text}."
    )


def _quantitative_text(quantitative: dict[str, Any], rules: TriangulationRules) -> str:
    if not quantitative["scored"]:
        return "no score"
    if not quantitative["eligible"]:
        return (
            f"not eligible: {quantitative['ineligible_reason'] or 'no reason stored'}"
        )
    frequency = quantitative["frequency"]
    frequency_text = (
        "no frequency" if frequency is None else f"frequency {frequency:.2f}"
    )
    if rules.negotiability_cut is not None:
        return f"{frequency_text}, cut {rules.negotiability_cut:.2f}"
    return f"{frequency_text}, typology level {quantitative['negotiability_level']!r}"


# Passages and quotes ---------------------------------------------------------


def _cases(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    rows = db.execute(
        "SELECT id, province, level, date, appendix_group FROM cases ORDER BY id"
    ).fetchall()
    keys = ("id", "province", "level", "date", "group")
    return {row[0]: dict(zip(keys, row)) for row in rows}


def _scores(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    cursor = db.execute("SELECT * FROM scores")
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row)) for row in cursor]
    return {row["target_id"]: row for row in rows}


def _linked_passages(
    db: sqlite_utils.Database,
    statuses: tuple[str, ...],
    cases: dict[str, dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """Group linked codings by target and span: one passage per quoted span."""
    marks = ",".join("?" for _ in statuses)
    rows = db.execute(
        "SELECT l.target_id, c.id, c.source_id, s.case_id, c.start_offset, c.end_offset, "
        "c.quote, c.code_id, c.status, c.key_quote FROM quote_links l "
        "JOIN codings c ON c.id = l.coding_id JOIN sources s ON s.id = c.source_id "
        f"WHERE c.status IN ({marks}) ORDER BY l.target_id, c.source_id, c.start_offset, c.end_offset, c.id",
        list(statuses),
    ).fetchall()
    grouped: dict[tuple[str, str, int, int], dict[str, Any]] = {}
    for (
        target_id,
        coding_id,
        source_id,
        case_id,
        start,
        end,
        quote,
        code_id,
        status,
        key_quote,
    ) in rows:
        key = (target_id, source_id, start, end)
        passage = grouped.get(key)
        if passage is None:
            passage = grouped[key] = {
                "target_id": target_id,
                "source_id": source_id,
                "case_id": case_id,
                "case": cases.get(case_id, {"id": case_id}),
                "start": start,
                "end": end,
                "text": quote,
                "codes": [],
                "coding_ids": [],
                "statuses": set(),
                "key_quote": False,
            }
        passage["codes"].append(code_id)
        passage["coding_ids"].append(coding_id)
        passage["statuses"].add(status)
        passage["key_quote"] = passage["key_quote"] or bool(key_quote)

    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for passage in grouped.values():
        passage["codes"] = sorted(set(passage["codes"]))
        by_target[passage["target_id"]].append(passage)
    return by_target


def _annotate(passage: dict[str, Any], rules: TriangulationRules) -> None:
    codes = passage["codes"]
    passage["bargaining_codes"] = [
        code_id
        for code_id in codes
        if code_matches(code_id, rules.bargaining_codes)
        and not code_matches(code_id, rules.excluded_codes)
    ]
    passage["bargaining"] = bool(passage["bargaining_codes"])
    passage["nonnegotiable"] = any(
        code_matches(code_id, rules.nonnegotiable_codes) for code_id in codes
    )
    passage["evidence_codes"] = [
        code_id for code_id in codes if code_matches(code_id, rules.evidence_codes)
    ]


def quote_rank(passage: dict[str, Any], rules: TriangulationRules) -> tuple[Any, ...]:
    """Return the sort key of the quote selection rule; smaller keys are stronger quotes.

    In order: a key quote flag set by a coder, an accepted coding on the
    span, more evidence codes, a length within the bounds, then the source
    and offset so that the order is stable.
    """
    length = len(passage["text"] or "")
    within_bounds = rules.min_quote_chars <= length <= rules.max_quote_chars
    return (
        not passage["key_quote"],
        "accepted" not in passage["statuses"],
        -len(passage["evidence_codes"]),
        not within_bounds,
        passage["source_id"],
        passage["start"],
        passage["end"],
    )


def select_quotes(
    passages: list[dict[str, Any]], rules: TriangulationRules, limit: int
) -> list[dict[str, Any]]:
    """Pick up to ``limit`` passages by ``quote_rank``, at most ``max_quotes_per_interview`` from one interview.

    Key quotes rank first and have no per-interview cap, but count toward ``limit``.
    """
    for passage in passages:
        if "evidence_codes" not in passage:
            _annotate(passage, rules)
    if limit <= 0:
        return []
    chosen: list[dict[str, Any]] = []
    per_case: Counter[str] = Counter()
    for passage in sorted(passages, key=lambda item: quote_rank(item, rules)):
        if len(chosen) >= limit:
            break
        if (
            not passage["key_quote"]
            and per_case[passage["case_id"]] >= rules.max_quotes_per_interview
        ):
            continue
        chosen.append(passage)
        per_case[passage["case_id"]] += 1
    return chosen


def _quote_output(
    passage: dict[str, Any], cite: Callable[[dict[str, Any]], str], redactor: Any
) -> dict[str, Any]:
    case = passage["case"]
    status = (
        "accepted" if "accepted" in passage["statuses"] else min(passage["statuses"])
    )
    text = passage["text"]
    citation = cite(case)
    if redactor:
        text = redactor.apply(text)
        citation = redactor.apply(citation)
    return {
        "source_id": passage["source_id"],
        "case_id": passage["case_id"],
        "start": passage["start"],
        "end": passage["end"],
        "text": text,
        "codes": list(passage["codes"]),
        "evidence_codes": list(passage["evidence_codes"]),
        "coding_ids": list(passage["coding_ids"]),
        "status": status,
        "key_quote": passage["key_quote"],
        "case": dict(case),
        "citation": citation,
    }


def _citation_function(
    citation: str | Callable[[dict[str, Any]], str] | None,
) -> Callable[[dict[str, Any]], str]:
    if callable(citation):
        return citation
    template = citation or DEFAULT_CITATION

    def cite(case: dict[str, Any]) -> str:
        values = {
            "id": case.get("id") or "unknown",
            "level": case.get("level") or "unknown",
            "province": case.get("province") or "unknown",
            "date": case.get("date") or "",
            "group": case.get("group") or "",
        }
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError) as error:
            raise InputError(
                f"Invalid citation format {template!r} ({error}).",
                fix="Use only the fields {id}, {level}, {province}, {date} and {group}.",
            ) from None

    return cite


def _warn_missing_codes(db: sqlite_utils.Database, rules: TriangulationRules) -> None:
    known = [row[0] for row in db.execute("SELECT id FROM codes")]
    if not known:
        return
    for name in ("bargaining_codes", "nonnegotiable_codes"):
        for prefix in getattr(rules, name):
            if not any(code_matches(code_id, (prefix,)) for code_id in known):
                log.warning(
                    "Triangulation setting %s names code %r, which is not in the codebook.",
                    name,
                    prefix,
                )


# The key quote flag ----------------------------------------------------------


def set_key_quote(
    db: sqlite_utils.Database,
    coding_id: int,
    on: bool = True,
    *,
    coder: str,
    command: str = "code key-quote",
) -> bool:
    """Set or clear a coding's key quote flag, logged in the audit log; return False if unchanged.

    A key quote is shown first among its target's quotes in joint displays.
    Raises NotFoundError for an unknown coding and QualkitError for a
    rejected one.
    """
    from qualkit.audit import ChangeRecorder, check_coder_name
    from qualkit.coding import require_coding

    coder_name = check_coder_name(coder)
    with store.transaction(db):
        row = require_coding(db, coding_id)
        if on and row["status"] == "rejected":
            raise QualkitError(
                f"Coding #{coding_id} is rejected, so it cannot be a key quote. "
                "Accept it first with 'qualkit review', or flag another coding."
            )
        if bool(row["key_quote"]) == on:
            return False
        recorder = ChangeRecorder(db, coder_name, command)
        recorder.update(
            "codings", coding_id, {"key_quote": int(on), "updated_at": store.utc_now()}
        )
        store.touch(db)
    return True


def rules_as_dict(rules: TriangulationRules) -> dict[str, Any]:
    """Return the rules as plain values, for a report's record of the options used."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in asdict(rules).items()
    }


__all__ = [
    "CONVERGENT",
    "DIVERGENT",
    "META_INFERENCES",
    "NO_EVIDENCE",
    "QUALITATIVE_ONLY",
    "QUANTITATIVE_ONLY",
    "TriangulationRules",
    "joint_displays",
    "meta_inference",
    "quote_rank",
    "rules_as_dict",
    "select_quotes",
    "set_key_quote",
    "triangulation_frame",
]
