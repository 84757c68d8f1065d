"""JSON Schema for OpenAPI, derived from botocore's shapes so the docs match what is validated."""

from __future__ import annotations

from typing import Any

from botocore.model import Shape

_SCALARS = {
    "string": "string",
    "integer": "integer",
    "long": "integer",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
}


def shape_schema(shape: Shape, depth: int = 0) -> dict[str, Any]:
    if depth > 8:  # the Rekognition model has no deeper request shapes; stop on recursion
        return {}
    schema: dict[str, Any] = {}
    if shape.type_name == "structure":
        schema = {
            "type": "object",
            "properties": {n: shape_schema(m, depth + 1) for n, m in shape.members.items()},
            "additionalProperties": False,
        }
        if shape.required_members:
            schema["required"] = list(shape.required_members)
    elif shape.type_name == "list":
        schema = {"type": "array", "items": shape_schema(shape.member, depth + 1)}
        _bounds(schema, shape, "minItems", "maxItems")
    elif shape.type_name == "map":
        schema = {"type": "object", "additionalProperties": shape_schema(shape.value, depth + 1)}
    elif shape.type_name == "blob":
        schema = {"type": "string", "format": "byte", "description": "base64"}
    elif shape.type_name in _SCALARS:
        schema = {"type": _SCALARS[shape.type_name]}
        _scalar_constraints(schema, shape)
    if shape.documentation:
        schema.setdefault("description", _plain(shape.documentation))
    return schema


def _scalar_constraints(schema: dict[str, Any], shape: Shape) -> None:
    if shape.type_name == "string":
        _bounds(schema, shape, "minLength", "maxLength")
        if shape.enum:
            schema["enum"] = list(shape.enum)
        if "pattern" in shape.metadata:
            schema["pattern"] = shape.metadata["pattern"]
    elif schema["type"] in ("integer", "number"):
        _bounds(schema, shape, "minimum", "maximum")


def _bounds(schema: dict[str, Any], shape: Shape, low_key: str, high_key: str) -> None:
    if "min" in shape.metadata:
        schema[low_key] = shape.metadata["min"]
    if "max" in shape.metadata:
        schema[high_key] = shape.metadata["max"]


def _plain(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", html).strip()[:400]
