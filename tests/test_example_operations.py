"""Every example operation the playground preloads is valid against the schema, so a new
developer's first click never meets a validation error."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from cetgql.graphql.ide import EXAMPLE_OPERATIONS
from cetgql.graphql.schema import schema


@pytest.mark.parametrize("example", EXAMPLE_OPERATIONS, ids=lambda e: e.filename)
def test_example_operation_is_valid(example):
    errors = validate(schema._schema, parse(example.query))
    assert errors == []
