"""Start-up benchmark: time to the first painted main window, against a bare PySide6 window.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/startup_bench.py [RUNS]``).

Each measurement is a fresh Python process (``QT_QPA_PLATFORM=offscreen``, a new empty
``COMFYVN_GUI_HOME``, no ``DBUS_SESSION_BUS_ADDRESS`` so no keyring is contacted):

* ``bare``: a QApplication and an empty QMainWindow of the app's default size, shown;
* ``app``: the real entry point, ``comfyvn_gui.__main__.main([])`` (what ``comfyvn-gui`` runs),
  with ``COMFYVN_GUI_STARTUP_PROBE=1``: the app prints a line once its window received its first
  ``QEvent.Paint`` (an event filter on the window) and exits;
* ``cards``: the same in a home of :data:`CARDS_PROVIDERS` providers, with
  ``COMFYVN_GUI_STARTUP_PROBE=cards``: the app prints once the Remote GPU page has painted the
  providers' cards (``RemoteGpuPage.first_shown``; goal: at most 2x the bare window).

Both stop at the first ``QEvent.Paint`` the window receives and print a line. Two times
are taken: from the top of the child script (``time.perf_counter``, Python
start-up excluded) and the parent's wall time from spawning the process to reading that line
(what a user waits). One warm-up run of each is discarded; then ``RUNS`` (default 5) of each,
interleaved. It prints median and minimum of both, the app/bare ratios (goal: at most 1.5),
where the app's time goes (phases) and the heavy modules loaded at first paint (goal: no
cloud SDK). Lines starting with
``GOAL MISSED`` flag a missed goal; the exit status is always 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.5
PAINT_TIMEOUT_S = 60.0
#: Modules whose presence at first paint is reported.
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "azure",
    "google.auth",
    "google.oauth2",
    "paramiko",
    "kubernetes",
    "httpx",
    "requests",
    "pynvml",
    "fastapi",
    "uvicorn",
    "moto",
    "superqt",
)
#: Of those, the cloud SDKs that must not be loaded before the window is painted.
CLOUD_SDKS = ("boto3", "botocore", "azure", "google", "paramiko", "kubernetes")

CHILD = textwrap.dedent(
    """
    import time
    T0 = time.perf_counter()
    import json, os, sys

    MODE = sys.argv[1]
    HEAVY = json.loads(sys.argv[2])
    notes = []
    marks = []

    def mark(name):
        marks.append([name, (time.perf_counter() - T0) * 1000])

    def report(window):
        ms = (time.perf_counter() - T0) * 1000
        loaded = [m for m in HEAVY if m in sys.modules]
        google = sorted(m for m in sys.modules if m == "google" or m.startswith("google."))
        size = [window.width(), window.height()]
        line = {"ms": ms, "modules": loaded, "google": google[:10], "size": size,
                "notes": notes, "marks": marks}
        sys.stdout.write("PAINTED " + json.dumps(line) + "\\n")
        sys.stdout.flush()
        os._exit(0)

    if MODE in ("app", "cards"):
        # The real entry point (`comfyvn-gui` with no arguments), told by the app's start-up
        # probe to print when its window was first painted (app), or when the Remote GPU page
        # shows the providers' cards (cards), and what was loaded by then.
        os.environ["COMFYVN_GUI_STARTUP_PROBE"] = "1" if MODE == "app" else "cards"
        import contextlib, io
        from comfyvn_gui.__main__ import main as entry_point
        captured = io.StringIO()
        real_write = sys.stdout.write

        def probe_write(text):
            if text.startswith("PAINTED "):
                probe = json.loads(text[len("PAINTED "):])
                line = {
                    "ms": (probe["perf_counter"] - T0) * 1000,
                    "modules": [m for m in HEAVY if m.split(".")[0] in probe["modules"]
                                and (m in sys.modules)],
                    "google": sorted(m for m in sys.modules if m.startswith("google"))[:10],
                    "size": probe["size"], "notes": notes, "marks": marks,
                }
                return real_write("PAINTED " + json.dumps(line) + "\\n")
            return real_write(text)

        sys.stdout.write = probe_write
        entry_point([])
        sys.stdout.write = real_write
        sys.stdout.write("TIMEOUT the app exited without painting\\n")
        sys.stdout.flush()
        os._exit(1)
    else:
        from PySide6.QtWidgets import QApplication, QMainWindow
        qapp = QApplication(["bare"])
        window = QMainWindow()
        window.setWindowTitle("bare")
        window.resize(int(sys.argv[3]), int(sys.argv[4]))
        loop = None

    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if obj is window and event.type() == QEvent.Type.Paint:
                report(window)
            return False

    first_paint = FirstPaint()
    window.installEventFilter(first_paint)
    window.show()
    mark("show() returned")

    def give_up():
        sys.stdout.write("TIMEOUT no paint event\\n")
        sys.stdout.flush()
        os._exit(1)

    QTimer.singleShot(int(float(sys.argv[5]) * 1000), give_up)
    if loop is not None:
        with loop:
            loop.run_forever()
    else:
        qapp.exec()
    """
)

BARE_SIZE = (1000, 650)  # comfyvn_gui.gui.mainwindow.DEFAULT_SIZE when this was written


def child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["COMFYVN_GUI_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: Providers in the home of the ``cards`` runs (no secrets: no keyring is contacted).
CARDS_PROVIDERS = 20
CARDS_GOAL_RATIO = 2.0


def seed_home(home: Path, n: int) -> None:
    """A home whose registry lists ``n`` providers of various templates."""
    templates = ["runpod", "vast", "lambda", "paperspace", "lan", "ssh", "coreweave"]
    providers = [{"id": "local", "template_id": "local", "name": "This computer", "active": True}]
    providers += [
        {"id": f"p{i:02d}", "template_id": templates[i % len(templates)], "name": f"Provider {i}"}
        for i in range(n)
    ]
    (home / "config").mkdir(parents=True)
    doc = {"format": "comfyvn-gui.providers", "schema_version": 1, "providers": providers}
    (home / "config" / "providers.json").write_text(json.dumps(doc))


def run_once(mode: str) -> dict[str, Any]:
    """One fresh process; its in-process and wall times to the first paint, or for ``cards``
    to the Remote GPU page showing the cards of a home of :data:`CARDS_PROVIDERS` (ms)."""
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        if mode == "cards":
            seed_home(Path(tmp) / "home", CARDS_PROVIDERS)
        args = [
            sys.executable,
            "-c",
            CHILD,
            mode,
            json.dumps(HEAVY_MODULES),
            str(BARE_SIZE[0]),
            str(BARE_SIZE[1]),
            str(PAINT_TIMEOUT_S),
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(
            args,
            env=child_env(Path(tmp) / "home"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp,
        )
        assert proc.stdout is not None
        result: dict[str, Any] = {"error": None}
        for line in proc.stdout:
            if line.startswith("PAINTED "):
                result["wall_ms"] = (time.perf_counter() - start) * 1000
                result.update(json.loads(line[len("PAINTED ") :]))
                break
            if line.startswith("TIMEOUT"):
                result["error"] = line.strip()
                break
        try:
            _, err = proc.communicate(timeout=PAINT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if "wall_ms" not in result and result["error"] is None:
            tail = err.strip().splitlines()[-5:]
            result["error"] = f"exit {proc.returncode}: " + " | ".join(tail)
        return result


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f} ms   min {min(values):7.1f} ms"


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 5
    print(f"start-up to first paint: {runs} runs each (+1 warm-up), offscreen, no keyring")
    print(f"python {sys.version.split()[0]}, {sys.executable}")
    modes = ("bare", "app", "cards")
    for mode in modes:  # warm the file-system cache and the .pyc files
        warm = run_once(mode)
        if warm.get("error"):
            print(f"{mode}: the warm-up run failed: {warm['error']}")
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(runs):
        for mode in modes:
            results[mode].append(run_once(mode))

    failed = False
    for mode, rs in results.items():
        errors = [r["error"] for r in rs if r.get("error")]
        if errors:
            failed = True
            print(f"GOAL MISSED: {mode} window never painted in {len(errors)} run(s): {errors[0]}")
    if failed:
        return 0

    ratios: dict[str, float] = {}
    cards_ratios: dict[str, float] = {}
    for key, label in (("wall_ms", "process spawn -> paint"), ("ms", "script top -> paint")):
        bare = [r[key] for r in results["bare"]]
        app = [r[key] for r in results["app"]]
        cards = [r[key] for r in results["cards"]]
        ratios[key] = statistics.median(app) / statistics.median(bare)
        cards_ratios[key] = statistics.median(cards) / statistics.median(bare)
        print(f"\n{label}:")
        print(f"  bare PySide6 window  {summary(bare)}")
        print(f"  comfyvn-gui window   {summary(app)}")
        print(f"  ratio app/bare (medians) {ratios[key]:.2f}   (goal <= {GOAL_RATIO})")
        print(f"  cards of {CARDS_PROVIDERS} providers shown  {summary(cards)}")
        print(
            f"  ratio cards/bare (medians) {cards_ratios[key]:.2f}   (goal <= {CARDS_GOAL_RATIO})"
        )

    last = results["app"][-1]
    print(f"\napp window size at first paint: {last['size'][0]}x{last['size'][1]}")
    print("app phases (median ms since the script's top; the last is the first paint):")
    names = [name for name, _ in last.get("marks") or []]
    for i, name in enumerate(names):
        at = statistics.median(r["marks"][i][1] for r in results["app"])
        print(f"  {at:7.1f}  {name}")
    print(f"  {statistics.median(r['ms'] for r in results['app']):7.1f}  first paint")
    for note in last.get("notes") or []:
        print(f"note: {note}")
    loaded = sorted({m for r in results["app"] for m in r["modules"]})
    print(f"heavy modules loaded at first paint: {', '.join(loaded) or 'none'}")
    google = sorted({m for r in results["app"] for m in r.get("google", [])})
    if google:
        print(f"  google.* modules (the first 10): {', '.join(google)}")

    for key, label in (("wall_ms", "process spawn -> paint"), ("ms", "script top -> paint")):
        if ratios[key] > GOAL_RATIO:
            print(f"GOAL MISSED: {label} ratio {ratios[key]:.2f} > {GOAL_RATIO}")
        if cards_ratios[key] > CARDS_GOAL_RATIO:
            print(
                f"GOAL MISSED: {label.replace('paint', 'cards')} ratio "
                f"{cards_ratios[key]:.2f} > {CARDS_GOAL_RATIO}"
            )
    sdks = [m for m in loaded if m.split(".")[0] in CLOUD_SDKS]
    for sdk in sdks:
        print(f"GOAL MISSED: the cloud SDK {sdk} is loaded before the window is painted")
    if (
        not sdks
        and all(r <= GOAL_RATIO for r in ratios.values())
        and all(r <= CARDS_GOAL_RATIO for r in cards_ratios.values())
    ):
        print("all goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
