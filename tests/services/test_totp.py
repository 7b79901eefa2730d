"""TOTP codes (auth.md): normalisation, the ±1 step window, and the step a code counts as."""

import pyotp
import pytest

from voyagent.services.totp import accepted_step, normalise_code

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# Found by search: this secret has the same code, 065554, at steps 56668234 and 56668235.
SHARED_STEP = 56_668_234
SHARED_CODE = "065554"


def _at(step: int) -> float:
    return step * 30 + 7.0


@pytest.mark.parametrize(("code", "normalised"), [
    ("123456", "123456"), ("123 456", "123456"), (" 12 34 56 ", "123456"),
    ("abcdef", None), ("12345", None), ("1234567", None), ("12345٦", None), ("123\t456", None), ("１２３４５６", None),
])
def test_spaces_are_removed_and_anything_but_six_ascii_digits_is_wrong(code, normalised):
    assert normalise_code(code) == normalised


def test_a_code_belongs_to_its_step_within_one_step_of_now():
    otp = pyotp.TOTP(SECRET)
    now_step = 60_000_000
    for offset in (-1, 0, 1):
        assert accepted_step(SECRET, otp.generate_otp(now_step + offset), now=_at(now_step)) == now_step + offset
    for offset in (-2, 2):
        assert accepted_step(SECRET, otp.generate_otp(now_step + offset), now=_at(now_step)) is None
    code = otp.generate_otp(now_step)
    assert accepted_step(SECRET, f"{code[:3]} {code[3:]}", now=_at(now_step)) == now_step


def test_a_code_two_steps_share_counts_as_the_later_one():
    otp = pyotp.TOTP(SECRET)
    assert otp.generate_otp(SHARED_STEP) == otp.generate_otp(SHARED_STEP + 1) == SHARED_CODE
    for now_step in (SHARED_STEP, SHARED_STEP + 1):  # both steps inside the window
        assert accepted_step(SECRET, SHARED_CODE, now=_at(now_step)) == SHARED_STEP + 1
    assert accepted_step(SECRET, SHARED_CODE, now=_at(SHARED_STEP - 1)) == SHARED_STEP  # only the earlier inside
    assert accepted_step(SECRET, SHARED_CODE, now=_at(SHARED_STEP + 2)) == SHARED_STEP + 1


@pytest.mark.parametrize("secret", [None, "", "not base32 !", "0189"])
def test_no_secret_or_a_broken_one_accepts_nothing(secret):
    assert accepted_step(secret, "123456") is None
