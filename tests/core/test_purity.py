"""core/ is pure (docs/architecture.md, "Layers"): vocabulary and rules, no I/O at all.

import-linter keeps the packages it can name out of core (pyproject.toml); this test also covers
what it cannot (submodules of the standard library such as ``logging.handlers``) and I/O done
without an import (writing files, the environment, processes). A core module may read its own
package data (the catalog under resources/) and nothing else.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "comfyvn_gui" / "core"

FORBIDDEN_IMPORTS = (
    "filelock", "keyring", "secretstorage", "sqlite3", "logging.handlers",
    "concurrent_log_handler", "socket", "ssl", "subprocess", "shutil", "tempfile", "platformdirs",
    "httpx", "requests", "urllib.request", "boto3", "botocore", "azure", "google", "paramiko",
    "kubernetes", "pynvml", "PySide6", "qasync", "superqt", "fastapi", "starlette", "uvicorn",
    "comfyvn_gui.store", "comfyvn_gui.providers", "comfyvn_gui.service",
)  # fmt: skip
#: Attribute calls that change files, the environment or processes.
FORBIDDEN_CALLS = frozenset(
    {"write_text", "write_bytes", "mkdir", "unlink", "rmdir", "replace", "rename", "touch",
     "chmod", "putenv", "getenv", "system", "fsync"}
)  # fmt: skip


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _imports(tree: ast.AST, module: str) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = module.split(".")[: -node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append(name)
            out += [f"{name}.{alias.name}" for alias in node.names]
    return out


def _module_name(path: Path) -> str:
    rel = path.relative_to(CORE.parent.parent).with_suffix("")
    return ".".join(rel.parts)


def problems(source: str, module: str) -> list[str]:
    """What in ``source`` (the text of core module ``module``) does I/O, in words."""
    tree = ast.parse(source)
    out = [
        f"imports {name} (that belongs in store/ or providers/)"
        for name in sorted(set(_imports(tree, module)))
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN_IMPORTS)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            literal_args = len(node.args) == 2 and all(
                isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args
            )
            if name in FORBIDDEN_CALLS and not (name == "replace" and literal_args):
                out.append(f"calls .{name}() (core writes no file and runs no process)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "open":
                out.append("opens a file")
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            out.append("reads the environment (the service passes settings in)")
    return out


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_does_no_io(path: Path) -> None:
    assert problems(path.read_text("utf-8"), _module_name(path)) == []


def test_the_checker_catches_io() -> None:
    """The check above fails on a module that does I/O (so it can fail at all)."""
    bad = (
        "import logging.handlers\nfrom ..store import paths\nimport os\n"
        "from pathlib import Path\nPath('x').write_text('y')\nopen('f', 'w')\n"
        "os.environ.get('HOME')\n'a-b'.replace('-', '_')\n"
    )
    assert problems(bad, "comfyvn_gui.core.x") == [
        "imports comfyvn_gui.store (that belongs in store/ or providers/)",
        "imports comfyvn_gui.store.paths (that belongs in store/ or providers/)",
        "imports logging.handlers (that belongs in store/ or providers/)",
        "calls .write_text() (core writes no file and runs no process)",
        "opens a file",
        "reads the environment (the service passes settings in)",
    ]


def test_core_imports_with_nothing_but_python_and_pydantic() -> None:
    """Importing every core module pulls in no Qt, network, keyring, SQLite or SDK module.

    (``socket`` is not in the list: the standard library's ``email.utils``, which pydantic
    loads, imports it; core itself may not, as the test above checks.)"""
    names = [_module_name(p).removesuffix(".__init__") for p in core_modules()]
    code = (
        "import sys\n"
        + "".join(f"import {n}\n" for n in names)
        + "heavy = ('PySide6', 'httpx', 'keyring', 'sqlite3', 'filelock', 'boto3', 'botocore',"
        " 'paramiko', 'fastapi', 'google.auth', 'azure', 'kubernetes', 'pynvml',"
        " 'logging.handlers', 'concurrent_log_handler')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
