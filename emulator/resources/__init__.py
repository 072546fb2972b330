"""The declarative resource layer: the long tail of SageMaker's Create/Describe/List/Update/Delete/
Stop/Start operations, derived from one declaration per resource (catalog.py) and botocore's shapes.

`handler_module(served)` builds a module-like object with one function per derived operation,
named as `collect_handlers` expects (CreateDomain -> create_domain), skipping every operation an
existing handler module already serves: operations with real behaviour keep their own handlers.
Operations neither served nor derived are refused with a reason (refused.py).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

from botocore import xform_name

from . import engine, extras, listing
from .catalog import MODELS
from .spec import Model

_VERBS: dict[str, Callable[[Model, Any, dict], dict]] = {
    "Create": engine.create, "Describe": engine.describe, "List": listing.list_resources,
    "Update": engine.update, "Delete": engine.delete, "Stop": engine.stop, "Start": engine.start,
}


def derived_operations() -> dict[str, tuple[Model, str]]:
    """Every operation the declarations derive: operation -> (model, verb)."""
    out: dict[str, tuple[Model, str]] = {}
    for model in MODELS.values():
        for verb, operation in model.operations.items():
            out.setdefault(operation, (model, verb))
    return out


def _bind(model: Model, verb: str) -> Callable[[Any, dict], dict]:
    run = _VERBS[verb]

    def handler(ctx: Any, params: dict) -> dict:
        return run(model, ctx, params)

    handler.__name__ = xform_name(model.operations[verb])
    handler.__doc__ = f"{model.operations[verb]}, derived from the {model.spec.noun} declaration."
    return handler


def handler_module(served: list[ModuleType]) -> Any:
    """The derived handlers (and extras.py's hand-written ones) for operations `served` lacks."""
    taken = {name for module in served for name in dir(module) if not name.startswith("_")}
    functions: dict[str, Callable] = {}
    for operation, (model, verb) in derived_operations().items():
        name = xform_name(operation)
        if name not in taken:
            functions[name] = _bind(model, verb)
    for name, func in extras.HANDLERS.items():
        if name not in taken:
            functions[name] = func
    return SimpleNamespace(__name__="sagemaker_emulator.resources.derived", **functions)
