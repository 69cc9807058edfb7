"""The bundle against `make run`: its size, and its start-up to the first painted window.

Run: ``make bundle`` first, then ``.venv/bin/python benchmarks/bundle_bench.py [RUNS]``
(``make bench`` runs it when ``dist/comfyvn-gui/`` exists).

Each measurement starts a fresh process (``QT_QPA_PLATFORM=offscreen``, a new empty
``COMFYVN_GUI_HOME``, no D-Bus session so no keyring is contacted) with
``COMFYVN_GUI_STARTUP_PROBE=1``: the app prints a line once its window received its first
paint event and exits. The time is the parent's wall time from spawning the process to that
line, what a user waits:

* ``venv``: ``.venv/bin/comfyvn-gui``, the program ``make run`` starts;
* ``bundle``: ``dist/comfyvn-gui/comfyvn-gui``.

One warm-up run of each is discarded, then RUNS (default 7) of each, interleaved. Prints the
bundle's size on disk (and its largest parts), the median and minimum of each, and the
bundle/venv ratio of the medians (goal: at most 1.5, the bundle must not feel slower). Lines
starting with ``GOAL MISSED`` flag a missed goal; the exit status is always 0.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("COMFYVN_GUI_BUNDLE", ROOT / "dist" / "comfyvn-gui" / "comfyvn-gui"))
VENV = ROOT / ".venv" / "bin" / "comfyvn-gui"
GOAL_RATIO = 1.5
TIMEOUT_S = 60.0


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def first_paint_s(program: Path) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
        env.update(
            COMFYVN_GUI_HOME=home,
            QT_QPA_PLATFORM="offscreen",
            COMFYVN_GUI_STARTUP_PROBE="1",
        )
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(program)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=home,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if line.startswith("PAINTED "):
                    return time.perf_counter() - start
            raise RuntimeError(f"{program} exited {proc.wait()} before painting")
        finally:
            proc.kill()
            proc.wait(TIMEOUT_S)


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 7
    if not BUNDLE.is_file():
        print(f"no bundle at {BUNDLE}: run `make bundle` first")
        return 0
    internal = BUNDLE.parent / "_internal"
    total = size_of(BUNDLE.parent)
    print(f"bundle size: {total / 2**20:.0f} MiB in {BUNDLE.parent}/")
    parts = sorted(
        ((size_of(p) if p.is_dir() else p.stat().st_size, p.name) for p in internal.iterdir()),
        reverse=True,
    )
    for size, name in parts[:6]:
        print(f"  {name:<28} {size / 2**20:6.1f} MiB")

    times: dict[str, list[float]] = {"venv": [], "bundle": []}
    programs = {"venv": VENV, "bundle": BUNDLE}
    for program in programs.values():
        first_paint_s(program)  # warm-up (page cache)
    for _ in range(runs):
        for name, program in programs.items():
            times[name].append(first_paint_s(program))
    for name, values in times.items():
        print(
            f"first paint, {name:<6}: median {statistics.median(values) * 1000:6.0f} ms, "
            f"min {min(values) * 1000:6.0f} ms ({runs} runs)"
        )
    ratio = statistics.median(times["bundle"]) / statistics.median(times["venv"])
    print(f"bundle / venv (medians): {ratio:.2f} (goal <= {GOAL_RATIO})")
    if ratio > GOAL_RATIO:
        print(f"GOAL MISSED: the bundle starts {ratio:.2f}x slower than `make run`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
