"""The caller identity derived from a credential: a user (access JWT) or an API key acting as its creator."""

from __future__ import annotations

import dataclasses
import uuid


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling; the tenant is always taken from here, never from the request."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    email: str | None = None
    jti: str | None = None  # access token id (JWT principals)
    token_exp: int | None = None  # access token expiry, epoch seconds (JWT principals)
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[str] = frozenset()
    rate_limit: int = 60  # API keys: the tenant's rate_limit_per_minute (bucket capacity)
    # (bucket name, bucket key) of the principal's own bucket: built once (principals are memoised per credential)
    rate_limit_key: tuple[str, str] = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        key = ("api_key", str(self.api_key_id)) if self.api_key_id else ("user", str(self.user_id))
        object.__setattr__(self, "rate_limit_key", key)

    @property
    def is_api_key(self) -> bool:
        return self.api_key_id is not None

    @property
    def idempotency_scope(self) -> str:
        """The credential an Idempotency-Key is scoped to: ``user:<uuid>`` or ``key:<uuid>``."""
        return f"key:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"
