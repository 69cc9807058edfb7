"""The one-folder bundle (packaging/comfyvn-gui.spec), built and started as a user would.

Built once for this module by PyInstaller from the suite's own environment, into a temporary
folder; every test runs the bundle's executable outside the checkout, with no Python path
that could reach the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import keyring_entries

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "comfyvn-gui.spec"

# The build alone takes 1.5-3 min on a 2-core machine.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("pyinstaller")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "build"),
            str(SPEC),
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=840,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    exe = work / "dist" / "comfyvn-gui" / "comfyvn-gui"
    assert exe.is_file()
    yield exe
    shutil.rmtree(work, ignore_errors=True)  # ~300 MB: not kept with the run's other temp files


def _run(
    exe: Path, *args: str, cwd: Path, home: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    environ.update(COMFYVN_GUI_HOME=str(home), **env)
    return subprocess.run(
        [str(exe), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=120,
    )


def test_the_bundle_starts_headless_and_paints_its_window(bundle: Path, tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    res = _run(
        bundle,
        "--screenshot",
        str(shot),
        cwd=tmp_path,
        home=tmp_path / "home",
        QT_QPA_PLATFORM="offscreen",
    )
    assert res.returncode == 0, res.stderr
    with Image.open(shot) as image:
        assert image.width >= 800 and image.height >= 500
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 50  # not blank
    # Offers, a page with its own models and the price store, also renders.
    res = _run(
        bundle,
        "--screenshot",
        str(tmp_path / "offers.png"),
        "--page",
        "offers",
        cwd=tmp_path,
        home=tmp_path / "home",
        QT_QPA_PLATFORM="offscreen",
    )
    assert res.returncode == 0, res.stderr


def test_the_bundle_carries_the_catalog_and_the_qt_plugins_a_desktop_needs(
    bundle: Path, tmp_path: Path
) -> None:
    res = _run(bundle, "providers", "templates", "--json", cwd=tmp_path, home=tmp_path / "home")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)) == 12
    plugins = bundle.parent / "_internal" / "PySide6" / "Qt" / "plugins"
    for plugin in (
        "platforms/libqxcb.so",  # X11
        "platforms/libqwayland.so",  # Wayland (Qt >= 6.7 names it so)
        "platforms/libqoffscreen.so",
        "imageformats/libqsvg.so",  # the app's SVG icon
        "iconengines/libqsvgicon.so",
        "tls/libqopensslbackend.so",
    ):
        assert (plugins / plugin).is_file(), plugin


def test_the_bundle_keeps_secrets_in_the_secret_service(
    bundle: Path, tmp_path: Path, secret_service: dict[str, str]
) -> None:
    """keyring finds its Secret Service backend inside the bundle (entry points and
    secretstorage/jeepney are in it): the secret reaches the real keyring, not a file."""
    home = tmp_path / "home"
    about = _run(bundle, "about", "--json", cwd=tmp_path, home=home)
    assert about.returncode == 0, about.stderr
    assert "SecretService" in json.loads(about.stdout)["keyring_backend"]

    secret = "rp-bundle-4b1d-secret"
    res = _run(
        bundle,
        "providers",
        "create",
        "runpod",
        "--id",
        "bundled",
        "--config-file",
        "-",
        "--no-prompt",
        cwd=tmp_path,
        home=home,
        stdin=json.dumps({"api_key": secret}),
    )
    assert res.returncode == 0, res.stderr
    assert secret in keyring_entries().values()
    shown = _run(bundle, "providers", "show", "bundled", "--json", cwd=tmp_path, home=home)
    assert "api_key" in json.loads(shown.stdout)["secrets_set"]
    for path in home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    removed = _run(bundle, "providers", "remove", "bundled", "--yes", cwd=tmp_path, home=home)
    assert removed.returncode == 0, removed.stderr
    assert secret not in keyring_entries().values()


def test_the_bundle_installs_its_menu_entry_starting_itself(bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "share"
    res = _run(
        bundle,
        "desktop",
        "install",
        "--data-dir",
        str(data),
        cwd=tmp_path,
        home=tmp_path / "home",
    )
    assert res.returncode == 0, res.stderr
    entry = data / "applications" / "io.github.comfyvn.ComfyVNGui.desktop"
    assert f"Exec={bundle}\n" in entry.read_text(encoding="utf-8")
    valid = subprocess.run(
        ["desktop-file-validate", str(entry)], capture_output=True, text=True, timeout=30
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr
