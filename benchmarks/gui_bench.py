"""GUI responsiveness benchmark: event-loop stalls under load, and the jobs view at 10,000 jobs.

Run: ``.venv/bin/python benchmarks/gui_bench.py [PROVIDERS] [QUEUED_JOBS] [VIEW_JOBS]``
(defaults 50, 1000, 10000). Headless (``QT_QPA_PLATFORM=offscreen``); prints figures and exits
0 — a dev benchmark, not a test.

(a) Stalls of the GUI thread. A probe timer fires every 5 ms on the qasync loop and records how
late each tick is (the gap beyond 5 ms) while, in a temporary home with a private Secret
Service keyring and the RunPod contract fake (in a process of its own, as a real provider is),
50 providers validate and health-check at once through ``Service.check`` awaited on the loop
(as the Remote GPU page does), and 1,000 queued jobs are re-advised with
``bridge.call(svc.readvise, ...)`` in the I/O pool (as after a health change or an Apply in the
Advisor tab). Each load runs in its own phase so the cause of a stall shows: idle, the first
checks (adapters imported), warm checks, queueing the jobs, re-advice alone, checks with
re-advice, re-advice with a 1 ms GIL switch interval, and re-advice with the garbage collector
tuned — and last **the app's own way**: the checks on the bridge's second asyncio loop in a
worker thread (``ServiceBridge.check``), the re-advice they trigger in a child process
(``Service.readvise_in_subprocess``), the collector tuned. Every collection is timed (a full
one holds the GIL throughout, whichever thread runs it) and, when a tick is over 30 ms late, a
sampler thread notes the GUI thread's innermost Python frame. Goals, judged on the app's
phase: p99 <= 16 ms and no stall over 50 ms (``GOAL MISSED`` when missed); the other phases
show what the app avoids, and the last line says whether the advisor's threads starve the GUI
thread through the GIL, and why.

(b) The jobs view. 10,000 ``Job`` objects carrying real advice dicts (copied from the queue of
part (a)) are shown in the Jobs page's table (``comfyvn_gui.gui.jobs.page``; a plain
``QTableView`` on ``JobsModel`` or on a minimal model of this file when that page is not there):
the time of ``set_jobs`` plus the first paint, a refresh after a re-advice (same ids, 10 % of
the decisions changed), ``scrollToBottom``, and scrolling end to end page by page, each page
painted.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from PySide6.QtCore import (  # noqa: E402
    QAbstractTableModel,
    QElapsedTimer,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtWidgets import QApplication, QTableView, QWidget  # noqa: E402

from tests.secret_service import MissingTools, start  # noqa: E402

PROBE_MS = 5
FRAME_MS = 16.0
STALL_LIMIT_MS = 50.0
ROUNDS = 3
#: The collector's thresholds of the last phase (Python's default: 700, 10, 10).
APP_PHASE = "the app: checks + re-advice in a child"
GC_TUNED = (50_000, 20, 100)
GC_PHASE = "re-advise, GC tuned"
KEYRING_ENV = ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", "XDG_RUNTIME_DIR")


# --------------------------------------------------------------------------- the probe


class StallProbe(QObject):
    """A precise 5 ms timer on the GUI thread; each tick records how late it is."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setObjectName("stall-probe")
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.gaps: list[float] = []
        self._last = 0
        self.running = False
        self.last_tick = time.perf_counter()

    def start(self) -> None:
        self.gaps = []
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.last_tick = time.perf_counter()
        self.running = True
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        self.running = False
        return self.gaps

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.gaps.append(max(0.0, (now - self._last) / 1e6 - PROBE_MS))
        self._last = now
        self.last_tick = time.perf_counter()


class GcWatch:
    """Times every garbage collection (a full one holds the GIL for its whole length)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, str]] = []  # (generation, ms, thread)
        self._t0: dict[int, float] = {}
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._t0[ident] = time.perf_counter()
        elif ident in self._t0:
            ms = (time.perf_counter() - self._t0.pop(ident)) * 1000
            self.pauses.append((info["generation"], ms, threading.current_thread().name))

    def take(self) -> list[tuple[int, float, str]]:
        out, self.pauses = self.pauses, []
        return out

    def close(self) -> None:
        gc.callbacks.remove(self._cb)


class StallSampler(threading.Thread):
    """When the probe is more than 30 ms late, notes where the GUI thread's Python stack
    is (its innermost frame; ``run_forever``/``exec`` means Qt's C++ loop or a GIL wait)."""

    LATE_S = 0.030

    def __init__(self, probe: StallProbe) -> None:
        super().__init__(name="stall-sampler", daemon=True)
        self.probe = probe
        self.gui = threading.get_ident()
        self.where: dict[str, int] = {}
        self._sampled_for = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.005):
            last = self.probe.last_tick
            if not self.probe.running or time.perf_counter() - last < self.LATE_S:
                continue
            if last == self._sampled_for:
                continue  # one sample per stall
            self._sampled_for = last
            frame = sys._current_frames().get(self.gui)
            if frame is None:
                continue
            code = frame.f_code
            name = f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name}"
            self.where[name] = self.where.get(name, 0) + 1

    def take(self) -> dict[str, int]:
        out, self.where = self.where, {}
        return out

    def stop(self) -> None:
        self._halt.set()
        self.join()


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Phase:
    def __init__(
        self,
        name: str,
        gaps: list[float],
        seconds: float,
        note: str = "",
        gc_pauses: list[tuple[int, float, str]] | None = None,
        where: dict[str, int] | None = None,
    ) -> None:
        self.name, self.gaps, self.seconds, self.note = name, gaps, seconds, note
        self.gc_pauses = gc_pauses or []
        self.where = where or {}

    def gc_line(self) -> str:
        full = [ms for gen, ms, _ in self.gc_pauses if gen == 2]
        if not self.gc_pauses:
            return "no collection"
        threads = sorted({t for gen, _, t in self.gc_pauses if gen == 2})
        return (
            f"{len(self.gc_pauses)} collections, {len(full)} full ones: max "
            f"{max(full, default=0):.0f} ms, total {sum(full):.0f} ms"
            + (f" (in {', '.join(threads)})" if threads else "")
        )

    def where_line(self) -> str:
        top = sorted(self.where.items(), key=lambda kv: -kv[1])[:3]
        return "; ".join(f"{n} x{c}" for n, c in top) or "-"

    @property
    def p99(self) -> float:
        return pct(self.gaps, 0.99)

    @property
    def worst(self) -> float:
        return max(self.gaps, default=0.0)

    def line(self) -> str:
        g = self.gaps
        return (
            f"  {self.name:<34} {self.seconds:6.2f} s {len(g):6d} ticks  "
            f"p50 {pct(g, 0.5):6.2f}  p90 {pct(g, 0.9):6.2f}  p99 {self.p99:6.2f}  "
            f"max {self.worst:7.2f} ms  >16ms {sum(x > FRAME_MS for x in g):4d}  "
            f">50ms {sum(x > STALL_LIMIT_MS for x in g):3d}"
            + (f"  ({self.note})" if self.note else "")
        )


async def measure(
    probe: StallProbe,
    gcw: GcWatch,
    sampler: StallSampler,
    name: str,
    work: Callable[[], Coroutine[Any, Any, str | None]],
) -> Phase:
    gcw.take()
    sampler.take()
    probe.start()
    t0 = time.perf_counter()
    note = await work()
    seconds = time.perf_counter() - t0
    return Phase(name, probe.stop(), seconds, note or "", gcw.take(), sampler.take())


# --------------------------------------------------------------------------- part (a)


def make_home(root: Path) -> Any:
    from comfyvn_gui.core.checks import LocalSnapshot
    from comfyvn_gui.service import Service
    from comfyvn_gui.store.paths import Home

    svc = Service(Home(root / "config", root / "data", root / "logs"))
    # A fixed local GPU: no NVML in the figures (as benchmarks/advisor_bench.py does).
    svc.local_snapshots.max_age_s = 1e9
    svc.local_snapshots._snap = LocalSnapshot.model_validate(
        {"gpus": [{"name": "RTX 2060", "vram_total_gb": 6, "vram_free_gb": 5.5}]}
    )
    svc.local_snapshots._taken = time.monotonic()
    return svc


def add_providers(svc: Any, fake: Any, n: int, rng: random.Random) -> list[str]:
    """``n`` RunPod providers, one endpoint each on the one fake, with varied GPUs/prices."""
    gpus = [None, "A100 80GB", "RTX 4090", "L40S", "A40", "H100"]
    ids = []
    for i in range(n):
        pid = f"runpod-{i:02d}"
        config: dict[str, Any] = {
            "api_key": fake.key,
            "endpoint_id": f"ep-{i}",
            "endpoints": {"graphql": fake.graphql_url},
        }
        payload: dict[str, Any] = {
            "id": pid,
            "base_url": fake.serverless_base,
            "config": config,
            "meta": {"hourly_usd": round(rng.uniform(0.25, 3.0), 2)},
        }
        gpu = gpus[i % len(gpus)]
        if gpu:
            payload["gpu"] = gpu
        svc.create_provider("runpod", payload)
        ids.append(pid)
    return ids


class RunPodProcess:
    """The RunPod contract fake in a process of its own: its HTTP server threads would
    otherwise compete for this process's GIL, which a real RunPod does not."""

    def __init__(self, n_endpoints: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve_runpod, args=(child, n_endpoints), daemon=True)
        self.proc.start()
        self.key, self.graphql_url, self.serverless_base = self.conn.recv()

    def set_health(self, endpoint: str, healthy: bool) -> None:
        self.conn.send(("set", endpoint, healthy))
        self.conn.recv()

    def stop(self) -> None:
        self.conn.send(("stop",))
        self.proc.join(10)


def _serve_runpod(conn: Any, n_endpoints: int) -> None:
    from tests.fakes.runpod import RunPodFake, health_body

    healthy = health_body(idle=2, running=1)
    crashed = health_body(unhealthy=3, in_queue=1)
    with RunPodFake(endpoints={f"ep-{i}": healthy for i in range(n_endpoints)}) as fake:
        conn.send((fake.key, fake.graphql_url, fake.serverless_base))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                return
            fake.endpoints[msg[1]] = healthy if msg[2] else crashed
            fake.server.requests.clear()
            conn.send("ok")


def stalls(tmp: Path, fake: RunPodProcess, n_providers: int, n_jobs: int) -> list[Any]:
    """Part (a); returns the queued jobs (their advice feeds part (b))."""
    import qasync

    from comfyvn_gui.gui.bridge import ServiceBridge

    try:
        from advisor_bench import workloads
    except ImportError:  # run from elsewhere
        workloads = None

    rng = random.Random(20261127)
    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    svc = make_home(tmp / "home")
    bridge = ServiceBridge(svc)
    probe = StallProbe()
    gcw = GcWatch()
    sampler = StallSampler(probe)
    sampler.start()
    phases: list[Phase] = []
    jobs: list[Any] = []
    t0 = time.perf_counter()
    ids = add_providers(svc, fake, n_providers, rng)
    setup_s = time.perf_counter() - t0

    async def idle() -> str:
        await asyncio.sleep(1.5)
        return "nothing running"

    async def check_rounds(rounds: int) -> str:
        statuses: dict[str, int] = {}
        for _ in range(rounds):
            validated, health = await asyncio.gather(
                svc.check("validate", ids, timeout_s=20),
                svc.check("health", ids, timeout_s=20),
            )
            for r in [*validated, *health]:
                statuses[r.status] = statuses.get(r.status, 0) + 1
        return f"{rounds} x ({len(ids)} validate + {len(ids)} health); " + ", ".join(
            f"{k} {v}" for k, v in sorted(statuses.items())
        )

    async def first_checks() -> str:
        return await check_rounds(1) + "; adapters imported on first use"

    async def warm_checks() -> str:
        return await check_rounds(ROUNDS)

    async def queue_jobs() -> str:
        if workloads is not None:
            works = workloads(n_jobs, rng)
        else:
            from comfyvn_gui.core.workload import Workload

            works = [
                Workload.model_validate({"kind": "cg_remix", "items": 1 + i % 40})
                for i in range(n_jobs)
            ]
        drafts = [(f"bench job {i}", w, {"added_by": "gui_bench"}) for i, w in enumerate(works)]
        added = await bridge.call(svc.add_jobs, drafts)
        return f"{len(added)} jobs advised and added in the I/O pool"

    async def readvise_rounds() -> int:
        changed = 0
        for _ in range(ROUNDS):
            changed += len(await bridge.call(svc.readvise, "bench"))
        return changed

    async def readvise_alone() -> str:
        return f"{ROUNDS} x re-advise {n_jobs} jobs; {await readvise_rounds()} changed"

    async def checks_and_readvise() -> str:
        changed = 0
        for r in range(ROUNDS):
            # A fifth of the endpoints crash / recover each round: recording the health
            # results re-advises the queue in the I/O pool too (Service._record_checks).
            for i in range(0, n_providers, 5):
                fake.set_health(f"ep-{i}", healthy=r % 2 == 1)
            _, _, moved = await asyncio.gather(
                svc.check("validate", ids, timeout_s=20),
                svc.check("health", ids, timeout_s=20),
                bridge.call(svc.readvise, "bench"),
            )
            changed += len(moved)
        return f"{ROUNDS} x (checks + re-advice: {changed} changed + the health-triggered one)"

    async def readvise_fast_switch() -> str:
        old = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        try:
            await readvise_rounds()
        finally:
            sys.setswitchinterval(old)
        return f"sys.setswitchinterval(0.001), default {old * 1000:.0f} ms"

    async def readvise_gc_tuned() -> str:
        threshold = gc.get_threshold()
        gc.collect()
        gc.freeze()  # what is alive now is never traversed again by a collection
        frozen = gc.get_freeze_count()
        gc.set_threshold(*GC_TUNED)
        try:
            await readvise_rounds()
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
        return f"gc.freeze() of {frozen:,} objects + gc.set_threshold{GC_TUNED}"

    saved_gc: dict[str, Any] = {}

    async def app_tuning() -> str:
        """The app's one-time tuning, 3 s after start-up (gui/app.py _tune_gc): the young
        generations collected, then freeze. Not judged: it happens once, before any work."""
        from comfyvn_gui.gui.app import _tune_gc

        saved_gc["threshold"] = gc.get_threshold()
        _tune_gc()
        return f"gui/app.py _tune_gc: gc.freeze() of {gc.get_freeze_count():,} objects, once"

    async def app_mode() -> str:
        """What the desktop app does: checks on the bridge's own loop in a worker thread,
        re-advice in a child process (Service.readvise_in_subprocess), the collector tuned
        after start-up, adapters imported."""
        threshold = saved_gc["threshold"]
        svc.readvise_in_subprocess = True
        children = 0
        try:
            for r in range(ROUNDS):
                for i in range(0, n_providers, 5):
                    fake.set_health(f"ep-{i}", healthy=r % 2 == 0)
                await asyncio.gather(  # on the bridge's checks loop, as the app runs them
                    bridge.check("validate", ids),
                    bridge.check("health", ids),
                )
            runner = svc._readvise_runner()
            while runner is not None and (runner._proc is not None or runner._pending):
                children += 1
                await asyncio.sleep(0.05)
        finally:
            svc.readvise_in_subprocess = False
            gc.set_threshold(*threshold)
            gc.unfreeze()
        return (
            f"{ROUNDS} x checks on the checks loop; the re-advice they trigger runs in a child "
            "process "
            f"(waited {children * 50} ms for it after the last round)"
        )

    readvise_name = f"re-advise {n_jobs} (I/O pool)"
    plan = (
        ("idle", idle),
        ("validate + health, first (cold)", first_checks),
        ("validate + health, warm", warm_checks),
        (f"queue {n_jobs} jobs (I/O pool)", queue_jobs),
        (readvise_name, readvise_alone),
        ("checks + re-advise together", checks_and_readvise),
        ("re-advise, 1 ms GIL switch", readvise_fast_switch),
        (GC_PHASE, readvise_gc_tuned),
        ("the app's GC tuning (once, at start)", app_tuning),
        (APP_PHASE, app_mode),
    )

    async def run_all() -> None:
        for name, work in plan:
            phases.append(await measure(probe, gcw, sampler, name, work))
        jobs.extend(await bridge.call(svc.list_jobs))

    try:
        loop.run_until_complete(run_all())
    finally:
        sampler.stop()
        gcw.close()
        loop.run_until_complete(bridge.aclose())
        loop.close()
        asyncio.set_event_loop(None)

    print(
        f"(a) GUI event-loop stalls: a {PROBE_MS} ms probe timer on the qasync loop; "
        f"{n_providers} RunPod providers (the contract fake in its own process, a private "
        f"Secret Service keyring; set up in {setup_s:.1f} s), {n_jobs} queued jobs. "
        f"Lateness of each tick beyond {PROBE_MS} ms, in ms:"
    )
    for phase in phases:
        print(phase.line())
    print("  garbage collections (a full one holds the GIL throughout) and, for ticks over 30 ms")
    print("  late, the GUI thread's innermost Python frame (run_forever: Qt's loop / a GIL wait):")
    for phase in phases:
        print(f"  {phase.name:<34} {phase.gc_line()}")
        if phase.where:
            print(f"  {'':<34} GUI thread at: {phase.where_line()}")
    # The goal is the app's: every other phase runs the work the way the app avoids (checks
    # on the GUI's loop, re-advice in a thread of its process) and is printed as a diagnosis.
    missed = False
    for phase in [p for p in phases if p.name == APP_PHASE]:
        if phase.p99 > FRAME_MS:
            print(f"  GOAL MISSED: {phase.name}: p99 {phase.p99:.1f} ms > {FRAME_MS:.0f} ms")
            missed = True
        if phase.worst > STALL_LIMIT_MS:
            print(
                f"  GOAL MISSED: {phase.name}: a stall of {phase.worst:.1f} ms "
                f"> {STALL_LIMIT_MS:.0f} ms"
            )
            missed = True
    if not missed:
        print(
            f"  goals met by the app ({APP_PHASE}): p99 <= {FRAME_MS:.0f} ms and no stall "
            f"over {STALL_LIMIT_MS:.0f} ms; the other phases show what it avoids"
        )
    print("  " + gil_verdict({p.name: p for p in phases}, readvise_name))
    return jobs


def gil_verdict(by_name: dict[str, Phase], readvise_name: str) -> str:
    idle = by_name["idle"]
    alone = by_name[readvise_name]
    fast = by_name["re-advise, 1 ms GIL switch"]
    tuned = by_name[GC_PHASE]
    base = max(1.0, idle.p99)
    if alone.p99 <= 2 * base and alone.worst <= STALL_LIMIT_MS:
        return (
            f"GIL: re-advice in the I/O pool does not starve the GUI thread (p99 "
            f"{alone.p99:.1f} ms, idle {idle.p99:.1f} ms)."
        )
    full = [ms for gen, ms, _ in alone.gc_pauses if gen == 2]
    causes = []
    if full and max(full) >= 0.5 * alone.worst:
        causes.append(
            f"full garbage collections triggered by the advisor's allocations hold the GIL "
            f"for up to {max(full):.0f} ms (the worst stall is {alone.worst:.0f} ms); with "
            f"the collector tuned the worst stall is {tuned.worst:.0f} ms, p99 {tuned.p99:.1f} ms"
        )
    if fast.p99 < 0.75 * alone.p99:
        causes.append(
            f"a 1 ms switch interval lowers p99 from {alone.p99:.1f} to {fast.p99:.1f} ms "
            "(the GUI thread queues for the GIL behind the advisor's threads)"
        )
    if not causes:
        causes.append(
            f"neither a 1 ms switch interval (p99 {fast.p99:.1f} ms) nor a tuned collector (p99 "
            f"{tuned.p99:.1f} ms) helps much: see the GUI thread's frames above"
        )
    return (
        f"GIL: YES, the advisor's Python threads starve the GUI thread: while the I/O pool "
        f"re-advises, p99 is {alone.p99:.1f} ms and the worst stall {alone.worst:.0f} ms "
        f"(idle: {idle.p99:.1f} / {idle.worst:.1f} ms); " + "; ".join(causes) + "."
    )


# --------------------------------------------------------------------------- part (b)


class PlainJobsModel(QAbstractTableModel):
    """Used only when ``comfyvn_gui.gui.jobs.model.JobsModel`` is missing."""

    HEADERS = ("Job", "Kind", "Status", "Provider", "Cost", "Reason")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, ...]] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if index.isValid() and role == Qt.ItemDataRole.DisplayRole:
            return self._rows[index.row()][index.column()]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def set_jobs(self, jobs: Sequence[Any]) -> bool:
        self.beginResetModel()
        rows = []
        for j in jobs:
            compute = j.meta.get("compute") or {}
            advice = compute.get("advice") or {}
            rows.append(
                (
                    j.title,
                    j.kind,
                    j.status,
                    str(compute.get("provider") or "—"),
                    str(advice.get("estimated_cost") or "—"),
                    str(advice.get("reason") or ""),
                )
            )
        self._rows = rows
        self.endResetModel()
        return True


class PaintWatch(QObject):
    """Counts paint events of a widget (the first paint after a change)."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__()
        self.paints = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def jobs_view(app: QApplication, tmp: Path) -> tuple[str, Any, QTableView, QWidget, Any]:
    """(which, model, table, top widget, bridge or None): the Jobs page's own table when it
    exists, else a plain table on JobsModel, else on PlainJobsModel."""
    try:
        from comfyvn_gui.gui.bridge import ServiceBridge
        from comfyvn_gui.gui.jobs.page import JobsPage

        bridge = ServiceBridge(make_home(tmp / "view-home"))
        page = JobsPage(bridge)
        model, table = page.model, page.table
        page.list_stack.setCurrentWidget(table)  # (the page does this once it has jobs)
        return "the Jobs page (JobsModel, sort proxy, its QTableView)", model, table, page, bridge
    except (ImportError, AttributeError) as exc:
        print(f"  (the Jobs page is not usable here: {type(exc).__name__}: {exc})")
    table = QTableView()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
    try:
        from comfyvn_gui.gui.jobs.model import JobsModel

        model: Any = JobsModel(table)
        which = "JobsModel in a plain QTableView"
    except ImportError:
        model = PlainJobsModel(table)
        which = "a minimal model of this benchmark in a plain QTableView (no JobsModel yet)"
    table.setModel(model)
    return which, model, table, table, None


def build_jobs(source: Sequence[Any], n: int) -> list[Any]:
    from comfyvn_gui.core.jobs import Job

    if not source:
        raise SystemExit("no queued jobs to copy advice from")
    out = []
    for i in range(n):
        src = source[i % len(source)]
        out.append(
            Job(
                id=i + 1,
                title=f"{src.title} #{i + 1}",
                kind=src.kind,
                status="queued",
                workload=src.workload,
                source=dict(src.source),
                meta={"compute": dict(src.meta["compute"])},
                created_at=src.created_at,
                updated_at=src.updated_at,
            )
        )
    return out


def wait_paint(app: QApplication, watch: PaintWatch, before: int, limit_s: float = 30) -> None:
    deadline = time.perf_counter() + limit_s
    while watch.paints == before and time.perf_counter() < deadline:
        app.processEvents()


def view(tmp: Path, source: Sequence[Any], n: int) -> None:
    app = QApplication.instance() or QApplication([])
    t0 = time.perf_counter()
    jobs = build_jobs(source, n)
    build_ms = (time.perf_counter() - t0) * 1000
    which, model, table, top, bridge = jobs_view(app, tmp)
    top.resize(1000, 650)
    top.show()
    for _ in range(5):
        app.processEvents()
    viewport = table.viewport()
    watch = PaintWatch(viewport)

    before = watch.paints
    t0 = time.perf_counter()
    model.set_jobs(jobs)
    t1 = time.perf_counter()
    wait_paint(app, watch, before)
    t2 = time.perf_counter()
    rows = model.rowCount()

    # A re-advice: same ids, a tenth of the decisions changed.
    changed = []
    for i, j in enumerate(jobs):
        if i % 10 == 0:
            compute = dict(j.meta["compute"])
            compute["provider"] = None if compute.get("provider") else "runpod-00"
            j = j.model_copy(update={"meta": {"compute": compute}})
        changed.append(j)
    before = watch.paints
    t3 = time.perf_counter()
    model.set_jobs(changed)
    t4 = time.perf_counter()
    wait_paint(app, watch, before, limit_s=2)  # (nothing visible may have changed)
    t5 = time.perf_counter()

    before = watch.paints
    t6 = time.perf_counter()
    table.scrollToBottom()
    wait_paint(app, watch, before)
    t7 = time.perf_counter()

    bar = table.verticalScrollBar()
    bar.setValue(0)
    app.processEvents()
    page_ms: list[float] = []
    t8 = time.perf_counter()
    while True:
        p0 = time.perf_counter()
        bar.setValue(bar.value() + bar.pageStep())
        viewport.repaint()  # paint now, as a user's page-down shows the page
        app.processEvents()
        page_ms.append((time.perf_counter() - p0) * 1000)
        if bar.value() >= bar.maximum():
            break
    t9 = time.perf_counter()
    pages = len(page_ms)
    worst = max(page_ms, default=0.0)
    slow_pages = sum(ms > FRAME_MS for ms in page_ms)

    print(f"(b) The jobs view with {rows:,} jobs: {which}")
    print(f"  build {n:,} Job objects (advice copied from the queue)  {build_ms:8.1f} ms")
    print(
        f"  load: set_jobs {1000 * (t1 - t0):8.1f} ms + first paint "
        f"{1000 * (t2 - t1):6.1f} ms = {1000 * (t2 - t0):8.1f} ms"
    )
    print(
        f"  refresh after a re-advice (same ids, {len(jobs) // 10:,} changed): set_jobs "
        f"{1000 * (t4 - t3):8.1f} ms, painted after {1000 * (t5 - t3):6.1f} ms"
    )
    print(f"  scrollToBottom + paint                                {1000 * (t7 - t6):8.1f} ms")
    print(
        f"  scroll end to end, page by page: {pages} pages in {1000 * (t9 - t8):8.1f} ms "
        f"({1000 * (t9 - t8) / max(1, pages):.2f} ms a page, slowest {worst:.1f} ms)"
    )
    print(
        f"  pages over a {FRAME_MS:.0f} ms frame: {slow_pages} of {pages}"
        + (f" (p90 {pct(page_ms, 0.9):.1f} ms)" if page_ms else "")
    )
    top.close()
    if bridge is not None:
        bridge.close()


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    n_providers = int(argv[0]) if len(argv) > 0 else 50
    n_jobs = int(argv[1]) if len(argv) > 1 else 1000
    n_view = int(argv[2]) if len(argv) > 2 else 10_000
    with tempfile.TemporaryDirectory(prefix="comfyvn-gui-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            keyring_service = start(tmp / "keyring")
        except MissingTools as exc:
            print(f"cannot run: {exc}")
            return 0
        env = keyring_service.env
        old = {k: os.environ.get(k) for k in KEYRING_ENV}
        os.environ.update({k: env[k] for k in KEYRING_ENV})
        fake = RunPodProcess(n_providers)  # (before Qt starts: a clean child process)
        try:
            app = QApplication.instance() or QApplication([])
            app.setApplicationName("comfyvn-gui-bench")
            print(
                f"GUI benchmark (Qt {app.platformName()}, Python {sys.version.split()[0]}, "
                f"{os.cpu_count()} CPUs, GIL switch interval "
                f"{sys.getswitchinterval() * 1000:.0f} ms)"
            )
            jobs = stalls(tmp, fake, n_providers, n_jobs)
            print()
            view(tmp, jobs, n_view)
        finally:
            fake.stop()
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            keyring_service.stop()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's final garbage collection: with widgets, a qasync loop and
    # models torn down in an arbitrary order, PySide6 can abort there ("bool_dealloc"),
    # after every figure has been printed and every temporary file removed.
    os._exit(code)
