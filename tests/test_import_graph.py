"""The packages' import graph has no cycle, and the layers hold: checked with grimp, the import-graph
library behind import-linter, as the independent reference (not a walk of our own).

grimp sees every import: at module level, inside functions and under TYPE_CHECKING. So no module
imports one that imports it back even lazily; sfi_core imports neither half; the data half and the
bench half do not import each other; the data chain's stages import the core, not each other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest

PACKAGES = ("sfi_core", "sfi_data", "sfi_bench")


def cycle_edges(graph) -> list[tuple[str, str]]:
    """Direct imports (a, b) such that b leads back to a: the edges of every cycle."""
    return sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(imported, module)
    )


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_no_module_imports_one_that_imports_it_back(graph) -> None:
    # The graph sees real edges, lazy ones too (sfi_data.export imports export_hf inside a function).
    assert graph.direct_import_exists(importer="sfi_core.video.fetch", imported="sfi_core.video.container")
    assert graph.direct_import_exists(importer="sfi_data.export", imported="sfi_data.export_hf")
    assert len(graph.modules) > 100
    assert cycle_edges(graph) == []


def test_the_cycle_check_finds_a_planted_cycle(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from planted import b\n")
    (package / "b.py").write_text("def later():\n    from planted import c\n")  # a lazy import counts
    (package / "c.py").write_text("import planted.a\n")
    (package / "d.py").write_text("import planted.a\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])  # not syspath_prepend: pkg_resources
    planted = grimp.build_graph("planted", cache_dir=None)
    assert cycle_edges(planted) == [
        ("planted.a", "planted.b"),
        ("planted.b", "planted.c"),
        ("planted.c", "planted.a"),
    ]
    sys.modules.pop("planted", None)


def test_the_core_imports_neither_half_and_the_halves_not_each_other(graph) -> None:
    for importer, imported in [
        ("sfi_core", "sfi_data"),
        ("sfi_core", "sfi_bench"),
        ("sfi_data", "sfi_bench"),
        ("sfi_bench", "sfi_data"),
    ]:
        chains = graph.find_shortest_chains(importer=importer, imported=imported, as_packages=True)
        assert not chains, f"{importer} imports {imported}: {sorted(chains)[:3]}"


def test_stages_import_the_core_not_each_other(graph) -> None:
    stages = graph.find_children("sfi_data.stages")
    assert len(stages) > 3
    crossing = {
        stage: sorted(graph.find_modules_directly_imported_by(stage) & stages)
        for stage in stages
        if graph.find_modules_directly_imported_by(stage) & stages
    }
    assert crossing == {}
