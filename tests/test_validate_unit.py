"""The validator on its own, against real botocore shapes."""

from __future__ import annotations

import pytest

from sagemaker_emulator.protocol.errors import SerializationError, ValidationError
from sagemaker_emulator.protocol.service import service_model
from sagemaker_emulator.protocol.validate import parse_and_validate


def shape(op: str):
    return service_model("sagemaker").operation_model(op).input_shape


def test_drops_unknown_members_and_parses_timestamps():
    got = parse_and_validate(shape("ListModels"), {"CreationTimeAfter": 1700000000, "Bogus": 1})
    assert got == {"CreationTimeAfter": 1700000000.0}
    got = parse_and_validate(shape("ListModels"), {"CreationTimeAfter": "2024-01-01T00:00:00Z"})
    assert got["CreationTimeAfter"] == 1704067200.0


def test_unicode_tag_pattern():
    ok = {"ModelName": "m", "Tags": [{"Key": "équipe:ml", "Value": "données"}]}
    assert parse_and_validate(shape("CreateModel"), ok)["Tags"][0]["Key"] == "équipe:ml"
    with pytest.raises(ValidationError):
        parse_and_validate(shape("CreateModel"), {"ModelName": "m", "Tags": [{"Key": "a{b}", "Value": ""}]})


@pytest.mark.parametrize("bad", [{"MaxResults": True}, {"MaxResults": 1.5}, {"MaxResults": "1"},
                                 {"NameContains": ["x"]}, {"CreationTimeAfter": "yesterday"}])
def test_type_errors_are_serialization_errors(bad):
    with pytest.raises(SerializationError):
        parse_and_validate(shape("ListModels"), bad)


def test_map_key_constraints():
    with pytest.raises(ValidationError, match="primaryContainer.environment.key"):
        parse_and_validate(shape("CreateModel"), {"ModelName": "m", "PrimaryContainer": {
            "Image": "i", "Environment": {"1BAD": "v"}}})
