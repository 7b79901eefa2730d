"""Domain errors that handlers raise; the errors middleware turns them into contract responses."""

from __future__ import annotations

from typing import Any, Mapping


class ApiError(Exception):
    """A contract error: HTTP status plus the ``detail`` code (or object), extra members and headers."""

    def __init__(self, status: int, detail: Any, *, extra: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


# README "Error bodies": a 422 never amplifies its request and never echoes a secret.
MAX_VALIDATION_ITEMS = 50
MAX_QUOTED_CHARS = 100
SECRET_FIELDS = frozenset({"password", "new_password", "current_password", "code", "totp_code"})
_SCALARS = (str, int, float, bool, type(None))


class ValidationFailed(ApiError):
    """A 422 in the list shape: one item per violation, the first 50 only, shaped by ``shape_item``."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(422, [shape_item(item) for item in items[:MAX_VALIDATION_ITEMS]])


def quoted(value: str) -> str:
    """A client string as it may appear in a 422: its first 100 characters."""
    return value[:MAX_QUOTED_CHARS]


def names_secret(loc: list[Any]) -> bool:
    """True when ``loc`` points into a field whose value must never be echoed."""
    return any(part in SECRET_FIELDS for part in loc[1:] if isinstance(part, str))


def shape_item(item: dict[str, Any]) -> dict[str, Any]:
    """Cut quoted client text (``loc`` keys, ``input``) to 100 characters; drop ``input`` of secrets and of
    objects/arrays (which could be as large as the body)."""
    loc = [quoted(part) if isinstance(part, str) else part for part in item["loc"]]
    shaped = {**item, "loc": loc}
    if "input" in shaped:
        value = shaped["input"]
        if names_secret(loc) or not isinstance(value, _SCALARS):
            del shaped["input"]
        elif isinstance(value, str):
            shaped["input"] = quoted(value)
    return shaped


def validation_item(loc: list[Any], type_: str, msg: str, **extra: Any) -> dict[str, Any]:
    """One item of the 422 list shape; ``msg`` names the rule and never quotes the value (pass it as
    ``input=``, which ``shape_item`` cuts or drops)."""
    return {"loc": loc, "msg": msg, "type": type_, **extra}


def value_error(loc: list[Any], code: str, **extra: Any) -> dict[str, Any]:
    """A documented semantic rule on one field failed."""
    return validation_item(loc, "value_error", f"Value error, {code}", **extra)


def not_found(code: str) -> ApiError:
    return ApiError(404, code)


UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", headers=UNAUTHORIZED_HEADERS)
