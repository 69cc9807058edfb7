"""How adapters are found (providers/registry.py) and how they import their SDKs
(providers/lazy.py): registration beside the class, no SDK at import time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.providers import adapter_for, import_all, register
from comfyvn_gui.providers.lazy import LazyImport, import_now
from comfyvn_gui.providers.registry import adapter_modules, module_names, registered

#: Top-level names of the SDKs (and their transports) that no adapter module may import.
SDKS = (
    "boto3",
    "botocore",
    "urllib3",
    "azure",
    "msal",
    "google",
    "paramiko",
    "kubernetes",
    "pynvml",
)


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


def test_every_catalog_template_has_a_registered_adapter() -> None:
    import_all()
    adapters = registered()
    assert set(adapters) == set(load_catalog().profiles)
    for template_id, adapter in adapters.items():
        assert adapter_for(template_id) is adapter
        assert callable(adapter.validate) and callable(adapter.health)
    assert adapter_modules()["lambda"] == "lambda_labs"
    assert adapter_modules()["gcp"] == "gcp"  # a package: its __init__ registers


def test_unknown_template_has_no_adapter() -> None:
    assert adapter_for("no-such-template") is None


def test_adapter_modules_are_found_without_a_table() -> None:
    names = module_names()
    assert {"aws", "azure", "gcp", "lambda_labs", "runpod", "ssh"} <= set(names)
    assert names == sorted(names)


def test_a_second_adapter_for_a_template_is_refused() -> None:
    before = registered()["runpod"]

    class Impostor:
        async def validate(self, ctx: object) -> object: ...

        async def health(self, ctx: object) -> object: ...

    with pytest.raises(ValueError, match="two adapters"):
        register("runpod")(Impostor)  # type: ignore[type-var]
    assert registered()["runpod"] is before


def test_package_import_is_cheap_and_import_all_loads_no_sdk() -> None:
    out = run_python(
        f"""
        import importlib, json, sys
        import comfyvn_gui.providers as providers

        sdks = {SDKS!r}
        def loaded():
            return sorted(m for m in sys.modules if m.split('.')[0] in sdks)

        report = {{
            "package": sorted(
                m for m in sys.modules if m.startswith('comfyvn_gui.providers.')
            ),
            "httpx": 'httpx' in sys.modules,
            "modules": {{}},
        }}
        for name in providers.registry.module_names():
            importlib.import_module('comfyvn_gui.providers.' + name)
            report["modules"][name] = loaded()
        providers.import_all()
        report["all"] = loaded()
        report["httpx_after"] = 'httpx' in sys.modules
        print(json.dumps(report))
        """
    )
    report = json.loads(out)
    assert report["package"] == ["comfyvn_gui.providers.registry"]
    assert report["httpx"] is False
    assert len(report["modules"]) >= 11
    assert {name: sdks for name, sdks in report["modules"].items() if sdks} == {}
    assert report["all"] == []
    assert report["httpx_after"] is False


def test_an_adapter_module_that_cannot_be_imported_surfaces_to_the_caller() -> None:
    out = run_python(
        """
        import sys
        # Vast.ai's module cannot be imported (as with an SDK missing at import time).
        sys.modules['comfyvn_gui.providers.vast'] = None
        from comfyvn_gui.providers import adapter_for
        try:
            adapter_for('vast')
        except ImportError as exc:
            print('raised', type(exc).__name__)
        else:
            print('no exception')
        print(type(adapter_for('runpod')).__name__)
        # No module registers this template, and one module failed: that may have been its
        # module, so the failure is raised rather than None.
        try:
            adapter_for('no-such-template')
        except ImportError as exc:
            print('raised', type(exc).__name__)
        """
    )
    assert out.splitlines() == [
        "raised ModuleNotFoundError",
        "RunPodAdapter",
        "raised ModuleNotFoundError",
    ]


def test_adapter_for_imports_only_the_templates_module() -> None:
    out = run_python(
        """
        import sys
        from comfyvn_gui.providers import adapter_for
        print(type(adapter_for('lambda')).__name__)
        print(sorted(m for m in sys.modules if m.startswith('comfyvn_gui.providers.')))
        """
    )
    name, modules = out.strip().split("\n")
    assert name == "LambdaAdapter"
    assert "comfyvn_gui.providers.lambda_labs" in modules
    assert "comfyvn_gui.providers.aws" not in modules
    assert "comfyvn_gui.providers.gcp" not in modules


# --------------------------------------------------------------------------- LazyImport


@pytest.fixture
def probe_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package of its own, so a test sees exactly when it is imported."""
    name = f"lazyprobe_{tmp_path.name.replace('-', '_')}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "sub.py").write_text("OTHER = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def test_lazy_import_imports_on_first_attribute(probe_package: str) -> None:
    lazy = LazyImport(probe_package)
    assert probe_package not in sys.modules
    assert "not imported yet" in repr(lazy)
    with pytest.raises(AttributeError):
        lazy.__wrapped__  # noqa: B018 - introspection never imports
    assert probe_package not in sys.modules
    assert lazy.VALUE == 1
    assert probe_package in sys.modules
    assert lazy.sub.OTHER == 2  # a submodule its package does not import
    with pytest.raises(AttributeError):
        lazy.nothing  # noqa: B018
    assert lazy.load_module() is sys.modules[probe_package]


def test_import_now_and_a_missing_module(probe_package: str) -> None:
    lazy = LazyImport(probe_package + ".sub")
    import_now(lazy, json)  # a real module is left alone
    assert probe_package + ".sub" in sys.modules
    missing = LazyImport(probe_package + "_missing")
    with pytest.raises(ModuleNotFoundError):
        missing.anything  # noqa: B018
    with pytest.raises(ModuleNotFoundError):
        import_now(missing)
