"""The shared field types: strict JSON types for OpenAI and Anthropic, proto-JSON's for Gemini."""

import pytest
from marshmallow import Schema, ValidationError

from schemas.fields import Boolean, Integer, Number, ProtoEnum, ProtoInt32, ProtoNumber, StringOrList


def load(field, value):
    class One(Schema):
        v = field

    return One().load({"v": value})["v"]


@pytest.mark.parametrize("value", ["0.5", True, None, [1], {"a": 1}])
def test_number_takes_json_numbers_only(value):
    with pytest.raises(ValidationError):
        load(Number(), value)
    assert load(Number(), 0.5) == 0.5 and load(Number(), 2) == 2


@pytest.mark.parametrize("value", ["3", True, 3.0, 3.5])
def test_integer_takes_json_integers_only(value):
    with pytest.raises(ValidationError):
        load(Integer(), value)
    assert load(Integer(), 3) == 3


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_boolean_takes_true_and_false_only(value):
    with pytest.raises(ValidationError):
        load(Boolean(), value)
    assert load(Boolean(), False) is False


def test_string_or_list():
    assert load(StringOrList(), "x") == "x" and load(StringOrList(), ["a", "b"]) == ["a", "b"]
    for bad in (1, ["a", 2], {"a": "b"}):
        with pytest.raises(ValidationError):
            load(StringOrList(), bad)


def test_proto_numbers_may_be_strings():
    assert load(ProtoNumber(), "0.5") == 0.5 and load(ProtoNumber(), 1) == 1
    assert load(ProtoInt32(), "12") == 12 and load(ProtoInt32(), 12.0) == 12
    for bad in ("half", True, [1]):
        with pytest.raises(ValidationError):
            load(ProtoNumber(), bad)
    for bad in ("1.5", 1.5, False, str(2**31)):
        with pytest.raises(ValidationError):
            load(ProtoInt32(), bad)


def test_proto_enums_by_name_or_number():
    assert load(ProtoEnum(), "BLOCK_NONE") == "BLOCK_NONE" and load(ProtoEnum(), 4) == 4
    for bad in (True, 1.5, ["X"]):
        with pytest.raises(ValidationError):
            load(ProtoEnum(), bad)
