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


class ValidationFailed(ApiError):
    """A 422 in the list shape: one item per violation."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(422, items)


def validation_item(loc: list[Any], type_: str, msg: str, **extra: Any) -> dict[str, Any]:
    """One item of the 422 list shape."""
    return {"loc": loc, "msg": msg, "type": type_, **extra}


def value_error(loc: list[Any], code: str) -> dict[str, Any]:
    """A documented semantic rule on one field failed."""
    return validation_item(loc, "value_error", f"Value error, {code}")


def not_found(code: str) -> ApiError:
    return ApiError(404, code)


UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", headers=UNAUTHORIZED_HEADERS)
