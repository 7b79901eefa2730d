"""Access JWTs (HS256): minting and the full verification of auth.md "Access token"."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any, Callable

import jwt

from voyagent.config import Settings
from voyagent.principal import Principal

_REQUIRED_CLAIMS = ["sub", "tid", "iat", "exp", "jti", "iss", "aud"]


def mint_access_token(settings: Settings, *, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str,
                      email: str, now: int | None = None) -> tuple[str, str, int]:
    """Return (token, jti, exp) for a user."""
    issued = int(time.time()) if now is None else now
    jti = secrets.token_hex(16)
    exp = issued + settings.access_ttl
    claims = {"sub": str(user_id), "tid": str(tenant_id), "role": role, "email": email, "iat": issued,
              "exp": exp, "jti": jti, "iss": settings.issuer, "aud": settings.audience}
    return jwt.encode(claims, settings.auth_secret, algorithm="HS256"), jti, exp


def decode_access_token(settings: Settings, token: str) -> dict[str, Any] | None:
    """The verified claims, or None for anything invalid (signature, exp, iss, aud, claims, ids)."""
    try:
        claims = jwt.decode(token, settings.auth_secret, algorithms=["HS256"], audience=settings.audience,
                            issuer=settings.issuer, leeway=0,
                            options={"require": _REQUIRED_CLAIMS, "strict_aud": True})
        uuid.UUID(claims["sub"])
        uuid.UUID(claims["tid"])
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError, KeyError):
        return None
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("role"), str):
        return None
    return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The caller named by verified access-token claims."""
    return Principal(user_id=uuid.UUID(claims["sub"]), tenant_id=uuid.UUID(claims["tid"]), role=claims["role"],
                     email=claims.get("email"), jti=claims["jti"], token_exp=int(claims["exp"]))


class VerifiedAccessTokens:
    """``decode_access_token`` with a bounded memo of tokens that already verified, and of their principal.

    A hit is only ever a token string that passed the full verification, so it needs no signature check
    again; its ``exp`` is re-checked on every use (no leeway). Failures are never remembered, so junk
    tokens cannot fill the memo. The denylist is checked by the caller on every request regardless.
    ``clock`` (epoch seconds) is injectable so a test can move past ``exp`` instead of waiting for it.
    """

    def __init__(self, settings: Settings, size: int = 10_000, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.size = size
        self.clock = clock
        self._claims: dict[str, tuple[dict[str, Any], Principal]] = {}

    def decode(self, token: str) -> dict[str, Any] | None:
        """The verified claims, or None."""
        entry = self._entry(token)
        return entry[0] if entry is not None else None

    def principal(self, token: str) -> Principal | None:
        """The caller of a valid token (built at its first use only: no id parsing per request), or None."""
        entry = self._entry(token)
        return entry[1] if entry is not None else None

    def _entry(self, token: str) -> tuple[dict[str, Any], Principal] | None:
        entry = self._claims.get(token)
        if entry is not None:
            if entry[0]["exp"] > self.clock():
                return entry
            del self._claims[token]
            return None
        claims = decode_access_token(self.settings, token)
        if claims is None:
            return None
        if len(self._claims) >= self.size:
            del self._claims[next(iter(self._claims))]  # the oldest entry
        entry = self._claims[token] = (claims, principal_from_claims(claims))
        return entry


# --- TOTP intermediate token (auth.md, Two-step sign-in) -----------------------------------------------

TOTP_AUDIENCE = "voyagent-totp"
TOTP_TYPE = "totp"
TOTP_TTL_SECONDS = 300
_TOTP_REQUIRED_CLAIMS = ["sub", "typ", "iat", "exp", "jti", "iss", "aud"]


def mint_totp_token(settings: Settings, *, user_id: uuid.UUID, now: int | None = None) -> str:
    """The short-lived token that carries a passed password step to ``POST /auth/sign-in-totp``."""
    issued = int(time.time()) if now is None else now
    claims = {"sub": str(user_id), "typ": TOTP_TYPE, "iat": issued, "exp": issued + TOTP_TTL_SECONDS,
              "jti": secrets.token_hex(16), "iss": settings.issuer, "aud": TOTP_AUDIENCE}
    return jwt.encode(claims, settings.auth_secret, algorithm="HS256")


def decode_totp_token(settings: Settings, token: str) -> dict[str, Any] | None:
    """The verified claims of an intermediate token (signature, audience, ``typ``, expiry), or None."""
    try:
        claims = jwt.decode(token, settings.auth_secret, algorithms=["HS256"], audience=TOTP_AUDIENCE,
                            issuer=settings.issuer, leeway=0,
                            options={"require": _TOTP_REQUIRED_CLAIMS, "strict_aud": True})
        uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError, KeyError):
        return None
    if claims.get("typ") != TOTP_TYPE or not isinstance(claims.get("jti"), str):
        return None
    return claims
