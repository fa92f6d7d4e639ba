"""Druid SQL expressions and queries, translated to DuckDB SQL, or refused by name.

sqlglot parses the Druid dialect; the translation keeps only what it knows DuckDB evaluates the
way Druid does and rewrites the Druid time functions. Anything else (a function, an operator, a
format token) raises UnsupportedSql naming it: a job or query that cannot be answered exactly is
refused, never answered approximately.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

# Node types whose DuckDB meaning matches Druid's for ingestion expressions.
_EXPRESSION_NODES: tuple[type[exp.Expr], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Add, exp.Sub,
    exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is,
    exp.In, exp.Between, exp.Like, exp.And, exp.Or, exp.Not, exp.Case, exp.If, exp.Cast,
    exp.TryCast, exp.DataType, exp.Coalesce, exp.Upper, exp.Lower, exp.Length, exp.Substring,
    exp.Concat, exp.DPipe, exp.Trim, exp.Abs, exp.Floor, exp.Ceil, exp.Round, exp.Max, exp.Min,
    exp.Sum, exp.Count, exp.Star, exp.Distinct,
)  # fmt: skip
AGGREGATES: tuple[type[exp.Expr], ...] = (exp.Max, exp.Min, exp.Sum, exp.Count, exp.Avg)
_TIME_FUNCTIONS = {
    "TIME_PARSE", "TIME_FLOOR", "TIME_FORMAT", "MILLIS_TO_TIMESTAMP", "TIMESTAMP_TO_MILLIS",
    "LATEST", "EARLIEST", "NVL",
}  # fmt: skip
_AGGREGATE_FUNCTIONS = {"LATEST", "EARLIEST"}
_PERIOD = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
# Joda-Time pattern letters (Druid's TIME_PARSE / TIME_FORMAT) and their strftime equivalents.
_JODA = [
    ("yyyy", "%Y"), ("yy", "%y"), ("MMMM", "%B"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"),
    ("HH", "%H"), ("hh", "%I"), ("mm", "%M"), ("ss", "%S"), ("SSS", "%g"), ("a", "%p"),
    ("EEEE", "%A"), ("EEE", "%a"), ("ZZ", "%z"), ("Z", "%z"), ("D", "%j"),
]  # fmt: skip
DEFAULT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"  # Druid's ISO 8601 form: 2024-01-01T00:00:00.000Z


class UnsupportedSql(ValueError):
    """A Druid SQL construct the emulator cannot evaluate exactly; `name` says which."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Translated:
    """A DuckDB expression and whether it aggregates."""

    sql: str
    aggregates: bool
    columns: frozenset[str]


def _parse(text: str) -> exp.Expr:
    try:
        tree = sqlglot.parse_one(text, read="druid")
    except SqlglotError as error:
        raise UnsupportedSql(text, f"cannot parse {text!r}: {_first(error)}") from None
    if tree is None:
        raise UnsupportedSql(text, f"cannot parse {text!r}")
    return tree


def _first(error: SqlglotError) -> str:
    if isinstance(error, ParseError) and error.errors:
        return str(error.errors[0]["description"])
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    return type(node).__name__.upper()


def joda_to_strftime(pattern: str) -> str:
    """A Joda-Time pattern as a strftime format; UnsupportedSql names a letter it cannot map."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise UnsupportedSql(pattern, f"unclosed quote in time format {pattern!r}")
            out.append(pattern[i + 1 : end].replace("%", "%%") or "'")
            i = end + 1
            continue
        for joda, strf in _JODA:
            if pattern.startswith(joda, i):
                out.append(strf)
                i += len(joda)
                break
        else:
            if pattern[i].isalpha():
                raise UnsupportedSql(
                    pattern, f"time format letter {pattern[i]!r} in {pattern!r} is not supported"
                )
            out.append(pattern[i].replace("%", "%%"))
            i += 1
    return "".join(out)


def period_interval(period: str) -> tuple[str, str]:
    """An ISO 8601 period as a DuckDB INTERVAL and the origin Druid aligns its buckets to."""
    found = _PERIOD.fullmatch(period.upper())
    if not found or not any(found.groupdict().values()):
        raise UnsupportedSql(period, f"{period!r} is not an ISO 8601 period such as PT1H or P1D")
    parts = {k: v for k, v in found.groupdict().items() if v}
    interval = " ".join(f"{v} {k}" for k, v in parts.items())
    # Druid aligns weeks to Mondays, everything else to 1970-01-01 (a Thursday).
    origin = "2000-01-03" if set(parts) == {"weeks"} else "1970-01-01"
    return interval, origin


def _literal_string(node: exp.Expr, function: str) -> str:
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise UnsupportedSql(function, f"{function} needs a string literal here, not {node.sql()}")
    return str(node.this)


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _rewrite(node: exp.Anonymous, time_column: str) -> exp.Expr:
    name = str(node.name).upper()
    args = list(node.expressions)
    if name == "NVL" and len(args) == 2:
        return exp.Coalesce(this=args[0], expressions=[args[1]])
    if name == "TIME_PARSE" and 1 <= len(args) <= 2:
        if len(args) == 1:
            zoned = exp.TryCast(this=args[0], to=exp.DataType.build("TIMESTAMPTZ"))
            utc = exp.AtTimeZone(this=zoned, zone=exp.Literal.string("UTC"))
            return exp.Cast(this=utc, to=exp.DataType.build("TIMESTAMP"))
        fmt = joda_to_strftime(_literal_string(args[1], name))
        parsed = _call("try_strptime", exp.Cast(this=args[0], to=exp.DataType.build("VARCHAR")),
                       exp.Literal.string(fmt))  # fmt: skip
        return exp.Cast(this=parsed, to=exp.DataType.build("TIMESTAMP"))
    if name == "TIME_FLOOR" and len(args) == 2:
        interval, origin = period_interval(_literal_string(args[1], name))
        return _call(
            "time_bucket",
            exp.Interval(this=exp.Literal.string(interval)),
            exp.Cast(this=args[0], to=exp.DataType.build("TIMESTAMP")),
            exp.Cast(this=exp.Literal.string(origin), to=exp.DataType.build("TIMESTAMP")),
        )
    if name == "TIME_FORMAT" and 1 <= len(args) <= 2:
        fmt = (
            joda_to_strftime(_literal_string(args[1], name))
            if len(args) == 2
            else DEFAULT_TIME_FORMAT
        )
        return _call("strftime", exp.Cast(this=args[0], to=exp.DataType.build("TIMESTAMP")),
                     exp.Literal.string(fmt))  # fmt: skip
    if name == "MILLIS_TO_TIMESTAMP" and len(args) == 1:
        return _call("epoch_ms", exp.Cast(this=args[0], to=exp.DataType.build("BIGINT")))
    if name == "TIMESTAMP_TO_MILLIS" and len(args) == 1:
        return _call("epoch_ms", exp.Cast(this=args[0], to=exp.DataType.build("TIMESTAMP")))
    if name in ("LATEST", "EARLIEST") and 1 <= len(args) <= 2:
        # Druid's optional second argument is a byte budget for strings, not a meaning.
        order = exp.Column(this=exp.to_identifier(time_column, quoted=True))
        return _call("arg_max" if name == "LATEST" else "arg_min", args[0], order)
    raise UnsupportedSql(name, f"{name} with {len(args)} argument(s) is not supported")


def _translate_tree(tree: exp.Expr, time_column: str) -> exp.Expr:
    holder = exp.Paren(this=tree)  # so that the root itself can be replaced
    for node in reversed(list(tree.find_all(exp.Anonymous))):  # deepest first
        if str(node.name).upper() not in _TIME_FUNCTIONS:
            name = str(node.name).upper()
            raise UnsupportedSql(name, f"function {name} is not supported by the emulator")
        node.replace(_rewrite(node, time_column))
    for division in list(holder.find_all(exp.Div)):
        # Druid divides integers as integers; DuckDB's / always gives a double.
        division.replace(_call("druid_div", division.this, division.expression))
    for cast in list(holder.find_all(exp.Cast)):
        # Druid's CAST of text that is not a number gives null, not an error.
        plain = not isinstance(cast, exp.TryCast) and not isinstance(cast.this, exp.AtTimeZone)
        if plain and cast.args.get("to") is not None:
            cast.replace(exp.TryCast(this=cast.this, to=cast.args["to"]))
    result: exp.Expr = holder.this
    return result


def translate_expression(
    text: str, columns: Collection[str], time_column: str = "__time"
) -> Translated:
    """A mapping or filter expression over input columns, as DuckDB SQL."""
    tree = _parse(text)
    used = set()
    aggregates = False
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            name = str(node.name).upper()
            if name not in _TIME_FUNCTIONS:
                raise UnsupportedSql(name, f"function {name} is not supported by the emulator")
            aggregates = aggregates or name in _AGGREGATE_FUNCTIONS
            continue
        if not isinstance(node, _EXPRESSION_NODES):
            name = _name(node)
            raise UnsupportedSql(name, f"{name} in {text!r} is not supported by the emulator")
        if isinstance(node, AGGREGATES):
            aggregates = True
        if isinstance(node, exp.Column):
            if node.table:
                raise UnsupportedSql(node.sql(), f"qualified column {node.sql()} in {text!r}")
            used.add(node.name)
    unknown = sorted(used - set(columns))
    if unknown:
        raise UnsupportedSql(
            unknown[0], f"column {unknown[0]!r} in {text!r} is not in the input schema"
        )
    translated = _translate_tree(tree, time_column)
    return Translated(translated.sql(dialect="duckdb", identify=True), aggregates, frozenset(used))


def translate_query(text: str, tables: Mapping[str, str]) -> str:
    """A Druid SQL SELECT over the project's tables (name: DuckDB table), as DuckDB SQL."""
    try:
        statements = sqlglot.parse(text, read="druid")
    except SqlglotError as error:
        raise UnsupportedSql("syntax", f"cannot parse the query: {_first(error)}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise UnsupportedSql("statement", "the query must be a single SELECT statement")
    tree = statements[0]
    names = {cte.alias for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db"):
            raise UnsupportedSql(table.sql(), f"{table.sql()} is not a table of this project")
        if table.name not in tables and table.name not in names:
            raise UnsupportedSql(
                table.name, f"Object '{table.name}' not found within the project's tables"
            )
        if table.name in tables and table.name not in names:
            # Columns qualified with the table's own name still find it under its alias.
            alias = table.alias or table.name
            table.set("this", exp.to_identifier(tables[table.name], quoted=True))
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    if isinstance(tree, exp.Select):
        for index, column in enumerate(tree.expressions):
            if not isinstance(column, (exp.Alias, exp.Column, exp.Star)):
                # Druid names an unnamed result column EXPR$<position>.
                column.replace(exp.alias_(column.copy(), f"EXPR${index}", quoted=True))
    return _translate_tree(tree, "__time").sql(dialect="duckdb", identify=True)
