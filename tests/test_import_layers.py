"""Imports go one way only: parse every shipped module's imports (plain ``ast``, nothing is imported) and check
the layering of README.md's "four parts" and ../shared/DESIGN.md.

Inside ``ckks`` a module may import only its own layer or a lower one:

    0  ckks.errors, ckks.instrument, ckks.progress, ckks.threads, ckks.allocator, ckks.memory,
       ckks.kernel_cache                              (shared by every layer)
    1  ckks.ring.*                                    (knows nothing of CKKS)
    2  ckks.params                                    (draws its primes from ckks.ring.primes)
    3  ckks.rlwe.*                                    (scheme-neutral RLWE)
    4  ckks.scheme.*                                  (the CKKS layer)
    5  ckks (the package root: the public API), ckks.warmup (runs every layer once)

Between packages: ``ckks`` imports none of nn / reference / validation / benchmarks; ``nn`` imports neither
``reference`` nor ``validation``; only ``reference`` imports pyhelayers; only ``nn/train.py`` imports TensorFlow
(tensorflow, tf_keras, keras). ``importlib.import_module("name")`` with a literal name counts as an import.
Tests are not checked: they cross-check the engines against each other on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ckks", "nn", "reference", "validation", "benchmarks")
TENSORFLOW = ("tensorflow", "tf_keras", "keras")
CKKS_BASE = ("ckks.errors", "ckks.instrument", "ckks.progress", "ckks.threads", "ckks.allocator",
             "ckks.memory", "ckks.kernel_cache")


def module_name(path: Path, root: Path = ROOT) -> str:
    """ckks/ring/ntt.py -> 'ckks.ring.ntt'; ckks/ring/__init__.py -> 'ckks.ring'."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, name: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative imports resolved against ``name``.

    ``from a.b import c`` yields both 'a.b' and 'a.b.c' (c may be a submodule); a literal
    ``importlib.import_module("x")`` or ``__import__("x")`` yields 'x'.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id == "__import__"))):
            found.append((node.lineno, node.args[0].value))
    return found


def ckks_rank(module: str) -> int | None:
    """The layer of a ckks module (table in this file's docstring); None outside ckks."""
    if module in ("ckks", "ckks.warmup"):
        return 5
    if module in CKKS_BASE:
        return 0
    for rank, prefix in ((1, "ckks.ring"), (2, "ckks.params"), (3, "ckks.rlwe"), (4, "ckks.scheme")):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


def top(module: str) -> str:
    return module.partition(".")[0]


def violations(module: str, imports: list[tuple[int, str]]) -> list[str]:
    """Every import of ``module`` that breaks a rule, as 'module:line imports target (rule)'."""
    found = []
    for line, target in imports:
        rule = None
        if top(module) == "ckks":
            if top(target) in PACKAGES[1:]:
                rule = "ckks imports no other package of the project"
            elif top(target) == "ckks":
                own, theirs = ckks_rank(module), ckks_rank(target)
                if theirs is not None and own is not None and theirs > own:
                    rule = f"layer {own} may not import layer {theirs}"
        if top(module) == "nn" and top(target) in ("reference", "validation"):
            rule = "nn imports neither reference nor validation"
        if top(target) == "pyhelayers" and top(module) != "reference":
            rule = "only reference imports pyhelayers"
        if top(target) in TENSORFLOW and module != "nn.train":
            rule = "only nn/train.py imports TensorFlow"
        if rule:
            found.append(f"{module}:{line} imports {target} ({rule})")
    return found


def shipped_modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_shipped_module_imports_downwards_only() -> None:
    paths = shipped_modules()
    assert len(paths) > 60 and any(p.parts[-2] == "ring" for p in paths)   # the walk did find the tree
    broken = []
    for path in paths:
        name = module_name(path)
        broken += violations(name, imported_modules(path.read_text(), name, path.name == "__init__.py"))
    assert not broken, "\n".join(broken)


def test_every_ckks_module_has_a_layer() -> None:
    unplaced = [module_name(p) for p in (ROOT / "ckks").rglob("*.py") if ckks_rank(module_name(p)) is None]
    assert not unplaced, f"place these in a layer of this file's table: {unplaced}"


@pytest.mark.parametrize(("module", "source", "is_package", "rule"), [
    ("ckks.ring.ntt", "from ..scheme.encoder import Encoder", False, "layer 1 may not import layer 4"),
    ("ckks.ring.ntt", "from ckks.params import Parameters", False, "layer 1 may not import layer 2"),
    ("ckks.rlwe.keys", "from ..scheme import evaluator", False, "layer 3 may not import layer 4"),
    ("ckks.errors", "from .ring import primes", False, "layer 0 may not import layer 1"),
    ("ckks.scheme", "import validation.cli", True, "ckks imports no other package"),
    ("ckks.rlwe.keys", "import ckks", False, "layer 3 may not import layer 5"),
    ("ckks.scheme.encoder", "import nn.model", False, "ckks imports no other package"),
    ("nn.model", "from reference import helayers_flow", False, "nn imports neither"),
    ("nn.plan", "from validation.report import x", False, "nn imports neither"),
    ("validation.compare", "import pyhelayers", False, "only reference imports pyhelayers"),
    ("nn.model", "import importlib\nimportlib.import_module('pyhelayers')", False, "only reference"),
    ("nn.model", "import tf_keras as keras", False, "only nn/train.py imports TensorFlow"),
    ("validation.cli", "from tensorflow import keras", False, "only nn/train.py imports TensorFlow"),
])
def test_the_checker_catches_each_kind_of_upward_import(module: str, source: str, is_package: bool,
                                                         rule: str) -> None:
    found = violations(module, imported_modules(source, module, is_package))
    assert found and rule in found[0]


@pytest.mark.parametrize(("module", "source", "is_package"), [
    ("ckks.scheme.encoder", "from ..ring import rns\nfrom ..rlwe.ciphertext import Plaintext", False),
    ("ckks.params", "from .ring.primes import ntt_primes\nfrom .errors import ParameterError", False),
    ("ckks", "from .scheme.encoder import Encoder", True),
    ("nn.train", "import tensorflow as tf", False),
    ("reference", "import importlib\nimportlib.import_module('pyhelayers')", True),
    ("validation.compare", "import ckks\nfrom nn import model\nfrom reference import helayers_flow", False),
])
def test_the_checker_passes_downward_imports(module: str, source: str, is_package: bool) -> None:
    assert violations(module, imported_modules(source, module, is_package)) == []
