"""Optional dependencies: import one, or say in one line which extra installs it.

Heavy packages (onnxruntime, FastAPI, Optuna) are extras, imported where they are used;
this is the one place that turns their absence into an actionable error.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import Lenet5Error


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise a one-line error naming the ``pip install 'lenet5[extra]'`` that adds it.

    Args:
        module: the import name, e.g. ``"onnxruntime"``.
        extra: the pyproject extra that installs it, e.g. ``"onnx"``.
        purpose: what needs it, for the message, e.g. ``"lenet5 export"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise Lenet5Error(f"{purpose} needs {missing}, which is not installed: pip install 'lenet5[{extra}]'") from None
