"""Field types shared by the request schemas: strict JSON types, and proto-JSON's lenient ones for Gemini."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError, fields, validate

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# Every optional OpenAI field takes null too: many clients send `"temperature": null` for "not set".
OPTIONAL: dict[str, Any] = {"allow_none": True, "load_default": None}


# -- strict JSON (OpenAI, Anthropic): a value of the wrong JSON type is refused, never coerced ----------


class Number(fields.Field):
    """A JSON number: not a numeric string, not a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        return value


class Integer(fields.Field):
    """A JSON integer: not a float, not a numeric string, not a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Not a valid integer.")
        return value


class Boolean(fields.Field):
    """JSON true or false only: a string "false" must not switch streaming on."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class StringOrList(fields.Field):
    """A string or a list of strings, like `stop`."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise ValidationError({i: ["Not a valid string."]})
            return value
        raise ValidationError("Must be a string or a list of strings.")


class Items(fields.Field):
    """A list whose every item `check` accepts (it returns an error in marshmallow's shape, or None);
    with `text`, a plain string is taken too. Subclasses set them: `class X(Items, check=...)`."""

    check: Callable[[Any], dict | list | None]
    text = False
    expected = "Must be a list."

    def __init_subclass__(
        cls, *, check: Callable[[Any], dict | list | None], text: bool = False, expected: str = "", **kwargs
    ):
        super().__init_subclass__(**kwargs)
        cls.check = staticmethod(check)
        cls.text = text
        cls.expected = expected or cls.expected

    def _deserialize(self, value, attr, data, **kwargs):
        if self.text and isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError(self.expected)
        for i, item in enumerate(value):
            error = self.check(item)
            if error:
                raise ValidationError({i: error})
        return value


# -- proto-JSON (Gemini): numbers may be written as strings, enums as names or numbers ---------------


class ProtoNumber(fields.Field):
    """A proto float or double: a JSON number, or a string holding one (proto-JSON takes both)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ValidationError("Not a valid number.") from None
            if not math.isfinite(number) and value.strip() not in ("Infinity", "-Infinity", "NaN"):
                raise ValidationError("Not a valid number.")
            return number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        return value


class ProtoInt32(fields.Field):
    """A proto int32: a JSON integer, or a string holding one, within 32 bits (Gemini refuses wider)."""

    def __init__(self, minimum: int = INT32_MIN, maximum: int = INT32_MAX, **kwargs):
        super().__init__(validate=validate.Range(min=minimum, max=maximum), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ValidationError("Not a valid integer.") from None
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 2.0 is an integer to a JSON parser
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Not a valid integer.")
        return value


class ProtoEnum(fields.Field):
    """A proto enum: its value's name, or its number."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("Must be an enum value's name or number.")
        return value
