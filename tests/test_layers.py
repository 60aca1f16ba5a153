"""The layers, checked from the source: SQL only in the store package, and imports that run
downward only (including imports inside functions), with no cycles.

    workbench.app, workbench.cli    may import anything below
    workbench.app.jobs              starts pipelines; no streamlit
    pipelines                       the batch steps: the core only
    the core (the rest of workbench) nothing above it; duckdb only in workbench.store
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workbench", "pipelines")
SQL_SCANNED = ("workbench", "pipelines", "benchmarks")
STORE = "workbench.store"

# SQL as this code writes it: keywords in capitals, in string literals. Prose in docstrings,
# comments and messages ("select a run from the list") is lower case, or a docstring.
SQL = re.compile(
    r"\bSELECT\b[\s\S]*?\bFROM\b"
    r"|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b"
    r"|\bUPDATE\s+\w+(?:\s+AS\s+\w+)?\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?(?:TABLE|VIEW|SEQUENCE|INDEX)\b"
    r"|\bDROP\s+(?:TABLE|VIEW|SEQUENCE|INDEX)\b")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


# ------------------------------------------------------------------------------ SQL

def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                found.add(id(body[0].value))
    return found


def _literal_text(node: ast.AST) -> str | None:
    """The text of a string literal; an f-string with {} where its values go."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}"
                       for part in node.values)
    return None


def sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal in `source` that reads as SQL."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                       for part in node.values}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inside_fstrings:
            continue
        text = _literal_text(node)
        if text is not None and SQL.search(text):
            found.append((getattr(node, "lineno", 0), text))
    return found


def test_no_sql_outside_the_store_package() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {text[:70]!r}"
             for path in source_files(*SQL_SCANNED)
             if not module_name(path).startswith(STORE + ".") and module_name(path) != STORE
             for line, text in sql_literals(path.read_text(encoding="utf-8"))]
    assert found == [], "SQL outside workbench/store/ (move it into the table's owner):\n" \
        + "\n".join(found)


def test_the_store_package_does_hold_the_sql() -> None:
    # The scan sees the SQL where it is: otherwise the test above could pass by seeing nothing.
    owners = {module_name(path).rsplit(".", 1)[-1] for path in source_files("workbench/store")
              if sql_literals(path.read_text(encoding="utf-8"))}
    assert {"connection", "requests", "versions", "runs", "evaluations", "candidates",
            "llm_calls", "embeddings", "reality"} <= owners


@pytest.mark.parametrize("planted", [
    'QUERY = "SELECT run_id FROM runs"',
    'def f(session):\n    return session.query("SELECT count(*) "\n        "FROM requests")',
    'def f(session, table):\n    session.execute(f"INSERT INTO {table} VALUES (?)", [1])',
    'X = "UPDATE candidates SET status = ?"',
    'X = "DELETE FROM quarantine WHERE ingest_id = ?"',
    'X = "CREATE TEMP TABLE hits AS SELECT 1"',
    'X = "DROP VIEW IF EXISTS staged"',
    'X = "INSERT OR REPLACE INTO settings VALUES (?, ?)"',
])
def test_a_planted_sql_string_is_found(planted: str) -> None:
    assert sql_literals(planted)


@pytest.mark.parametrize("prose", [
    '"""Reads SELECT ... FROM requests: a docstring may describe SQL."""',
    'def f():\n    """The query is SELECT x FROM y."""',
    'raise ValueError("select a run from the list, or update the settings")',
    'HELP = "drop the table of contents; delete from your notes"',
    '# SELECT x FROM y in a comment',
])
def test_prose_is_not_sql(prose: str) -> None:
    assert sql_literals(prose) == []


# ------------------------------------------------------------------------------ imports

@dataclass(frozen=True)
class Import:
    importer: str
    module: str       # what is imported: a module of ours, or a top-level third-party name
    line: int


def imports_of(path: Path, known: set[str]) -> list[Import]:
    """Every import in the file, at the top or inside functions (`if TYPE_CHECKING:` blocks
    too), as the modules it loads: `from package import module` names the module, and the
    package only when a name defined in the package itself is imported too."""
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [Import(importer, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                  # relative: from the package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            submodules = [f"{base}.{alias.name}" for alias in node.names
                          if f"{base}.{alias.name}" in known]
            if len(submodules) < len(node.names):
                found.append(Import(importer, base, node.lineno))
            found += [Import(importer, module, node.lineno) for module in submodules]
    return found


def all_imports() -> list[Import]:
    files = source_files(*PACKAGES)
    known = {module_name(path) for path in files}
    return [found for path in files for found in imports_of(path, known)]


def under(module: str, *prefixes: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def layer(module: str) -> str:
    if under(module, "workbench.cli", "workbench.app"):
        return "jobs" if module == "workbench.app.jobs" else "ui"
    if under(module, "pipelines"):
        return "pipelines"
    return "core"


FORBIDDEN = {  # layer -> what it must not import
    "core": ("pipelines", "workbench.cli", "workbench.app"),
    "pipelines": ("workbench.cli", "workbench.app"),
    "jobs": ("workbench.cli", "workbench.app.views", "workbench.app.main",
             "workbench.app.state", "streamlit"),
    "ui": (),
}


def test_imports_run_downward_only() -> None:
    wrong = [f"{i.importer} ({layer(i.importer)}, line {i.line}) imports {i.module}"
             for i in all_imports() if under(i.module, *FORBIDDEN[layer(i.importer)])]
    assert wrong == []


def test_duckdb_only_in_the_store_and_streamlit_only_in_the_app() -> None:
    found = all_imports()
    duckdb = {i.importer for i in found if under(i.module, "duckdb")}
    streamlit = {i.importer for i in found if under(i.module, "streamlit")}
    assert duckdb and all(under(importer, STORE) for importer in duckdb), duckdb
    assert streamlit and all(under(importer, "workbench.app") for importer in streamlit)
    assert "workbench.app.jobs" not in streamlit


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for i in all_imports():
        if under(i.module, *PACKAGES) and i.module != i.importer:
            edges.setdefault(i.importer, set()).add(i.module)
    assert edges["workbench.store.versions"]          # the graph is not empty
    assert cycles(edges) == []


def test_a_cycle_and_an_upward_import_are_found() -> None:
    # The checks themselves, on a planted graph and a planted import.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    planted = Import("workbench.store.runs", "pipelines.train", 1)
    assert under(planted.module, *FORBIDDEN[layer(planted.importer)])


def test_the_store_loads_no_torch_streamlit_or_pipelines() -> None:
    modules = ", ".join(module_name(path) for path in source_files("workbench/store"))
    code = (f"import sys, {modules}; print(sorted({{m.split('.')[0] for m in sys.modules}} & "
            "{'torch', 'streamlit', 'sentence_transformers', 'pipelines', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
