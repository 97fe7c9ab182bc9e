"""The --where language: `field op value [and field op value ...]`, values numbers, bare words or quoted strings.
Parsed into Conditions; turned into SQL only with values as parameters, so no text of a query becomes SQL."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from dlbench.errors import ConfigError

WHERE_SYNTAX = "FIELD OP VALUE clauses joined by 'and' (OP one of = != < <= > >=; VALUE a number or a string)"
_WHERE_TOKEN = re.compile(r"""\s*(?:(?P<operator><=|>=|!=|=|<|>)|'(?P<single>[^']*)'|"(?P<double>[^"]*)"
                             |(?P<bare>[A-Za-z0-9_.+\-:]+))""", re.VERBOSE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\Z")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: float | str


def _where_tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text.rstrip()):
        match = _WHERE_TOKEN.match(text, position)
        if not match:
            raise ConfigError(f"--where {text!r}: {text[position:].strip()[:20]!r} is not accepted; "
                              f"expected {WHERE_SYNTAX}")
        kind = match.lastgroup
        tokens.append(("quoted" if kind in ("single", "double") else kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_where(text: str) -> list[Condition]:
    """The conditions of `text`. Only syntax is checked here; fields are checked against the indexes by Results."""
    tokens = _where_tokens(text or "")

    def take(index: int, accepted: tuple[str, ...], what: str) -> tuple[str, str]:
        if index < len(tokens) and tokens[index][0] in accepted:
            return tokens[index]
        shown = repr(tokens[index][1]) if index < len(tokens) else "the end"
        raise ConfigError(f"--where {text!r}: {shown} is not accepted; expected {what} ({WHERE_SYNTAX})")

    conditions = []
    index = 0
    while index < len(tokens):
        if conditions:
            if take(index, ("bare",), "'and'")[1].lower() != "and":
                take(index, (), "'and'")
            index += 1
        field = take(index, ("bare",), "a field name")[1]
        if not _FIELD.match(field) or field.lower() == "and":
            take(index, (), "a field name")
        operator = take(index + 1, ("operator",), "an operator")[1]
        kind, raw = take(index + 2, ("bare", "quoted"), "a value")
        value: float | str = float(raw) if kind == "bare" and _NUMBER.match(raw) else raw
        conditions.append(Condition(field, operator, value))
        index += 3
    return conditions


_BARE = re.compile(r"[A-Za-z0-9_.+\-:]+\Z")


def _value_text(value: float | str) -> str:
    """A value as --where reads it back: numbers bare, plain words bare (unless they would read as a number),
    other strings quoted."""
    if not isinstance(value, str):
        return repr(float(value))
    if _BARE.match(value) and not _NUMBER.match(value) and value.lower() != "and":
        return value
    return f"'{value}'" if '"' in value else f'"{value}"'


def where_text(conditions: Sequence[Condition]) -> str:
    """The --where text that parses back to `conditions` (numbers bare, strings quoted)."""
    return " and ".join(f"{c.field}{c.operator}{_value_text(c.value)}" for c in conditions)


def conditions(where: str | Sequence[Condition]) -> list[Condition]:
    """Conditions given as --where text or already parsed."""
    return parse_where(where) if isinstance(where, str) else list(where)


def where_sql(conditions: Sequence[Condition], column: Callable[[str], str], bind: Callable[[Any], str],
              text_fields: Sequence[str]) -> str:
    """SQL for the conditions: `column(field)` gives a field's expression and `bind(value)` a parameter's
    placeholder; fields in `text_fields` hold text, so a number given for one means its digits (fit_hash=1234)."""
    clauses = []
    for condition in conditions:
        value = condition.value
        if condition.field in text_fields and isinstance(value, float):
            value = str(int(value)) if value.is_integer() else repr(value)
        clauses.append(f"{column(condition.field)} {condition.operator} {bind(value)}")
    return " AND ".join(clauses) or "1"
