"""CQL2 JSON (as the `cql2` package parses and validates it) to parameterized DuckDB SQL.

Every literal becomes a `?` parameter; property names become quoted columns of the index
(stacmask.catalog.index); operators and functions are looked up in fixed tables, so an unknown
one (`lte`, `eq`, `FOO(id)`) is a `QueryError` naming it, never SQL. Operands are type-checked
against the kinds of the indexed properties (what /queryables lists): `"eo:cloud_cover" < '50'`
is refused. Semantics follow the `cql2` package's own evaluation (`Expr.matches`), so a filter
selects the same items as evaluating it item by item over the JSON: a property that no item
has is NULL (three-valued logic: `NULL OR TRUE` is true, `NOT NULL` is not), `IN` and the
array operators compare values of the same kind, temporal relations follow cql2's interval
definitions. `cql2`'s own `to_sql` is not used: it writes PostgreSQL (`E'...'` strings,
`= SOME(ARRAY[...])`), inlines literals and passes unknown function names through as SQL calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import shapely

from stacmask.catalog.index import cql2_text, quote_name
from stacmask.errors import QueryError
from stacmask.serve.params import MAX_LIST_ITEMS, echo, parse_geometry, parse_instant

#: Kinds of SQL operands (the index's property kinds, plus what literals and functions give).
NUMERIC = frozenset({"integer", "number"})
COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_equals": "ST_Equals",
    "s_disjoint": "ST_Disjoint",
    "s_touches": "ST_Touches",
    "s_within": "ST_Within",
    "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses",
    "s_contains": "ST_Contains",
}
ARITHMETIC = ("+", "-", "*", "/", "%", "^", "div")
#: cql2's inverse temporal relations: the counterpart with its operands exchanged.
TEMPORAL_INVERSE = {
    "t_after": "t_before",
    "t_metBy": "t_meets",
    "t_overlappedBy": "t_overlaps",
    "t_startedBy": "t_starts",
    "t_contains": "t_during",
    "t_finishedBy": "t_finishes",
}
TEMPORAL = frozenset(
    {"t_before", "t_meets", "t_overlaps", "t_starts", "t_during", "t_finishes"}
    | {"t_equals", "t_disjoint", "t_intersects"}
    | set(TEMPORAL_INVERSE)
)
ARRAYS = frozenset({"a_equals", "a_contains", "a_containedBy", "a_overlaps"})
OTHER = frozenset({"and", "or", "not", "like", "between", "in", "isNull", "casei", "accenti"})
KNOWN_OPERATORS = frozenset(
    set(COMPARISONS) | set(SPATIAL) | set(ARITHMETIC) | TEMPORAL | ARRAYS | OTHER
)
#: Fields every item has besides its properties.
CORE_KINDS = {"id": "string", "collection": "string", "geometry": "geometry"}
_FIRST_INSTANT = "0001-01-01T00:00:00+00:00"
_LAST_INSTANT = "9999-12-31T23:59:59.999999+00:00"


Span = tuple[str, tuple[Any, ...]]
CAST_TIME = "CAST(? AS TIMESTAMPTZ)"


@dataclass(frozen=True)
class Operand:
    """A translated operand: SQL text, its kind, and for temporal values their (start, end)."""

    sql: str
    kind: str
    params: tuple[Any, ...] = ()
    #: ((start SQL, its params), (end SQL, its params)) of an instant, day or interval.
    span: tuple[Span, Span] | None = None


@dataclass
class Translation:
    """A WHERE clause with its parameters, and whether it needs the spatial extension."""

    kinds: dict[str, str]
    params: list[Any] = field(default_factory=list)
    spatial: bool = False
    sql: str = "TRUE"

    def where(self, expr: dict[str, Any]) -> str:
        """The SQL predicate of a CQL2 JSON expression; its parameters are added to `params`."""
        operand = self.operand(expr)
        if operand.kind not in ("boolean", "null"):
            raise QueryError(f"filter {echo(expr)}: not a predicate (true or false)")
        self.params.extend(operand.params)
        return operand.sql

    # -- operands ---------------------------------------------------------------------------
    def operand(self, node: Any) -> Operand:
        """Translate one node of CQL2 JSON."""
        if node is None:
            return Operand("NULL", "null")
        if isinstance(node, bool):
            return Operand("?", "boolean", (node,))
        if isinstance(node, int | float):
            return Operand("?", "number", (float(node),))
        if isinstance(node, str):
            return Operand("?", "string", (node,))
        if isinstance(node, list):
            raise QueryError(f"filter: a list {echo(node)} is only allowed after IN or A_*")
        if not isinstance(node, dict):
            raise QueryError(f"filter: unexpected {echo(node)}")
        if "property" in node:
            return self.property(str(node["property"]))
        if "timestamp" in node:
            return _instant(str(node["timestamp"]))
        if "date" in node:
            return _day(str(node["date"]))
        if "interval" in node:
            return self.interval(node["interval"])
        if "bbox" in node:
            return self.bbox(node["bbox"])
        if "op" in node:
            return self.operation(str(node["op"]), node.get("args") or [])
        if "type" in node:
            geometry = parse_geometry(node, "filter geometry")
            return Operand("ST_GeomFromWKB(?)", "geometry", (shapely.to_wkb(geometry),))
        raise QueryError(f"filter: unexpected {echo(node)}")

    def property(self, name: str) -> Operand:
        """A column of the index; a property no item has is NULL."""
        name = name.removeprefix("properties.")
        kind = CORE_KINDS.get(name) or self.kinds.get(name)
        if kind is None:
            return Operand("NULL", "null")
        column = quote_name(name)
        span = ((column, ()), (column, ())) if kind == "date-time" else None
        return Operand(column, kind, (), span)

    def interval(self, bounds: Any) -> Operand:
        """INTERVAL(a, b): bounds are instants (a date bound is its first instant), or '..'."""
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise QueryError(f"filter: INTERVAL takes two bounds, got {echo(bounds)}")
        ends: list[Span] = []
        for index, bound in enumerate(bounds):
            if bound == "..":
                ends.append((CAST_TIME, (_FIRST_INSTANT if index == 0 else _LAST_INSTANT,)))
            elif isinstance(bound, str):
                ends.append(_time_literal(bound).span[0])  # type: ignore[index]
            else:
                operand = self.operand(bound)
                if operand.kind == "null":
                    return Operand("NULL", "null")
                if operand.span is None:
                    raise QueryError(f"filter: INTERVAL bound {echo(bound)} is not a time")
                ends.append(operand.span[0])
        return Operand("NULL", "interval", (), (ends[0], ends[1]))

    def bbox(self, values: Any) -> Operand:
        """BBOX(w, s, e, n) (or 6 numbers) as a polygon."""
        if not isinstance(values, list) or len(values) not in (4, 6):
            raise QueryError(f"filter: BBOX takes 4 or 6 numbers, got {echo(values)}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise QueryError(f"filter: BBOX takes numbers, got {echo(values)}")
        west, south, east, north = values[:4] if len(values) == 4 else values[:2] + values[3:5]
        return Operand(
            "ST_MakeEnvelope(?, ?, ?, ?)",
            "geometry",
            tuple(float(v) for v in (west, south, east, north)),
        )

    # -- operations -------------------------------------------------------------------------
    def operation(self, op: str, args: Sequence[Any]) -> Operand:
        """One operator or function applied to its arguments."""
        if op not in KNOWN_OPERATORS:
            raise QueryError(
                f"filter: unknown operator or function {echo(op)}; supported: comparisons "
                "(=, <>, <, <=, >, >=), AND, OR, NOT, LIKE, BETWEEN, IN, IS NULL, CASEI, ACCENTI, "
                "+ - * / % ^ DIV, S_* spatial, T_* temporal and A_* array functions"
            )
        if op in ("and", "or"):
            parts = [self._predicate(arg) for arg in args]
            if len(parts) < 2:
                raise QueryError(f"filter: {op.upper()} needs two or more arguments")
            joiner = f" {op.upper()} "
            return _join(parts, lambda sqls: "(" + joiner.join(sqls) + ")", "boolean")
        if op == "not":
            (inner,) = self._arity(op, args, 1)
            return _join([self._predicate(inner)], lambda s: f"(NOT {s[0]})", "boolean")
        if op in COMPARISONS:
            left, right = (self.operand(arg) for arg in self._arity(op, args, 2))
            return self.comparison(op, left, right)
        if op == "like":
            left, right = (self.operand(arg) for arg in self._arity(op, args, 2))
            self._expect(op, left, {"string"})
            self._expect(op, right, {"string"})
            return _join([left, right], lambda s: f"({s[0]} LIKE {s[1]} ESCAPE '\\')", "boolean")
        if op == "between":
            value, low, high = (self.operand(arg) for arg in self._arity(op, args, 3))
            for bound in (low, high):
                self._compatible(op, value, bound)
            return _join(
                [value, low, high], lambda s: f"({s[0]} BETWEEN {s[1]} AND {s[2]})", "boolean"
            )
        if op == "in":
            return self.in_list(*self._arity(op, args, 2))
        if op == "isNull":
            (inner,) = self._arity(op, args, 1)
            return _join([self.operand(inner)], lambda s: f"({s[0]} IS NULL)", "boolean")
        if op in ("casei", "accenti"):
            (inner,) = self._arity(op, args, 1)
            operand = self.operand(inner)
            self._expect(op, operand, {"string"})
            function = "lower" if op == "casei" else "strip_accents"
            return _join([operand], lambda s: f"{function}({s[0]})", "string")
        if op in ARITHMETIC:
            return self.arithmetic(op, [self.operand(arg) for arg in args])
        if op in SPATIAL:
            left, right = (self.operand(arg) for arg in self._arity(op, args, 2))
            self._expect(op, left, {"geometry"})
            self._expect(op, right, {"geometry"})
            self.spatial = True
            function = SPATIAL[op]
            return _join([left, right], lambda s: f"{function}({s[0]}, {s[1]})", "boolean")
        if op in TEMPORAL:
            left, right = (self.operand(arg) for arg in self._arity(op, args, 2))
            return self.temporal(op, left, right)
        return self.array(op, args)

    def _predicate(self, node: Any) -> Operand:
        operand = self.operand(node)
        if operand.kind not in ("boolean", "null"):
            raise QueryError(f"filter: {echo(node)} is not a predicate (true or false)")
        return operand

    @staticmethod
    def _arity(op: str, args: Sequence[Any], count: int) -> Sequence[Any]:
        if len(args) != count:
            raise QueryError(f"filter: {op} takes {count} argument(s), got {len(args)}")
        return args

    @staticmethod
    def _expect(op: str, operand: Operand, kinds: set[str]) -> None:
        if operand.kind != "null" and operand.kind not in kinds:
            raise QueryError(
                f"filter: {op} expects {' or '.join(sorted(kinds))}, got {operand.kind} "
                f"(see /queryables for the type of each property)"
            )

    @staticmethod
    def _compatible(op: str, left: Operand, right: Operand) -> None:
        kinds = {left.kind, right.kind} - {"null"}
        temporal = {"date-time", "instant", "date", "string"}
        if len(kinds) <= 1 or kinds <= NUMERIC or (kinds <= temporal and kinds & {"date-time"}):
            return
        if kinds <= {"instant", "date", "date-time"}:
            return
        raise QueryError(
            f"filter: {op} compares a {left.kind} with a {right.kind} "
            "(see /queryables for the type of each property)"
        )

    def comparison(self, op: str, left: Operand, right: Operand) -> Operand:
        """=, <>, <, <=, >, >= of two operands of one kind (a DATE is its whole day)."""
        self._compatible(op, left, right)
        if "null" in (left.kind, right.kind):
            return Operand("NULL", "null")
        if left.kind in ("object", "mixed", "array", "geometry", "interval"):
            raise QueryError(f"filter: {op} cannot compare a {left.kind}")
        if right.kind == "date" or left.kind == "date":
            flipped = left.kind == "date"
            value, day = (_as_time(right), left) if flipped else (_as_time(left), right)
            if flipped:
                op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
            assert day.span is not None
            (start, first), (end, last) = day.span
            between = (f"{value.sql} BETWEEN {start} AND {end}", value.params + first + last)
            sql, params = {
                "=": (f"({between[0]})", between[1]),
                "<>": (f"(NOT {between[0]})", between[1]),
                "<": (f"({value.sql} < {start})", value.params + first),
                "<=": (f"({value.sql} <= {end})", value.params + last),
                ">": (f"({value.sql} > {end})", value.params + last),
                ">=": (f"({value.sql} >= {start})", value.params + first),
            }[op]
            return Operand(sql, "boolean", params)
        if left.kind == "date-time" or right.kind == "date-time":
            left, right = _as_time(left), _as_time(right)
        return _join([left, right], lambda s: f"({s[0]} {COMPARISONS[op]} {s[1]})", "boolean")

    def in_list(self, value_node: Any, items: Any) -> Operand:
        """x IN (a, b, ...): cql2 compares renderings, so only values of x's kind can match."""
        value = self.operand(value_node)
        if not isinstance(items, list) or not items:
            raise QueryError(f"filter: IN takes a non-empty list, got {echo(items)}")
        if len(items) > MAX_LIST_ITEMS:
            raise QueryError(f"filter: IN with more than {MAX_LIST_ITEMS} values")
        operands = [self.operand(item) for item in items]
        for operand in operands:
            self._compatible("in", value, operand)
        if value.kind == "null":
            return Operand("NULL", "null")
        if value.kind == "date-time":
            operands = [_as_time(operand) for operand in operands]
        return _join([value, *operands], lambda s: f"({s[0]} IN ({', '.join(s[1:])}))", "boolean")

    def arithmetic(self, op: str, operands: Sequence[Operand]) -> Operand:
        """+ - * / % (chained to the left), ^ and DIV (two operands) on numbers."""
        if len(operands) < 2 or (op in ("^", "div") and len(operands) != 2):
            raise QueryError(f"filter: {op} takes two operands, got {len(operands)}")
        for operand in operands:
            self._expect(op, operand, set(NUMERIC))
        if any(operand.kind == "null" for operand in operands):
            return Operand("NULL", "null")
        if op == "^":
            return _join(operands, lambda s: f"power({s[0]}, {s[1]})", "number")
        if op == "div":  # cql2: integer division truncated toward zero; by zero: no answer
            return _join(operands, lambda s: f"trunc({s[0]} / NULLIF({s[1]}, 0))", "number")
        return _join(
            operands,
            lambda s: "(" + f" {op} ".join(f"CAST({x} AS DOUBLE)" for x in s) + ")",
            "number",
        )

    def temporal(self, op: str, left: Operand, right: Operand) -> Operand:
        """T_* relations of instants, days and intervals, as cql2 defines them."""
        left, right = (
            _time_literal(str(o.params[0])) if o.kind == "string" and o.params else o
            for o in (left, right)
        )
        for operand in (left, right):
            if operand.kind == "null":
                return Operand("NULL", "null")
            if operand.span is None:
                raise QueryError(f"filter: {op} expects times or intervals, got {operand.kind}")
        if op in TEMPORAL_INVERSE:
            op, left, right = TEMPORAL_INVERSE[op], right, left
        assert left.span is not None and right.span is not None
        parts = {
            "ls": left.span[0],
            "le": left.span[1],
            "rs": right.span[0],
            "re": right.span[1],
        }
        template = {
            "t_before": "le < rs",
            "t_meets": "le = rs",
            "t_overlaps": "ls < rs AND rs < le AND le < re",
            "t_starts": "ls = rs AND le < re",
            "t_during": "ls > rs AND le < re",
            "t_finishes": "ls > rs AND le = re",
            "t_equals": "ls = rs AND le = re",
            "t_disjoint": "NOT (ls <= re AND le >= rs)",
            "t_intersects": "ls <= re AND le >= rs",
        }[op]
        params: list[Any] = []

        def bound(match: re.Match[str]) -> str:
            text, values = parts[match.group(0)]
            params.extend(values)
            return text

        sql = re.sub(r"\b(ls|le|rs|re)\b", bound, template)
        return Operand(f"({sql})", "boolean", tuple(params))

    def array(self, op: str, args: Sequence[Any]) -> Operand:
        """A_EQUALS, A_CONTAINS, A_CONTAINEDBY, A_OVERLAPS of array properties and lists.

        cql2 compares the arrays as sets of the elements' CQL2 text, as the index stores them.
        """
        left, right = (self.array_operand(op, arg) for arg in self._arity(op, args, 2))
        if "null" in (left.kind, right.kind):
            return Operand("NULL", "null")
        template = {
            "a_equals": "(list_has_all({0}, {1}) AND list_has_all({1}, {0}))",
            "a_contains": "list_has_all({0}, {1})",
            "a_containedBy": "list_has_all({1}, {0})",
            "a_overlaps": "list_has_any({0}, {1})",
        }[op]
        order = {"a_equals": (0, 1, 1, 0), "a_containedBy": (1, 0)}.get(op, (0, 1))
        operands = (left, right)
        params: list[Any] = []
        for index in order:
            params.extend(operands[index].params)
        return Operand(template.format(left.sql, right.sql), "boolean", tuple(params))

    def array_operand(self, op: str, node: Any) -> Operand:
        """An array property, or a list literal as the index stores arrays."""
        if isinstance(node, list):
            if len(node) > MAX_LIST_ITEMS:
                raise QueryError(f"filter: {op} with more than {MAX_LIST_ITEMS} values")
            if any(isinstance(v, dict | list) for v in node):
                raise QueryError(f"filter: {op} takes a list of plain values")
            return Operand("CAST(? AS VARCHAR[])", "array", ([cql2_text(v) for v in node],))
        operand = self.operand(node)
        self._expect(op, operand, {"array"})
        return operand


def _join(operands: Sequence[Operand], render: Callable[[list[str]], str], kind: str) -> Operand:
    """An operand built from others: their SQL rendered, their parameters in SQL order."""
    if any(operand.kind == "null" for operand in operands) and kind != "boolean":
        return Operand("NULL", "null")
    params: list[Any] = []
    for operand in operands:
        params.extend(operand.params)
    return Operand(render([operand.sql for operand in operands]), kind, tuple(params))


def _instant(text: str) -> Operand:
    value = parse_instant(text).isoformat()
    return Operand(CAST_TIME, "instant", (value,), ((CAST_TIME, (value,)), (CAST_TIME, (value,))))


def _day(text: str) -> Operand:
    if len(text) != 10:
        raise QueryError(f"filter: DATE {echo(text)} is not YYYY-MM-DD")
    start = parse_instant(f"{text}T00:00:00Z")
    end = start + timedelta(days=1) - timedelta(microseconds=1)
    first, last = start.isoformat(), end.isoformat()
    return Operand(CAST_TIME, "date", (first,), ((CAST_TIME, (first,)), (CAST_TIME, (last,))))


def _time_literal(text: str) -> Operand:
    """A string read as a time: a date (YYYY-MM-DD) as its first instant, else an instant."""
    return _instant(f"{text}T00:00:00Z" if len(text) == 10 else text)


def _as_time(operand: Operand) -> Operand:
    """A time-typed operand; a string literal compared with a time is read as one."""
    if operand.kind in ("date-time", "instant", "date", "null"):
        return operand
    if operand.kind == "string" and operand.params:
        text = str(operand.params[0])
        return _day(text) if len(text) == 10 else _instant(text)
    raise QueryError(f"filter: expected a time, got {operand.kind}")


def translate_filter(expr: dict[str, Any], kinds: dict[str, str]) -> Translation:
    """A filter's SQL (`translation.sql`) and parameters, over properties of these kinds."""
    translation = Translation(kinds)
    translation.sql = translation.where(expr)
    return translation
