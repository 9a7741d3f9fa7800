"""The JSON schemas sent to models, checked against the rules of the converters that turn them into
grammars or strict output: llama.cpp's json-schema-to-grammar (local $refs only, no `not`, `if`,
`patternProperties`, `uniqueItems`), vLLM guided decoding (the same subset), and OpenAI strict mode
(every object closed with `additionalProperties: false`, every property required, no defaults).
Required fields also make `{}` invalid output instead of "no changes"."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from pyramid.agents.abstract import Abstract
from pyramid.agents.concepts import ConceptList, MergedConcepts
from pyramid.agents.insights import WindowEdits
from pyramid.agents.recollections import RecollectionEdits

pytestmark = pytest.mark.unit

OUTPUTS: list[type[BaseModel]] = [WindowEdits, ConceptList, MergedConcepts, Abstract, RecollectionEdits]
# The keywords all three accept; anything else (format, pattern, minItems, default, oneOf, …) is out.
ALLOWED = {"type", "properties", "required", "additionalProperties", "items", "description", "title"}
ALLOWED |= {"$defs", "$ref", "enum", "const", "anyOf"}
TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


def problems(node: Any, where: str, defs: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if isinstance(node, list):
        for n, child in enumerate(node):
            found += problems(child, f"{where}[{n}]", defs)
        return found
    if not isinstance(node, dict):
        return found
    for key in set(node) - ALLOWED:
        found.append(f"{where}: keyword {key!r}")
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/") or ref.removeprefix("#/$defs/") not in defs:
            found.append(f"{where}: $ref {ref!r} is not a local definition")
    kind = node.get("type")
    if kind is not None and kind not in TYPES:
        found.append(f"{where}: type {kind!r}")
    if kind == "object" or "properties" in node:
        if node.get("additionalProperties") is not False:
            found.append(f"{where}: object without additionalProperties: false")
        if set(node.get("required", [])) != set(node.get("properties", {})):
            found.append(f"{where}: not every property is required")
    for key in ("properties", "$defs"):
        for name, child in node.get(key, {}).items():
            found += problems(child, f"{where}.{name}", defs)
    for key in ("items", "anyOf"):
        if key in node:
            found += problems(node[key], f"{where}.{key}", defs)
    return found


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda t: t.__name__)
def test_every_output_schema_is_in_the_subset_every_converter_accepts(output: type[BaseModel]) -> None:
    schema = output.model_json_schema()
    assert schema["type"] == "object"  # OpenAI strict mode wants an object at the root
    assert problems(schema, output.__name__, schema.get("$defs", {})) == []


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda t: t.__name__)
def test_empty_output_is_not_valid(output: type[BaseModel]) -> None:
    with pytest.raises(ValidationError):
        output.model_validate({})
    with pytest.raises(ValidationError):  # nor is a tool call written as the answer
        output.model_validate({"name": "final_result", "arguments": []})


def test_the_checker_finds_what_the_converters_reject() -> None:
    class Loose(BaseModel):
        tags: list[str] = []

    schema = Loose.model_json_schema()
    found = problems(schema, "Loose", {})
    assert any("default" in p for p in found) and any("additionalProperties" in p for p in found)
    assert any("not every property is required" in p for p in found)


def test_what_pydantic_ai_sends_in_strict_mode_keeps_the_subset() -> None:
    from pydantic_ai.profiles.openai import OpenAIJsonSchemaTransformer

    for output in OUTPUTS:
        schema = OpenAIJsonSchemaTransformer(output.model_json_schema(), strict=True).walk()
        assert problems(schema, output.__name__, schema.get("$defs", {})) == [], output.__name__
