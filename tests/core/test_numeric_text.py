"""Text compared as a number: linear in time, bounded in length, the same in Python and SQL.

The timeout is a hang guard, not a speed target: the old expression backtracked quadratically and
did not finish on 200,000 digits within a minute."""

from decimal import Decimal

import pytest

from core.rules import MAX_NUMERIC_TEXT_LENGTH, NUMERIC_TEXT, compile_predicate, numeric_text, parse

DIGITS_THEN_LETTER = "1" * 1_000_000 + "x"


@pytest.mark.timeout(5)
def test_a_megabyte_of_digits_fails_the_expression_without_backtracking():
    assert NUMERIC_TEXT.fullmatch(DIGITS_THEN_LETTER) is None


@pytest.mark.timeout(5)
def test_a_rule_on_a_megabyte_of_digits_is_false_not_stuck():
    rule = compile_predicate(parse({"all": [{"field": "event.score", "op": "gte", "value": 1}]}))
    assert rule(lambda field: DIGITS_THEN_LETTER) is False
    assert rule(lambda field: "9" * 1_000_000) is False


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("60", Decimal(60)),
        (" -1.5e2 ", Decimal("-150")),
        ("1.", Decimal(1)),
        (".5", Decimal("0.5")),
        ("9" * MAX_NUMERIC_TEXT_LENGTH, Decimal("9" * MAX_NUMERIC_TEXT_LENGTH)),
        ("9" * (MAX_NUMERIC_TEXT_LENGTH + 1), None),
        (".", None),
        ("1e", None),
        ("NaN", None),
        ("1_000", None),
        ("١٢", None),
    ],
)
def test_numeric_text(text, number):
    assert numeric_text(text) == number
