"""The app as a user installs it from a wheel: it carries every resource and runs; start-up
imports no cloud SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, timeout: float = 120, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ.update(env)
    res = subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=environ
    )
    assert res.returncode == 0, f"{args[:3]} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.mark.timeout(600)
def test_a_wheel_installed_in_a_fresh_venv_carries_every_resource_and_runs(
    tmp_path: Path,
) -> None:
    """``pip install comfyvn_gui-*.whl`` (not editable) in a new venv: the CLI and the window
    run from it, outside the checkout, with the resources the wheel carries."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("comfyvn_gui-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    resources = {
        "comfyvn_gui/resources/" + p.relative_to(ROOT / "resources").as_posix()
        for p in (ROOT / "resources").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert resources - names == set()
    assert "comfyvn_gui/resources/desktop/io.github.comfyvn.ComfyVNGui.desktop" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        cwd=tmp_path,
        timeout=480,
    )

    home = tmp_path / "home"
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import comfyvn_gui, comfyvn_gui.core.catalog as c; "
            "print(comfyvn_gui.__file__); print(c.resources_dir())",
        ],
        cwd=tmp_path,
    ).splitlines()
    assert all(line.startswith(str(venv)) for line in where), where
    templates = json.loads(
        _run(
            [str(venv / "bin" / "comfyvn-gui"), "providers", "templates", "--json"],
            cwd=tmp_path,
            COMFYVN_GUI_HOME=str(home),
        )
    )
    assert len(templates) == 12
    assert {"runpod", "aws", "local"} <= {t["id"] for t in templates}

    shot = tmp_path / "window.png"
    _run(
        [str(venv / "bin" / "comfyvn-gui"), "--screenshot", str(shot)],
        cwd=tmp_path,
        COMFYVN_GUI_HOME=str(home),
        QT_QPA_PLATFORM="offscreen",
    )
    with Image.open(shot) as image:
        assert image.width >= 800 and image.height >= 500
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 50  # not blank


def test_cli_start_up_imports_no_qt_and_no_cloud_sdk() -> None:
    probe = (
        "import sys\n"
        "from comfyvn_gui.cli import build_parser, run\n"
        "from comfyvn_gui import service\n"
        "bad = [m for m in ('PySide6', 'boto3', 'botocore', 'azure', 'google.auth', 'paramiko',"
        " 'kubernetes', 'pynvml', 'httpx', 'fastapi') if m in sys.modules]\n"
        "print(bad)\n"
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "[]", res.stderr
