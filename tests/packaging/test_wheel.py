"""The app as a user installs it: a wheel carries the catalog; start-up imports no cloud SDK."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_the_catalog_and_loads_it_outside_the_checkout(tmp_path: Path) -> None:
    res = subprocess.run(
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
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    (wheel,) = (tmp_path / "dist").glob("comfyvn_gui-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "site")
    assert "comfyvn_gui/resources/catalog/providers/runpod.toml" in names
    assert "comfyvn_gui/resources/catalog/gpus.toml" in names
    probe = (
        "import comfyvn_gui.core.catalog as c, sys\n"
        "cat = c.load_catalog()\n"
        "print(c.resources_dir())\n"
        "print(len(cat.profiles), cat.reference_gpu)\n"
    )
    # The unpacked wheel comes first on sys.path, so its copy of the package is the one used.
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r})\n" + probe,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    where, counts = res.stdout.splitlines()
    assert where.startswith(str(tmp_path / "site")), where
    assert counts == "12 A10G"


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
