"""The package's import graph has no cycles, at the level of modules.

The layer contract itself (`lint-imports`, configured in pyproject.toml) runs in CI before the
tests; this test adds what import-linter's contracts do not say: no two modules anywhere in
``accel`` import each other, directly or through others (function-level imports included).
"""

import grimp
import networkx as nx


def import_graph() -> nx.DiGraph:
    graph = grimp.build_graph("accel")
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    return edges


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in cycles)


def test_the_check_sees_function_level_imports(tmp_path, monkeypatch):
    """A cycle made only by an import inside a function is still found."""
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclepkg import b\n")
    (package / "b.py").write_text("def f():\n    from cyclepkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclepkg")
    assert "cyclepkg.a" in graph.find_modules_directly_imported_by("cyclepkg.b")
