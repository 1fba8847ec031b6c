"""The import rules of docs/architecture.md#import-rules, checked on the package's own source.

Every import statement counts, also those inside functions. A lower layer never imports a higher
one; ``spice`` never imports ``eqegs_repo``; the kernels in ``kernels`` import only numpy, scipy,
numba, the standard library, ``eqegs_repo.errors`` and each other; nothing imports the CLI; the
bare package ``eqegs_repo`` (the face, which imports navigation) counts as navigation.
"""
import ast
import sys

import pytest

from tests.helpers import ROOT

# Layers, low to high: a module may import its own layer and those below it.
LAYERS = {
    "errors": 0, "naming": 0, "urls": 0, "measured": 0, "step_table": 0, "version": 0, "snapshot": 0,
    "kernels": 1,
    "io": 2,
    "params": 3,
    "cooking": 4, "figures": 4,  # figures draw datasets; export draws them into the app's folders
    "batch": 5, "local_cluster": 5, "watch": 5, "history": 5, "file_events": 5, "scheduler": 5, "live_page": 5,  # many samples at once; Repository.reanalyze and .watch delegate
    "temperature_fits": 5,  # tau(T) laws fitted to the reanalysis table
    "repository": 6, "sample": 6, "display": 6, "completion": 6, "listing_cache": 6,
    "simulate": 7,  # the forward model, synthetic trees and the demo, which cooks and draws
    "cli": 8,
}
FACES = {"eqegs_repo", "eqegs_repo.__main__"}  # the package face and the entry point import anything
FACE_LAYER = LAYERS["repository"]
"""The bare package ``eqegs_repo`` (``from eqegs_repo import __version__``) counts as navigation: its
face imports ``repository`` and ``sample``, so a module below navigation never imports it."""
STEPS_MAY_IMPORT = {"numpy", "scipy", "numba"}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts), path.name == "__init__.py"


def imported_modules(source, module, is_package):
    """Absolute names of every module ``source`` imports (``from a import b`` gives ``a.b`` when
    ``a.b`` is a module of this repository, else ``a``)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if is_repo_module(candidate) else base


def is_repo_module(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(name):
    if name == "eqegs_repo":
        return FACE_LAYER
    parts = name.split(".")
    return LAYERS.get(parts[1]) if parts[0] == "eqegs_repo" and len(parts) > 1 else None


def violations(module, targets):
    """The broken rules of ``module`` importing ``targets``, one line each."""
    out = []
    top = module.split(".")[0]
    for target in targets:
        root = target.split(".")[0]
        if module in FACES:
            continue
        if top == "spice":
            if root == "eqegs_repo":
                out.append(f"{module} imports {target}: spice never imports eqegs_repo")
            continue
        if layer(target) == LAYERS["cli"] and layer(module) != LAYERS["cli"]:
            out.append(f"{module} imports {target}: nothing imports the CLI")
        elif layer(module) is not None and layer(target) is not None and layer(target) > layer(module):
            face = " (the package face, which imports navigation)" if target == "eqegs_repo" else ""
            out.append(f"{module} (layer {layer(module)}) imports {target}{face} (layer {layer(target)}): "
                       "a lower layer never imports a higher one")
        if layer(module) == LAYERS["kernels"]:
            allowed = (root in STEPS_MAY_IMPORT or root in sys.stdlib_module_names or root == "__future__"
                       or target == "eqegs_repo.errors" or layer(target) == LAYERS["kernels"])
            if not allowed:
                out.append(f"{module} imports {target}: the kernels import only numpy, scipy, numba, "
                           "the standard library, eqegs_repo.errors and eqegs_repo.kernels")
    return out


def sources():
    for package in ("eqegs_repo", "spice"):
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path


def test_every_module_has_a_layer():
    unknown = {module_name(p)[0] for p in sources()
               if p.parts[len(ROOT.parts)] == "eqegs_repo" and module_name(p)[0] not in FACES
               and layer(module_name(p)[0]) is None}
    assert not unknown, f"modules without a layer in LAYERS (add them, and to docs/architecture.md): {sorted(unknown)}"


def test_imports_follow_the_layers():
    broken = []
    for path in sources():
        module, is_package = module_name(path)
        broken += violations(module, set(imported_modules(path.read_text(), module, is_package)))
    assert not broken, "import rules broken:\n" + "\n".join(sorted(broken))


@pytest.mark.parametrize("module, source, expected", [
    ("eqegs_repo.kernels.reconstruction", "from eqegs_repo.simulate import drive", "eqegs_repo.kernels only"),
    ("eqegs_repo.kernels.sensors", "def f():\n    import pandas", "the kernels import only"),
    ("eqegs_repo.io.raw", "from eqegs_repo.cooking import cook", "lower layer never imports"),
    ("eqegs_repo.cooking.cook", "def f():\n    from eqegs_repo import __version__", "lower layer never imports"),
    ("eqegs_repo.cooking.background", "import eqegs_repo", "lower layer never imports"),
    ("eqegs_repo.cooking.cook", "from ..cli import main", "nothing imports the CLI"),
    ("spice.store", "import eqegs_repo.errors", "spice never imports eqegs_repo"),
])
def test_the_checker_catches_each_kind_of_violation(module, source, expected):
    is_package = False
    found = violations(module, set(imported_modules(source, module, is_package)))
    assert any(expected.split(" only")[0] in line for line in found), found
