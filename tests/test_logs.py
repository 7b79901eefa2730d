"""Log scrubbing: the linear JWT scrub removes exactly what the JWT pattern matches, anywhere in a line."""

from hypothesis import given, settings
from hypothesis import strategies as st

from voyagent.logs import _API_KEY_RE, _JWT_RE, scrub

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
KEY = "vy_abcdEFGH_" + "A1" * 16


def _by_regex(text: str) -> str:
    return _API_KEY_RE.sub("[scrubbed]", _JWT_RE.sub("[scrubbed]", text))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["eyJ", "e", "y", "J", ".", "a", "-", "_", " ", "/", "vy_", TOKEN]), max_size=30))
def test_scrub_removes_what_the_jwt_pattern_matches(pieces):
    text = "".join(pieces)
    assert scrub(text) == _by_regex(text)


def test_tokens_and_keys_in_a_line_are_scrubbed():
    line = f"GET /x?t={TOKEN}&k={KEY} Authorization: Bearer {TOKEN}"
    assert scrub(line) == "GET /x?t=[scrubbed]&k=[scrubbed] Authorization: Bearer [scrubbed]"
    assert TOKEN not in scrub("eyJ" * 5000 + "/" + TOKEN)


def test_a_line_without_secrets_is_unchanged():
    for text in ("plain text", "eyJ" * 5000, "eyJ.a", "vy_short"):
        assert scrub(text) == text
