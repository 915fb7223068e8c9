"""Tests of the redaction list: literals, prefixes, built-in patterns and errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qualkit.errors import InputError
from qualkit.redaction import DEFAULT_REPLACEMENT, Redactor


def write_list(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "redact.txt"
    path.write_bytes(text.encode(encoding))
    return path


def test_literal_case_insensitive(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "Zhang Wei\n"))

    assert (
        redactor.apply("Met ZHANG WEI and zhang wei.")
        == "Met [REDACTED] and [REDACTED]."
    )


def test_literal_spans_line_break(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "Zhang Wei\n"))

    assert redactor.apply("Zhang\n  Wei said") == "[REDACTED] said"


def test_chinese_term_inside_sentence(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "张伟 => [官员甲]\n贵阳\n"))

    assert redactor.apply("张伟说贵阳市的指标") == "[官员甲]说[REDACTED]市的指标"


def test_comments_blank_lines_and_bom(tmp_path: Path) -> None:
    path = write_list(
        tmp_path, "\ufeff# people\n\n   \nLi Ming\n# Li Ming is listed above\n"
    )
    redactor = Redactor.from_file(path)

    assert len(redactor) == 1
    assert redactor.apply("Li Ming") == DEFAULT_REPLACEMENT


def test_hash_inside_term_is_kept(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "Interview #G36S64\n"))

    assert redactor.apply("(Interview #G36S64)") == "([REDACTED])"


def test_longest_overlapping_term_wins(tmp_path: Path) -> None:
    redactor = Redactor.from_file(
        write_list(tmp_path, "Zhang => [A]\nZhang Wei => [B]\n")
    )

    assert redactor.apply("Zhang Wei and Zhang") == "[B] and [A]"


def test_overlapping_names_leave_no_fragment(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "Zhang Wei\nWei Guo\n"))

    redacted = redactor.apply("Zhang Wei Guo came.")

    assert redacted == "[REDACTED] came."
    assert "Guo" not in redacted


def test_replacement_not_redacted_again(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "Wang => secret\nsecret\n"))

    assert redactor.apply("Wang") == "secret"


def test_word_prefix_keeps_longer_words(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "word:Li\n"))

    assert redactor.apply("Li's policy, Li.") == "[REDACTED]'s policy, [REDACTED]."


def test_plain_literal_matches_inside_words(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "Wang\n"))

    assert redactor.apply("Wangfujing") == "[REDACTED]fujing"


def test_regex_term_case_sensitive(tmp_path: Path) -> None:
    redactor = Redactor.from_file(
        write_list(tmp_path, r"re:G\d{2}S\d{2,3} => [ID]" + "\n")
    )

    assert redactor.apply("G36S64 g36s64") == "[ID] g36s64"


def test_empty_replacement_removes_text(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "(secret) =>\n"))

    assert redactor.apply("a (secret) b") == "a  b"


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        pytest.param(
            "cn-mobile", "电话13812345678。", "电话[REDACTED]。", id="cn-mobile-bare"
        ),
        pytest.param(
            "cn-mobile",
            "call +86 138 1234 5678",
            "call [REDACTED]",
            id="cn-mobile-grouped",
        ),
        pytest.param(
            "cn-mobile",
            "order 213812345678",
            "order 213812345678",
            id="cn-mobile-longer-digits",
        ),
        pytest.param("cn-landline", "0851-86123456", "[REDACTED]", id="cn-landline"),
        pytest.param("cn-id", "ID 52010119800101123X.", "ID [REDACTED].", id="cn-id"),
        pytest.param(
            "email",
            "write to li.ming@gov.example.cn today",
            "write to [REDACTED] today",
            id="email",
        ),
        pytest.param(
            "phone", "+44 20 7946 0958", "[REDACTED]", id="phone-international"
        ),
        pytest.param("phone", "(555) 123-4567", "[REDACTED]", id="phone-area-code"),
        pytest.param("phone", "555-123-4567", "[REDACTED]", id="phone-dashes"),
        pytest.param(
            "phone",
            "2011-2012, 2014-2015 14 cities",
            "2011-2012, 2014-2015 14 cities",
            id="phone-years-kept",
        ),
        pytest.param("phone", "0.93 (26/28)", "0.93 (26/28)", id="phone-fraction-kept"),
    ],
)
def test_builtin_patterns(
    tmp_path: Path, pattern: str, text: str, expected: str
) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, f"pattern: {pattern}\n"))

    assert redactor.apply(text) == expected


def test_terms_found_in_list_order(tmp_path: Path) -> None:
    redactor = Redactor.from_file(
        write_list(tmp_path, "Zhang Wei\npattern: email\n贵阳\n")
    )

    assert redactor.terms_found("贵阳 and zhang wei") == ["Zhang Wei", "贵阳"]
    assert redactor.terms_found("nothing here") == []


def test_none_redactor_is_false_and_identity() -> None:
    redactor = Redactor.none()

    assert not redactor
    assert redactor.apply("Zhang Wei") == "Zhang Wei"
    assert redactor.apply(None) is None
    assert redactor.apply(3) == 3


def test_bad_regex_names_file_and_line(tmp_path: Path) -> None:
    path = write_list(tmp_path, "# header\nZhang\nre:(unclosed\n")

    with pytest.raises(InputError) as raised:
        Redactor.from_file(path)

    assert raised.value.path == str(path)
    assert raised.value.line == 3
    assert raised.value.fix


def test_empty_match_regex_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        Redactor.from_file(write_list(tmp_path, "re:x*\n"))

    assert raised.value.line == 1
    assert "empty string" in raised.value.message


def test_unknown_pattern_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        Redactor.from_file(write_list(tmp_path, "pattern: fax\n"))

    assert "cn-mobile" in raised.value.fix


def test_missing_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        Redactor.from_file(tmp_path / "absent.txt")

    assert raised.value.path == str(tmp_path / "absent.txt")


def test_non_utf8_file_reports_line(tmp_path: Path) -> None:
    path = write_list(tmp_path, "Zhang\n张伟\n", encoding="gb18030")

    with pytest.raises(InputError) as raised:
        Redactor.from_file(path)

    assert raised.value.line == 2
    assert "UTF-8" in raised.value.fix


def test_spans_match_apply(tmp_path: Path) -> None:
    redactor = Redactor.from_file(write_list(tmp_path, "Zhang Wei => [A]\nWei Guo\n"))
    text = "Met Zhang Wei Guo and 张伟."

    spans = redactor.spans(text)

    assert spans == [(4, 17, "[A]")]
    assert redactor.apply(text) == "Met [A] and 张伟."
    assert Redactor.none().spans(text) == []


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(alphabet="abAB张伟 ", min_size=1, max_size=4).filter(str.strip),
    text=st.text(alphabet="abAB张伟 \n", max_size=30),
)
def test_literal_never_survives(name: str, text: str) -> None:
    # A replacement without letters, so that it cannot spell the name itself.
    redactor = Redactor.from_lines([f"{name} => #"])

    redacted = redactor.apply(text)
    pattern = r"\s+".join(re.escape(part) for part in name.split())

    assert re.search(pattern, redacted, re.IGNORECASE) is None


# Found by a new user's run: wrapped Chinese text and full-width Latin
# letters let listed names through.


@pytest.mark.parametrize(
    "text",
    ["李 明 handled it", "李\n明 handled it", "李\u3000明 handled it", "李\u200b明 handled it"],
    ids=["space", "line-break", "ideographic-space", "zero-width"],
)
def test_chinese_name_split_by_white_space_is_redacted(text: str) -> None:
    redactor = Redactor.from_lines(["李明"])

    assert redactor.apply(text) == "[REDACTED] handled it"


def test_full_width_latin_name_is_redacted() -> None:
    redactor = Redactor.from_lines(["Zhang Wei"])

    assert redactor.apply("Ｚｈａｎｇ Ｗｅｉ also went") == "[REDACTED] also went"
    assert redactor.apply("ＺＨＡＮＧ　ＷＥＩ") == "[REDACTED]"


def test_white_space_between_latin_letters_still_separates_words() -> None:
    # The white-space allowance is for Chinese only: "Li Ming" must not
    # reach into "Lim ing".
    redactor = Redactor.from_lines(["LiMing"])

    assert redactor.apply("Li Ming") == "Li Ming"
