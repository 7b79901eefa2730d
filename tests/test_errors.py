"""422 shaping: at most 50 items, quoted client text cut to 100 characters, secrets never echoed."""

import pytest

from voyagent.errors import SECRET_FIELDS, ValidationFailed, shape_item, validation_item


def test_only_the_first_50_items_are_kept():
    items = [validation_item(["body", f"f{i}"], "missing", "Field required") for i in range(1000)]
    detail = ValidationFailed(items).detail
    assert [item["loc"][1] for item in detail] == [f"f{i}" for i in range(50)]


def test_a_quoted_string_and_a_loc_key_are_cut_to_100_characters():
    item = shape_item(validation_item(["body", "k" * 5000], "string_too_long", "m", input="v" * 5000))
    assert item["loc"] == ["body", "k" * 100] and item["input"] == "v" * 100


@pytest.mark.parametrize("field", sorted(SECRET_FIELDS))
@pytest.mark.parametrize("value", ["Zx9-secret", 123456789, None, ["Zx9-secret"]])
def test_a_secret_field_item_carries_no_input(field, value):
    item = shape_item(validation_item(["body", field], "string_too_short", "m", input=value))
    assert "input" not in item and item["loc"] == ["body", field]


def test_objects_and_arrays_are_never_quoted():
    for value in ({"a": "b" * 10_000}, ["x"] * 10_000):
        assert "input" not in shape_item(validation_item(["body", "f"], "string_type", "m", input=value))


def test_scalars_are_quoted_as_they_are():
    for value in (7, 2.5, True, None, "short"):
        assert shape_item(validation_item(["query", "q"], "int_parsing", "m", input=value))["input"] == value
