"""Forms generated from a transition's marshmallow schema: what to render (FieldSpec), how to read the posted
form back into the payload the engine validates, and how to put the engine's field errors next to the fields.

Posted names are dotted paths: `targets.amount`, table rows `actions.0.title`. Every value the user typed is
sent back on a failed submit, so nothing is lost."""
import functools
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from marshmallow import Schema, fields, validate

from web.ui.labels import label

BLANK_ROWS = 2  # empty table rows offered below the filled ones


@dataclass
class FieldSpec:
    name: str                 # this field's key in its schema
    kind: str                 # text, textarea, decimal, integer, checkbox, select, month, date, datetime,
                              # lines (a list of strings), dict ("key: value" lines), group (nested), table
    required: bool = False
    choices: tuple = ()
    children: list["FieldSpec"] = field(default_factory=list)

    @property
    def label(self) -> str:
        return label(self.name)


def _choices(f: fields.Field) -> tuple:
    for v in f.validators:
        if isinstance(v, validate.OneOf):
            return tuple(v.choices)
    return ()


def _max_length(f: fields.Field) -> int:
    for v in f.validators:
        if isinstance(v, validate.Length) and v.max:
            return v.max
    return 0


def spec(schema: type[Schema] | Schema | None) -> list[FieldSpec]:
    """The fields to render for a schema (empty for payload-free actions)."""
    if schema is None:
        return []
    if isinstance(schema, type):
        return list(_class_spec(schema))  # definitions are loaded once: compute each schema's fields once
    return [_field_spec(name, f) for name, f in schema.fields.items() if not f.dump_only]


@functools.cache
def _class_spec(schema: type[Schema]) -> tuple[FieldSpec, ...]:
    return tuple(_field_spec(name, f) for name, f in schema().fields.items() if not f.dump_only)


def _field_spec(name: str, f: fields.Field) -> FieldSpec:
    required = bool(f.required)
    if isinstance(f, fields.Nested):
        return FieldSpec(name, "group", required, children=spec(f.schema))
    if isinstance(f, fields.List):
        if isinstance(f.inner, fields.Nested):
            return FieldSpec(name, "table", required, children=spec(f.inner.schema))
        return FieldSpec(name, "lines", required)
    if isinstance(f, fields.Dict):
        return FieldSpec(name, "dict", required)
    if isinstance(f, fields.Boolean):
        return FieldSpec(name, "checkbox", required)
    if isinstance(f, fields.Integer):
        return FieldSpec(name, "select" if _choices(f) else "integer", required, _choices(f))
    if isinstance(f, fields.Decimal | fields.Float):
        return FieldSpec(name, "decimal", required)
    if isinstance(f, fields.DateTime):
        return FieldSpec(name, "datetime", required)
    if isinstance(f, fields.Date):
        return FieldSpec(name, "date", required)
    if type(f).__name__ == "Month":
        return FieldSpec(name, "month", required)
    if _choices(f):
        return FieldSpec(name, "select", required, _choices(f))
    return FieldSpec(name, "textarea" if _max_length(f) > 200 else "text", required)


# ---- reading a posted form -----------------------------------------------------------------------------

class Reader:
    """Turns a posted form into a payload; remembers which posted row each list item came from."""

    def __init__(self, form, tz: str = "Asia/Shanghai"):
        self.form = form
        self.tz = ZoneInfo(tz)
        self.rows: dict[str, list[int]] = {}  # table path → posted row numbers of the items kept

    def payload(self, specs: list[FieldSpec], prefix: str = "") -> dict:
        data = {}
        for s in specs:
            key = prefix + s.name
            value = self._value(s, key)
            if value is not None:
                data[s.name] = value
        return data

    def _value(self, s: FieldSpec, key: str):
        if s.kind == "group":
            return self.payload(s.children, key + ".") or None
        if s.kind == "table":
            numbers = sorted({int(k[len(key) + 1:].split(".")[0]) for k in self.form
                              if k.startswith(key + ".") and k[len(key) + 1:].split(".")[0].isdigit()})
            items, kept = [], []
            for n in numbers:
                row = self.payload(s.children, f"{key}.{n}.")
                if row:
                    items.append(row)
                    kept.append(n)
            self.rows[key] = kept
            return items if items or s.required else None
        if s.kind == "checkbox":
            return True if self.form.get(key) else None
        text = (self.form.get(key) or "").strip()
        if not text:
            return None
        if s.kind == "lines":
            return [line.strip() for line in text.splitlines() if line.strip()]
        if s.kind == "dict":
            result = {}
            for line in text.splitlines():
                k, sep, v = line.replace("：", ":").replace("=", ":").partition(":")
                if k.strip():
                    result[k.strip()] = v.strip() if sep else ""
            return result
        if s.kind == "datetime":
            try:
                return datetime.fromisoformat(text).replace(tzinfo=self.tz).isoformat()
            except ValueError:
                return text
        return text

    def errors(self, messages, prefix: str = "") -> dict[str, list[str]]:
        """marshmallow's nested messages as {posted name: [messages]}, list items renumbered to posted rows."""
        flat: dict[str, list[str]] = {}
        if isinstance(messages, list | tuple):
            flat.setdefault(prefix.rstrip(".") or "_form", []).extend(str(m) for m in messages)
            return flat
        if not isinstance(messages, dict):
            flat.setdefault(prefix.rstrip(".") or "_form", []).append(str(messages))
            return flat
        table = self.rows.get(prefix.rstrip("."))
        for k, v in messages.items():
            if isinstance(k, int) or (isinstance(k, str) and k.isdigit()):
                k = int(k)
                k = table[k] if table is not None and k < len(table) else k
            for name, msgs in self.errors(v, f"{prefix}{k}.").items():
                flat.setdefault(name, []).extend(msgs)
        return flat


def values_from(data: dict, specs: list[FieldSpec], prefix: str = "") -> dict[str, str]:
    """Form values for an instance's current data (to edit it in place)."""
    values: dict[str, str] = {}
    for s in specs:
        key, value = prefix + s.name, (data or {}).get(s.name)
        if value is None:
            continue
        if s.kind == "group" and isinstance(value, dict):
            values.update(values_from(value, s.children, key + "."))
        elif s.kind == "table" and isinstance(value, list):
            for n, row in enumerate(value):
                values.update(values_from(row, s.children, f"{key}.{n}."))
        elif s.kind == "lines" and isinstance(value, list):
            values[key] = "\n".join(str(v) for v in value)
        elif s.kind == "dict" and isinstance(value, dict):
            values[key] = "\n".join(f"{k}: {v}" for k, v in value.items())
        elif s.kind == "checkbox":
            values[key] = "on" if value else ""
        else:
            values[key] = str(value)
    return values


def row_count(values: dict, key: str) -> int:
    """How many rows a table shows: the filled ones (posted or stored) plus a few blank ones."""
    numbers = [int(k[len(key) + 1:].split(".")[0]) for k in values
               if k.startswith(key + ".") and k[len(key) + 1:].split(".")[0].isdigit()]
    return (max(numbers) + 1 if numbers else 0) + BLANK_ROWS
