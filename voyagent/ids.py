"""UUIDv7 identifiers (time-ordered primary keys)."""

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """A fresh UUIDv7."""
    return uuid7()


def parse_uuid(value: str | None) -> uuid.UUID | None:
    """A UUID in any letter case, or None when the text is not one (36-char canonical form only)."""
    if value is None or len(value) != 36:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
