"""The contract's string grammars (e-mail rule, Money amount) recognised in linear time.

Python's ``re`` backtracks: the Money amount pattern takes time cubic in the input there (3,000 characters held
the event loop 40 s). These recognisers use only single-pass ``str`` methods, so their cost is linear whatever
the input; tests check them against the contract's patterns.
"""

from __future__ import annotations

# The contract's patterns, as published (endpoints.md "Auth"; data-model.md Money; README decimals).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MONEY_AMOUNT_PATTERN = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"
# The same language as MONEY_AMOUNT_PATTERN without the lookahead, so the linear regex engine can run it
# (JSON Schema patterns are ECMA-262, where ``\d`` is ``[0-9]``).
MONEY_AMOUNT_LINEAR_PATTERN = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$"


def is_email(text: str) -> bool:
    """True when the whole of ``text`` matches EMAIL_PATTERN (no trailing newline either)."""
    if text.split(maxsplit=1) != [text]:
        return False  # empty, or whitespace somewhere (str.split and re's \s agree on what whitespace is)
    local, at, domain = text.partition("@")
    return bool(local) and bool(at) and "@" not in domain and "." in domain[1:-1]


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.encode().isdigit()  # bytes.isdigit is [0-9] only, and 4x faster than str's


def is_money_amount(text: str) -> bool:
    """True when ``text`` is an optional sign, ASCII digits with at most one ``.``, at least one digit."""
    unsigned = text[1:] if text[:1] in ("+", "-") else text
    whole, _, fraction = unsigned.partition(".")
    if not (whole or fraction):
        return False
    return (not whole or _ascii_digits(whole)) and (not fraction or _ascii_digits(fraction))
