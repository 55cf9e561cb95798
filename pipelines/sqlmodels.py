"""The SQL models in sql/{staging,core,marts}: what each reads, read by DuckDB's own parser, and what it says.

A model file creates one table or view named for the file (`sql/marts/handoffs.sql` creates
`marts.handoffs`), may define macros (`create macro core.worked(...)`), and comments on its table and columns.
Its dependencies are every `schema.table` its statements read, directly or through the macros it calls, plus
the models defining those macros; CTE names are not tables. The `-- depends_on:` header must list exactly
these (config.* excepted: the runner fills it); a mismatch names the file and the table.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

LAYERS = ("staging", "core", "marts")
DEPENDABLE = (*LAYERS, "raw")  # schemas a header lists; config.* is filled by the runner before every model
_DEPENDS = re.compile(r"^--\s*depends_on:\s*(.*)$", re.MULTILINE)
_KEY = re.compile(r"^--\s*key:\s*(.*)$", re.MULTILINE)
# The head of a DDL statement, in front of the query DuckDB's parser reads (json_serialize_sql parses only
# queries). Everything the model reads is found by the parser in what follows the head.
_CREATE = re.compile(r"create\s+(?:or\s+replace\s+)?(?:temp(?:orary)?\s+)?(table|view)\s+([\w.]+)\s+as\s+(.*)",
                     re.IGNORECASE | re.DOTALL)
_SET = re.compile(r"set\s+variable\s+(\w+)\s*=\s*(.*)", re.IGNORECASE | re.DOTALL)
_MACRO = re.compile(r"create\s+(?:or\s+replace\s+)?(?:temp(?:orary)?\s+)?(?:macro|function)\s+([\w.]+)\s*"
                    r"\(([^()]*)\)\s+as\s+(table\s+)?(.*)", re.IGNORECASE | re.DOTALL)


class ModelError(Exception):
    """A model file that cannot be parsed, or whose header disagrees with what it reads."""


@dataclass(frozen=True)
class Model:
    name: str  # "marts.handoffs"
    layer: str
    path: Path
    depends_on: tuple[str, ...]  # what the SQL reads (parsed), sorted
    key: tuple[str, ...] = ()  # the columns that identify a row (`-- key:` in the header), tested unique
    kind: str = "table"  # or "view"
    declared: tuple[str, ...] = ()  # the `-- depends_on:` header, as written
    macros: tuple[str, ...] = ()  # macros this file defines ("core.worked")
    sql_sha256: str = ""
    description: str = ""  # the table comment (COMMENT ON), else the file's leading comment
    column_comments: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def code_version(self) -> str:
        return self.sql_sha256[:16]


@dataclass(frozen=True)
class _Parsed:
    creates: tuple[str, str] | None  # (kind, name)
    reads: frozenset[str]  # qualified tables read by the file's own queries
    calls: frozenset[str]  # qualified macros called
    macros: dict[str, tuple[frozenset[str], frozenset[str]]]  # macro -> (tables its body reads, macros it calls)
    comments: list[str]  # the COMMENT ON statements


def _strip_comments(sql: str) -> str:
    lines = sql.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


def _serialize(con: duckdb.DuckDBPyConnection, query: str, where: str) -> dict:
    tree = json.loads(con.execute("select json_serialize_sql(?)", [query]).fetchone()[0])
    if tree.get("error"):
        raise ModelError(f"{where}: DuckDB cannot parse it: {tree.get('error_message', '?').splitlines()[0]}")
    return tree


def _walk(tree: Any, tables: set[str], unqualified: set[str], ctes: set[str], calls: set[str]) -> None:
    if isinstance(tree, list):
        for x in tree:
            _walk(x, tables, unqualified, ctes, calls)
        return
    if not isinstance(tree, dict):
        return
    if tree.get("type") == "BASE_TABLE":
        schema, table = tree.get("schema_name") or "", tree.get("table_name") or ""
        (tables.add(f"{schema}.{table}") if schema else unqualified.add(table))
    if tree.get("class") == "FUNCTION" and tree.get("schema"):
        calls.add(f"{tree['schema']}.{tree['function_name']}")
    for entry in (tree.get("cte_map") or {}).get("map", []) if isinstance(tree.get("cte_map"), dict) else []:
        ctes.add(entry.get("key", ""))
    for v in tree.values():
        if isinstance(v, (dict, list)):
            _walk(v, tables, unqualified, ctes, calls)


def _reads(con: duckdb.DuckDBPyConnection, query: str, where: str, params: set[str] = frozenset()
           ) -> tuple[frozenset[str], frozenset[str]]:
    """Qualified tables and macros a query reads; an unqualified name that is no CTE is an error."""
    tables: set[str] = set()
    unqualified: set[str] = set()
    ctes: set[str] = set()
    calls: set[str] = set()
    _walk(_serialize(con, query, where), tables, unqualified, ctes, calls)
    if stray := sorted(unqualified - ctes - params):
        raise ModelError(f"{where}: reads {stray[0]!r} without a schema (write schema.table, e.g. core.{stray[0]})")
    return frozenset(tables), frozenset(calls)


def _parse(con: duckdb.DuckDBPyConnection, path: Path, text: str) -> _Parsed:
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as e:
        raise ModelError(f"{path}: DuckDB cannot parse it: {str(e).splitlines()[0]}") from None
    creates: tuple[str, str] | None = None
    reads: set[str] = set()
    calls: set[str] = set()
    macros: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    comments: list[str] = []
    for st in statements:
        body = _strip_comments(st.query)
        kind = st.type.name
        if kind == "ALTER" and body.lower().startswith("comment on"):
            comments.append(body)
            continue
        if kind == "SET" and (m := _SET.fullmatch(body.rstrip(";").strip())):
            r, c = _reads(con, f"select {m.group(2)}", str(path))
            reads |= r
            calls |= c
            continue
        if kind == "SELECT":
            r, c = _reads(con, body, str(path))
            reads |= r
            calls |= c
            continue
        if kind != "CREATE":
            raise ModelError(f"{path}: a model holds create, select, set variable and comment statements only, not {kind}")
        if m := _MACRO.fullmatch(body.rstrip(";").strip()):
            name, params, is_table, expr = m.groups()
            names = {p.strip().split()[0] for p in params.split(",") if p.strip()}
            query = expr if is_table else f"select {expr}"
            macros[name] = _reads(con, query, f"{path}: macro {name}", names)
            continue
        m = _CREATE.fullmatch(body.rstrip(";").strip())
        if m is None:
            raise ModelError(f"{path}: cannot read the statement starting {body[:60]!r}")
        if creates is not None:
            raise ModelError(f"{path}: creates both {creates[1]} and {m.group(2)}; one model per file")
        creates = (m.group(1).lower(), m.group(2))
        r, c = _reads(con, m.group(3), str(path))
        reads |= r
        calls |= c
    return _Parsed(creates, frozenset(reads), frozenset(calls), macros, comments)


def _comments(con: duckdb.DuckDBPyConnection, name: str, kind: str, statements: list[str]
              ) -> tuple[str | None, dict[str, str]]:
    """The table comment and the column comments, as DuckDB reads them (run against an empty stand-in)."""
    if not statements:
        return None, {}
    schema, table = name.split(".", 1)
    try:
        con.execute(f'create schema if not exists "{schema}"')
        columns: list[str] = []
        for st in statements:  # a stand-in with every commented column, so each statement applies
            m = re.match(r"comment\s+on\s+column\s+(.+?)\s+is\s+'", st, re.IGNORECASE | re.DOTALL)
            if m:
                columns.append(_identifier_path(m.group(1))[-1])
        cols = ", ".join(f'"{_q(c)}" integer' for c in dict.fromkeys(columns)) or '"_" integer'
        if kind == "view":
            con.execute(f'create view {name} as select ' + (", ".join(f'null::integer as "{_q(c)}"' for c in
                                                                        dict.fromkeys(columns)) or "1 as _"))
        else:
            con.execute(f"create table {name} ({cols})")
        for st in statements:
            try:
                con.execute(st)
            except duckdb.Error as e:
                raise ModelError(f"{name}: {st[:60]!r}: {str(e).splitlines()[0]}") from None
        table_comment = con.execute("select comment from duckdb_tables() where schema_name = ? and table_name = ? "
                                    "union all select comment from duckdb_views() where schema_name = ? "
                                    "and view_name = ?", [schema, table, schema, table]).fetchone()
        column_comments = dict(con.execute("select column_name, comment from duckdb_columns() where schema_name = ? "
                                           "and table_name = ? and comment is not null",
                                           [schema, table]).fetchall())
        return (table_comment[0] if table_comment else None), column_comments
    finally:
        con.execute(f"drop {'view' if kind == 'view' else 'table'} if exists {name}")


def _identifier_path(text: str) -> list[str]:
    """`marts.t."count"` -> ["marts", "t", "count"] (double quotes hold dots; "" is a quote)."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"' and quoted and text[i + 1:i + 2] == '"':
            cur += '"'
            i += 1
        elif ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    return [*parts, cur.strip()]


def _q(identifier: str) -> str:
    return identifier.replace('"', '""')


def _leading_comment(text: str) -> str:
    """The file's opening `--` lines (headers excluded), as one paragraph."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("--"):
            break
        s = s[2:].strip()
        if not re.match(r"(depends_on|key):", s):
            out.append(s)
    return " ".join(out).strip()


@cache
def _load(sql_dir: Path, fingerprint: tuple[tuple[str, float, int], ...]) -> tuple[Model, ...]:
    con = duckdb.connect()  # parsing only: nothing is read or written
    try:
        return _load_with(con, sql_dir)
    finally:
        con.close()


def _load_with(con: duckdb.DuckDBPyConnection, sql_dir: Path) -> tuple[Model, ...]:
    parsed: dict[str, tuple[Path, str, _Parsed]] = {}
    for layer in LAYERS:
        for f in sorted((sql_dir / layer).glob("*.sql")):
            text = f.read_text(encoding="utf-8")
            p = _parse(con, f, text)
            expected = f"{layer}.{f.stem}"
            if p.creates is None or p.creates[1] != expected:
                got = p.creates[1] if p.creates else "nothing"
                raise ModelError(f"{f}: must create {expected} (the file's name), creates {got}")
            parsed[expected] = (f, text, p)
    macro_home = {mac: name for name, (_, _, p) in parsed.items() for mac in p.macros}

    def via_macros(calls: frozenset[str], seen: frozenset[str] = frozenset()) -> set[str]:
        """Tables read by these macros' bodies and the models defining them, transitively."""
        out: set[str] = set()
        for mac in calls - seen:
            home = macro_home.get(mac)
            if home is None:
                continue  # a built-in in a schema (none today) or an unknown macro: DuckDB says so at run time
            out.add(home)
            tables, inner = parsed[home][2].macros[mac]
            out |= tables | via_macros(inner, seen | calls)
        return out

    found: dict[str, Model] = {}
    for name, (f, text, p) in parsed.items():
        reads = (set(p.reads) | via_macros(p.calls)) - {name}
        deps = tuple(sorted(d for d in reads if d.split(".")[0] in DEPENDABLE))
        for d in deps:
            if d.split(".")[0] in LAYERS and d not in parsed:
                raise ModelError(f"{f}: reads {d}, which no model creates (no sql/{d.replace('.', '/')}.sql)")
        header = _DEPENDS.search(text)
        declared = tuple(c.strip() for c in header.group(1).split(",") if c.strip()) if header else ()
        if header is None:
            raise ModelError(f"{f}: no `-- depends_on:` header; it reads {', '.join(deps) or 'nothing'}")
        if missing := sorted(set(deps) - set(declared)):
            raise ModelError(f"{f}: reads {missing[0]}, which its `-- depends_on:` header does not list"
                             + (f" (nor {', '.join(missing[1:])})" if missing[1:] else ""))
        if extra := sorted(set(declared) - set(deps)):
            raise ModelError(f"{f}: its `-- depends_on:` header lists {extra[0]}, which it does not read"
                             + (f" (nor {', '.join(extra[1:])})" if extra[1:] else ""))
        key = _KEY.search(text)
        kind = p.creates[0] if p.creates else "table"
        table_comment, column_comments = _comments(con, name, kind, p.comments)
        found[name] = Model(name=name, layer=name.split(".")[0], path=f, depends_on=deps,
                            key=tuple(c.strip() for c in key.group(1).split(",") if c.strip()) if key else (),
                            kind=kind, declared=declared, macros=tuple(sorted(p.macros)),
                            sql_sha256=hashlib.sha256(text.encode()).hexdigest(),
                            description=table_comment or _leading_comment(text),
                            column_comments=column_comments)
    return tuple(_ordered(found))


def _ordered(found: dict[str, Model]) -> list[Model]:
    """Dependency order (each model after what it reads), otherwise by layer and file name."""
    order: list[Model] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ModelError(f"dependency cycle: {' -> '.join(chain + (name,))}")
        state[name] = 1
        for d in found[name].depends_on:
            if d in found:
                visit(d, chain + (name,))
        state[name] = 2
        order.append(found[name])

    for name in found:
        visit(name, ())
    return order


def load_models(sql_dir: Path) -> list[Model]:
    """Every model under `sql_dir`, in dependency order; parsed once per change of the files."""
    files = sorted(p for layer in LAYERS for p in (sql_dir / layer).glob("*.sql"))
    fingerprint = tuple((str(p), p.stat().st_mtime, p.stat().st_size) for p in files)
    return list(_load(sql_dir.resolve(), fingerprint))
