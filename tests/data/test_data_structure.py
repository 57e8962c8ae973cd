"""The shape of the data package: small modules and functions, no print, every write through
hyperface.fileio, the split-by-hash importable without the prepare job, the old names still there."""

from __future__ import annotations

import ast
from pathlib import Path

import hyperface.data
import hyperface.evaluate

DATA = Path(hyperface.data.__file__).parent
EVALUATE = Path(hyperface.evaluate.__file__).parent


def _modules(root: Path) -> list[tuple[Path, ast.Module, int]]:
    out = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        out.append((path, ast.parse(text), len(text.splitlines())))
    return out


def _imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_data_modules_and_functions_are_small_and_do_not_print():
    for path, tree, lines in _modules(DATA):
        assert lines <= 500, f"{path}: {lines} lines"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path}:{node.lineno}: {node.name} has {length} lines"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"{path}:{node.lineno}: print in library code"


def test_data_writes_files_only_through_fileio():
    for path, tree, _ in _modules(DATA):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) not in {("os", "replace"), ("os", "rename"), ("uuid", "uuid4"),
                                                          ("tempfile", "mkstemp")}, f"{path}:{node.lineno}"


def test_evaluate_gets_the_split_without_importing_the_prepare_job():
    for path, tree, _ in _modules(EVALUATE):
        assert "hyperface.data.prepare" not in _imported(tree), path
    splits = ast.parse((DATA / "splits.py").read_text(encoding="utf-8"))
    assert {m.split(".")[0] for m in _imported(splits)} <= {"__future__", "hashlib"}


def test_names_other_code_imports_stay_importable():
    from hyperface.data.prepare import PrepareOptions, image_rng, merge, open_sources, prepare, sample_image, split_of
    from hyperface.data.splits import split_of as split_of_splits
    from hyperface.evaluate.datasets import DEFAULT_VAL_FRACTION
    from hyperface.evaluate.datasets import split_of as split_of_evaluate

    assert split_of is split_of_splits is split_of_evaluate
    assert DEFAULT_VAL_FRACTION == PrepareOptions().val_fraction == 0.1
    assert all(callable(f) for f in (image_rng, merge, open_sources, prepare, sample_image))
