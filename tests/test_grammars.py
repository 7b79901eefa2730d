"""The linear recognisers accept exactly the language of the contract's patterns."""

import re

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voyagent.grammars import (
    EMAIL_PATTERN,
    MONEY_AMOUNT_LINEAR_PATTERN,
    MONEY_AMOUNT_PATTERN,
    is_email,
    is_money_amount,
)

# JSON Schema patterns are ECMA-262: \d is [0-9] there, which re.ASCII gives; fullmatch means no "\n" slack.
_MONEY_SPEC = re.compile(MONEY_AMOUNT_PATTERN, re.ASCII)
_EMAIL_SPEC = re.compile(EMAIL_PATTERN)
_LINEAR_ENGINE = jsonschema_rs.validator_for({"type": "string", "pattern": MONEY_AMOUNT_LINEAR_PATTERN},
                                             pattern_options=jsonschema_rs.RegexOptions())

money_texts = st.text(alphabet="0123456789+-.x eE\n\u0662\u00b2", max_size=8)
email_texts = st.text(alphabet="ab@.- \n\t\u00a0\u2028\x1c", max_size=10)


@settings(max_examples=3000, deadline=None)
@given(money_texts)
def test_money_amount_matches_the_contract_pattern_and_its_linear_form(text):
    expected = _MONEY_SPEC.fullmatch(text) is not None
    assert is_money_amount(text) is expected
    assert _LINEAR_ENGINE.is_valid(text) is expected


@settings(max_examples=3000, deadline=None)
@given(email_texts)
def test_email_matches_the_whole_contract_pattern(text):
    assert is_email(text) is (_EMAIL_SPEC.fullmatch(text) is not None)


@pytest.mark.parametrize(("text", "ok"), [
    ("12", True), ("-12.50", True), ("+.5", True), ("5.", True), ("0007", True),
    ("", False), (".", False), ("+", False), ("-.", False), ("1.2.3", False), ("1e5", False), ("NaN", False),
    (" 1", False), ("1 ", False), ("12\n", False), ("\u0661\u0662", False), ("0" * 3000 + "x", False),
])
def test_money_amount_examples(text, ok):
    assert is_money_amount(text) is ok


@pytest.mark.parametrize(("text", "ok"), [
    ("a@b.co", True), ("A.B@c.d.e", True), ("a@b.co\n", False), ("\na@b.co", False), ("a@b.co ", False),
    ("a@@b.co", False), ("a@b@c.co", False), ("a@.co", False), ("a@co.", False), ("@b.co", False), ("a@bco", False),
    ("a\u00a0@b.co", False), ("", False),
])
def test_email_examples(text, ok):
    assert is_email(text) is ok
