"""The package's import layers: a module may import its own layer or lower ones, never higher.

The layers are the ones docs/architecture.md draws. Every import counts, including the lazy
ones inside functions, because a lazy import is still a dependency. A new module must be given
a layer here, which is the moment to decide where it belongs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "lenet5"

# Lowest first. A name is a top-level module or subpackage of lenet5.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "faults", "files", "extras", "hooks", "verdict", "config"}),
    ("data and model", {"data", "images", "histograms", "resample", "preprocess", "model", "model1998", "losses", "sdlm"}),
    ("model files and inference", {"weights", "checkpoint", "inference", "plots", "summary", "recipes",
                                   "distributed"}),
    ("jobs", {"train", "evaluate", "predict", "export"}),
    ("applications", {"inspection", "compare", "web", "explain"}),
    ("interface", {"cli", "__init__", "__main__"}),
]
LAYER_OF = {name: number for number, (_, names) in enumerate(LAYERS) for name in names}


def top_level(path: Path) -> str:
    """``lenet5/compare/store.py`` -> ``compare``; ``lenet5/train.py`` -> ``train``."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_top_levels(source: str, package: tuple[str, ...]) -> set[str]:
    """The lenet5 modules that ``source`` (a module of ``package``) imports, as top-level names."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                if len(parts) == 1:  # `from . import x` at the top: x is the module
                    parts += [alias.name for alias in node.names][:1]
            else:
                parts = (node.module or "").split(".")
        elif isinstance(node, ast.Import):
            parts = node.names[0].name.split(".")
        else:
            continue
        if parts[0] == "lenet5" and len(parts) > 1:
            found.add(parts[1])
    return found


def violations(path: Path, source: str) -> list[str]:
    """Each import in ``source`` (the module at ``path``) that reaches a higher layer."""
    own = top_level(path)
    if own not in LAYER_OF:
        return [f"{own} has no layer: add it to LAYERS (and to docs/architecture.md)"]
    package = path.relative_to(PACKAGE.parent).parent.parts  # ("lenet5", "compare") for compare/store.py
    problems = []
    for name in sorted(imported_top_levels(source, package) - {own}):
        if LAYER_OF.get(name, len(LAYERS)) > LAYER_OF[own]:
            layer = LAYERS[LAYER_OF[name]][0] if name in LAYER_OF else "no layer"
            problems.append(f"{path.relative_to(PACKAGE)} ({LAYERS[LAYER_OF[own]][0]}) imports "
                            f"lenet5.{name} ({layer})")
    return problems


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_higher_layer(path: Path):
    assert violations(path, path.read_text()) == []


@pytest.mark.parametrize("module, source", [
    ("compare/studies.py", "from ..cli.options import apply_overrides"),  # the import issue 14 removed
    ("config.py", "def f():\n    from .model import LeNet5"),  # lazy imports count too
    ("train.py", "import lenet5.web.app"),
    ("data/mnist.py", "from .. import weights"),
])
def test_the_check_catches_upward_imports(module: str, source: str):
    assert len(violations(PACKAGE / module, source)) == 1


def test_the_check_allows_downward_imports():
    assert violations(PACKAGE / "cli" / "train.py", "from ..train import fit\nfrom .options import x") == []
