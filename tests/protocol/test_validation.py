"""Validation errors are described field by field, the same way at every boundary."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from protocol.validation import describe_validation_error, field_errors


class Inner(BaseModel):
    day: int = Field(ge=1)


class Outer(BaseModel):
    name: str
    items: list[Inner]


def test_errors_name_dotted_fields_and_respect_the_limit() -> None:
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate({"items": [{"day": 0}, {"day": "x"}]})
    fields = [field for field, _ in field_errors(caught.value)]
    assert fields == ["name", "items.0.day", "items.1.day"]
    assert describe_validation_error(caught.value, limit=1) == "name: Field required"
    with pytest.raises(ValidationError) as root:
        Inner.model_validate("not an object")
    assert describe_validation_error(root.value).startswith("<root>: ")
