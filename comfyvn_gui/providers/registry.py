"""Which adapter checks which catalog template.

Each adapter registers itself beside its class (docs/architecture.md), as SkyPilot's clouds do
with ``@registry.CLOUD_REGISTRY.register``::

    @register("aws")
    class AwsAdapter: ...

There is no table of adapters anywhere else: the modules of this package are found with
:func:`pkgutil.iter_modules`, and importing one runs its ``@register``. :func:`adapter_for`
imports only what it must — the module named after the template first (``aws`` for ``aws``,
``lambda_labs`` for ``lambda``) — and :func:`import_all` imports every module (the warm-up
before the first check). Nothing here imports an adapter module or an SDK by itself.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .base import Adapter

#: The package whose modules are the adapters (and their helpers: base, lazy, this module ...).
PACKAGE = __name__.rpartition(".")[0]

#: An adapter class: the type checker holds it to the :class:`~.base.Adapter` protocol.
A = TypeVar("A", bound="Adapter")


@dataclass(frozen=True)
class _Entry:
    adapter: Adapter
    module: str  # the module that registered it (``comfyvn_gui.providers.gcp``)


_LOCK = threading.Lock()
_ENTRIES: dict[str, _Entry] = {}


def register(template_id: str) -> Callable[[type[A]], type[A]]:
    """Class decorator: the class's one instance checks every provider of ``template_id``.

    The class is instantiated here, without arguments, once (adapters keep no state between
    checks: see :class:`~.base.Adapter`). Two modules registering the same template id is a
    mistake and raises :class:`ValueError`; the same module registering again (imported anew
    after a failed import) replaces its entry.
    """

    def decorate(cls: type[A]) -> type[A]:
        module = cls.__module__
        if module == "__main__":  # ``python -m comfyvn_gui.providers.local``: not the adapter
            return cls
        with _LOCK:
            known = _ENTRIES.get(template_id)
            if known is not None and known.module != module:
                raise ValueError(
                    f"template {template_id!r} has two adapters: {known.module} and {module}"
                )
            _ENTRIES[template_id] = _Entry(adapter=cls(), module=module)
        return cls

    return decorate


def module_names() -> list[str]:
    """The modules and subpackages of the adapter package, sorted (``aws``, ``azure``, ...)."""
    import pkgutil

    package = sys.modules.get(PACKAGE) or importlib.import_module(PACKAGE)
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__))


def adapter_for(template_id: str) -> Adapter | None:
    """The adapter of a template, or None where this version has none.

    Imports the module that registers it when that has not happened yet; an exception raised
    by that import (an SDK that cannot be loaded at import time, a syntax error) reaches the
    caller, which reports it as the check's ``error``. Modules are tried in the order of
    :func:`_search_order` until one registers ``template_id``; another module that fails to
    import on the way does not stop the search, but when no module registers the template its
    exception is raised (it may have been the template's own module) rather than None.
    """
    if template_id not in _ENTRIES:
        errors: list[Exception] = []
        for name in _search_order(template_id):
            try:
                importlib.import_module(f"{PACKAGE}.{name}")
            except Exception as exc:  # noqa: BLE001 - raised below unless another module has it
                errors.append(exc)
            if template_id in _ENTRIES:
                break
        else:
            if errors:
                raise errors[0]
            return None
    entry = _ENTRIES[template_id]
    # Registered, but did its module finish importing? Re-raises what stopped it if not; waits
    # for another thread that is importing it still.
    importlib.import_module(entry.module)
    return entry.adapter


def import_all() -> None:
    """Import every module of the package, so each adapter has registered (helpers such as
    ``base`` register nothing; no SDK is imported by this).

    Every module is tried; the first exception raised by an import is raised after the rest
    were imported.
    """
    errors: list[Exception] = []
    for name in module_names():
        try:
            importlib.import_module(f"{PACKAGE}.{name}")
        except Exception as exc:  # noqa: BLE001 - raised once the others are imported
            errors.append(exc)
    if errors:
        raise errors[0]


def registered() -> dict[str, Adapter]:
    """Template id -> adapter, for the modules imported so far (all after :func:`import_all`)."""
    return {tid: entry.adapter for tid, entry in sorted(_ENTRIES.items())}


def adapter_modules() -> dict[str, str]:
    """Template id -> the registering module's name under the package (``lambda``:
    ``lambda_labs``), for the modules imported so far."""
    prefix = PACKAGE + "."
    return {tid: entry.module.removeprefix(prefix) for tid, entry in sorted(_ENTRIES.items())}


def _search_order(template_id: str) -> list[str]:
    """Modules whose name starts with the template id first (``lambda`` -> ``lambda_labs``),
    then the others not imported yet."""
    names = [
        n
        for n in module_names()
        if n.startswith(template_id) or sys.modules.get(f"{PACKAGE}.{n}") is None
    ]
    return sorted(names, key=lambda n: (not n.startswith(template_id), n))
