"""Definitions as data for API clients: states, transitions, roles, deadlines, and the JSON Schema of each
payload (generated from the marshmallow schema by apispec), so a client can build forms and validate first."""
from decimal import Decimal

from apispec import APISpec
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields, validate

from engine.registry import Compiled

TIME_MAX = len("HH:MM:SS.ffffff+HH:MM")  # the longest time of day marshmallow's Time field parses


def sizes(self, field, ret, **kwargs) -> dict:
    """apispec attribute function: a Length on a Dict bounds its number of keys (maxProperties), not a length;
    a time of day is bounded by its own format (JSON Schema's "time" would demand an offset: say the length)."""
    if isinstance(field, fields.Dict):
        for length, size in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
            if length in ret:
                ret[size] = ret.pop(length)
    if isinstance(field, fields.Time):
        return {"maxLength": TIME_MAX}
    return {}


def add_converters(converter) -> None:
    """What our fields mean in JSON Schema, for both the API's OpenAPI document and the payload schemas."""
    converter.add_attribute_function(sizes)


_spec = APISpec("signoff-payloads", "1", "3.1.0")
_converter = OpenAPIConverter("3.1.0", lambda schema: None, _spec)  # no resolver: nested schemas inline
add_converters(_converter)


def json_schema(schema: type[Schema] | None) -> dict:
    """The JSON Schema (2020-12, as OpenAPI 3.1 uses) of a marshmallow payload schema."""
    if schema is None:
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    result = _converter.schema2jsonschema(schema)
    instance = schema()
    for name, field in instance.fields.items():
        key = field.data_key or name
        prop = result.get("properties", {}).get(key)
        if prop is None:
            continue
        if isinstance(field, fields.Decimal):
            # marshmallow takes "12.50" or 12.5 and, with as_string, gives text back: say both are fine
            prop["type"] = ["string", "number"] if not field.allow_none else ["string", "number", "null"]
            prop["pattern"] = r"^-?\d+(\.\d+)?$"
        for v in field.validators:
            if isinstance(v, validate.Range):
                for bound, inclusive, word in ((v.min, v.min_inclusive, "Minimum"), (v.max, v.max_inclusive,
                                                                                       "Maximum")):
                    prop.pop(word.lower(), None)
                    if bound is None:
                        continue
                    number = float(bound) if isinstance(bound, Decimal | str) else bound
                    prop[word.lower() if inclusive else f"exclusive{word}"] = number
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **result}


def definition(compiled: Compiled) -> dict:
    """Everything a client needs to know about one workflow version."""
    wf = compiled.wf
    states = []
    for s in wf.states:
        deadline = None
        if s.deadline:
            deadline = {"due": s.deadline.due, "ladder": [
                {"at": r.at, "action": str(getattr(r.action, "value", r.action)), "to": r.to, "trigger": r.trigger}
                for r in s.deadline.ladder]}
        signing = None
        if s.signing:
            signing = {"policy": str(getattr(s.signing.policy, "value", s.signing.policy)),
                       "quorum": s.signing.quorum, "complete": s.signing.complete}
        states.append({"name": s.name, "title": s.title, "final": s.final, "assignee": s.assignee,
                       "deadline": deadline, "signing": signing})
    transitions = [{"trigger": t.trigger, "title": t.title or {"zh": t.trigger, "en": t.trigger},
                    "sources": list(t.sources), "dest": t.dest, "roles": list(t.roles),
                    "requires_comment": t.requires_comment, "not_by": list(t.not_by), "signature": t.signature,
                    "system_only": t.system_only, "conditions": list(t.conditions), "unless": list(t.unless),
                    "schema": json_schema(t.schema)} for t in wf.transitions]
    roles = sorted({*wf.start_roles, *(r for t in wf.transitions for r in t.roles),
                    *(s.assignee for s in wf.states if s.assignee)})
    return {"name": wf.name, "version": wf.version, "title": wf.title, "description": wf.description,
            "initial": wf.initial, "start_roles": list(wf.start_roles), "roles": roles,
            "start_schema": json_schema(wf.start_schema), "states": states, "transitions": transitions}
