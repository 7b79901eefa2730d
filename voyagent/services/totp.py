"""TOTP (RFC 6238, SHA-1, 6 digits, 30 s step, ±1 step) with the code normalisation of auth.md."""

from __future__ import annotations

import re
from urllib.parse import quote

import pyotp

ISSUER = "Voyagent"
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


def code_matches(secret: str | None, code: str) -> bool:
    """True when ``code`` is the current code of ``secret`` or the one a step before or after."""
    compact = normalise_code(code)
    if not secret or compact is None:
        return False
    try:
        return pyotp.TOTP(secret).verify(compact, valid_window=1)
    except (ValueError, TypeError):  # a stored secret that is not base32
        return False
