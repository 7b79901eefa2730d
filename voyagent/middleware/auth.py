"""Authentication (JWT or ``vy_`` API key → principal) and authorisation (key eligibility, scope, role)."""

from __future__ import annotations

from aiohttp import hdrs, web

from voyagent.contract import Operation
from voyagent.errors import ApiError, unauthorized
from voyagent.keys import ACCESS_TOKENS, PRINCIPAL_BUCKET_RESULT, RATE_LIMITER, TOKEN_STORE
from voyagent.principal import Principal
from voyagent import edge
from voyagent.services.ratelimit import DENIED
from voyagent.services.scopes import grants
from voyagent.services.token_store import RedisTokenStore


def bearer_credential(request: web.BaseRequest) -> str | None:
    """The credential of ``Authorization: Bearer <credential>`` (scheme case-insensitive), or None."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    credential = credential.strip()
    return credential or None


async def principal_from_jwt(app: web.Application, token: str) -> Principal | None:
    """Verify an access JWT and its jti against the denylist (fail-open)."""
    principal = app[ACCESS_TOKENS].principal(token)
    if principal is None or await app[TOKEN_STORE].is_revoked(principal.jti):  # type: ignore[arg-type]
        return None
    return principal


async def authenticate_request(request: web.Request, user_capacity: int = 0) -> Principal:
    """The principal of a protected request, or ``401 unauthorized``. A JWT's user bucket (check 4, of
    ``user_capacity`` tokens a minute) rides along with its denylist check where both are in the same Redis."""
    credential = bearer_credential(request)
    if credential is None:
        raise unauthorized()
    if credential.startswith("vy_"):
        principal = await edge.authenticate_api_key(request.app, credential)
    else:
        principal = await _jwt_principal_taking_bucket(request, credential, user_capacity)
    if principal is None:
        raise unauthorized()
    return principal


async def _jwt_principal_taking_bucket(request: web.Request, token: str, user_capacity: int) -> Principal | None:
    """``principal_from_jwt``, with the user's token taken in the same Redis round trip when it can be (the
    denylist first: a revoked token takes nothing); the bucket's verdict is left for ``take_principal``."""
    app = request.app
    store, limiter = app[TOKEN_STORE], app[RATE_LIMITER]
    if user_capacity <= 0 or not isinstance(store, RedisTokenStore) or limiter.redis is not store.redis:
        return await principal_from_jwt(app, token)
    principal = app[ACCESS_TOKENS].principal(token)
    if principal is None:
        return None
    bucket, key = principal.rate_limit_key
    result = await limiter.take_unless_denied(bucket, key, user_capacity,
                                              store.denylist_key(principal.jti))  # type: ignore[arg-type]
    if result == DENIED:
        return None
    request[PRINCIPAL_BUCKET_RESULT] = result  # type: ignore[assignment]
    return principal


def forbidden_reason(operation_access: str, scope: str | None, role: str | None,
                     principal: Principal) -> str | None:
    """The 403 code for this principal on this operation, in the contract's order, or None."""
    if principal.is_api_key:
        if operation_access == "jwt":
            return "api_key_not_allowed"
        if scope is not None and not grants(principal.scopes, scope):
            return "insufficient_scope"
    if role is not None and principal.role != role:
        return "forbidden_role"
    return None


async def forbid(request: web.Request, principal: Principal, code: str) -> ApiError:
    """Audit the refusal (rate-limited ``auth.verify``) and return the 403 to raise."""
    await edge.record_forbidden(request, principal, code)
    return ApiError(403, code)


async def authorize(request: web.Request, operation: Operation, principal: Principal) -> None:
    """Check 5: key eligibility, then scope, then role; each refusal is audited."""
    code = forbidden_reason(operation.access, operation.scope, operation.role, principal)
    if code is not None:
        raise await forbid(request, principal, code)
