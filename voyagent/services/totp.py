"""TOTP (RFC 6238, SHA-1, 6 digits, 30 s step, ±1 step) with the code normalisation of auth.md.

A code is single use: ``accepted_step`` says which step a code belongs to, and the caller stores that step
in ``users.totp_last_step`` with one conditional update (a code is accepted only for a later step).
"""

from __future__ import annotations

import hmac
import re
import time
from urllib.parse import quote

import pyotp

ISSUER = "Voyagent"
STEP_SECONDS = 30
_CODE_RE = re.compile(r"[0-9]{6}")


def new_secret() -> str:
    """32 base32 characters (160 random bits)."""
    return pyotp.random_base32(32)


def otpauth_url(secret: str, email: str) -> str:
    """``otpauth://totp/Voyagent:<url-encoded email>?secret=<secret>&issuer=Voyagent``."""
    return f"otpauth://totp/{ISSUER}:{quote(email, safe='')}?secret={secret}&issuer={ISSUER}"


def normalise_code(code: str) -> str | None:
    """The code with spaces removed, or None when that is not exactly 6 ASCII digits (a wrong code)."""
    compact = code.replace(" ", "")
    return compact if _CODE_RE.fullmatch(compact) else None


def accepted_step(secret: str | None, code: str, now: float | None = None) -> int | None:
    """The step ``code`` belongs to among the current one and one before or after, or None (a wrong code).

    A code that two of those steps share counts as the later one, so it can never be replayed at the other.
    Every candidate is compared in constant time.
    """
    compact = normalise_code(code)
    if not secret or compact is None:
        return None
    current = int(time.time() if now is None else now) // STEP_SECONDS
    try:
        otp = pyotp.TOTP(secret)
        matches = [step for step in (current - 1, current, current + 1)
                   if hmac.compare_digest(otp.generate_otp(step).encode(), compact.encode())]
    except (ValueError, TypeError):  # a stored secret that is not base32
        return None
    return max(matches, default=None)
