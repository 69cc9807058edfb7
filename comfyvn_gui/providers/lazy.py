"""The one way an adapter imports a heavy SDK: on first use, never when its module is imported.

boto3/botocore, azure-identity, google-auth, paramiko, kubernetes and pynvml take from tens to
hundreds of milliseconds to import (and may not be installed): the app must start, and list or
check other providers, without them (docs/architecture.md). An adapter module therefore names
each SDK module it uses once, at its top, as a :class:`LazyImport`, like SkyPilot's
``sky/adaptors/common.py``::

    if TYPE_CHECKING:  # the type checker sees the real module ...
        import paramiko
    else:  # ... the running app a stand-in that imports it on first use
        paramiko = LazyImport("paramiko")

    def connect(...):
        client = paramiko.SSHClient()  # paramiko is imported here, the first time

The import happens on the first attribute read (or :meth:`LazyImport.load_module`, or
:func:`import_now`), in whichever thread reads it — for a check, the executor's worker or the
event loop. A missing SDK raises the same :class:`ImportError` there as a plain ``import``
would, and the check reports it as an ``error``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class LazyImport:
    """A module imported on first use.

    Reading an attribute imports the module (the first time) and returns the module's
    attribute; a submodule that its package does not import itself (``botocore.session``) is
    imported then too, so ``LazyImport("botocore").session.Session`` reads as
    ``import botocore.session`` would. Dunder names (``__wrapped__`` ...) never trigger the
    import, so introspection of the
    adapter module (pytest, inspect, copy) does not load the SDK.
    """

    __slots__ = ("_name",)

    def __init__(self, module_name: str) -> None:
        self._name = module_name

    @property
    def module_name(self) -> str:
        return self._name

    def load_module(self) -> ModuleType:
        """The module, imported now if it was not yet; :class:`ImportError` if it cannot be.

        Looked up anew each time (``sys.modules``, through the import system's locks), exactly
        as an ``import`` statement would: nothing is cached here.
        """
        return importlib.import_module(self._name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        module = self.load_module()
        try:
            return getattr(module, name)
        except AttributeError as exc:
            missing = exc
        submodule = f"{self._name}.{name}"
        try:
            return importlib.import_module(submodule)
        except ModuleNotFoundError as exc:
            if exc.name != submodule:
                raise
        raise missing

    def __repr__(self) -> str:
        state = "imported" if self._name in sys.modules else "not imported yet"
        return f"<LazyImport {self._name!r} ({state})>"


def import_now(*modules: object) -> None:
    """Import these :class:`LazyImport` modules now (anything else is left alone).

    For a function that must meet a missing SDK at its start — before a ``try`` whose broad
    ``except`` would otherwise read the :class:`ImportError` as a failure of the
    check (a key that cannot be read, say). Typed ``object`` so that it accepts the names that
    the type checker sees as real modules.
    """
    for module in modules:
        if isinstance(module, LazyImport):
            module.load_module()
