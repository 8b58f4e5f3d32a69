"""The paper's HElayers (pyhelayers) flow: the only package that imports pyhelayers.

pyhelayers is optional (the ``helayers`` extra). Nothing here imports it at module import time:
``helayers_available()`` tells whether it can be used and ``load_pyhelayers()`` returns the module or raises
``HelayersUnavailable`` with what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from reference.errors import HelayersUnavailable

__all__ = ["HelayersUnavailable", "helayers_available", "load_pyhelayers"]

_INSTALL_HINT = "install it with `pip install -e '.[helayers]'` (pyhelayers==1.5.5.4, Linux x86-64)"


def load_pyhelayers() -> ModuleType:
    """Import and return the ``pyhelayers`` module.

    Raises:
        HelayersUnavailable: pyhelayers is missing or fails to load (the message says how to install it).
    """
    try:
        return importlib.import_module("pyhelayers")
    except ImportError as exc:
        raise HelayersUnavailable(f"pyhelayers is not available ({exc}); {_INSTALL_HINT}") from exc


def helayers_available() -> bool:
    """True when pyhelayers can be imported here (it is imported on the first call, not before)."""
    try:
        load_pyhelayers()
    except HelayersUnavailable:
        return False
    return True
