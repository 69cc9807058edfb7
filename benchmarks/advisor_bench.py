"""Advisor benchmark: advise 1,000 workloads against 50 providers.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/advisor_bench.py [WORKLOADS] [PROVIDERS]``).

The jobs view re-advises the whole queue when a provider's health changes, so what matters is
the time per advice. Prints the time per advice (mean, p50, p99) for the estimator and the
advisor together, the advisor alone, and the share of a 16 ms frame one advice takes (the
ratio a machine's speed decides least). Workloads mix every kind, sizes, ComfyUI graphs from
``resources/examples/workflows``, latencies, budgets and residencies; providers mix every
template with regions, prices, ceilings, reported VRAM and health.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from comfyvn_gui.core.advisor import AdviceProvider, AdvisorSettings, advise
from comfyvn_gui.core.catalog import WORKLOAD_KINDS, load_catalog, resources_dir
from comfyvn_gui.core.checks import LocalSnapshot
from comfyvn_gui.core.estimator import estimate
from comfyvn_gui.core.workload import Workload
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import Home

FRAME_MS = 16.0


def providers(n: int, rng: random.Random) -> tuple[list[AdviceProvider], dict[str, str]]:
    catalog = load_catalog()
    templates = [t for t in catalog.profiles if t != "local"]
    out, health = [], {}
    for i in range(n):
        t = templates[i % len(templates)]
        profile = catalog.profile(t)
        kw: dict[str, object] = {"active": rng.random() > 0.1, "enabled": rng.random() > 0.05}
        if rng.random() < 0.5:
            kw["config"] = {"region": rng.choice(profile.regions).id}
        if t == "vast":
            kw["meta"] = {"price_ceiling_usd": round(rng.uniform(0.2, 0.6), 2)}
        if t in ("lan", "ssh"):
            kw["reported_vram_gb"] = rng.choice([4, 6, 8])
        pid = f"{t}-{i}"
        out.append(AdviceProvider(id=pid, template_id=t, name=f"{profile.name} {i}", **kw))
        health[pid] = rng.choice(
            ["healthy", "healthy", "healthy", "degraded", "unhealthy", "unknown"]
        )
    return out, health


def workloads(n: int, rng: random.Random) -> list[Workload]:
    graphs = [
        json.loads(p.read_text("utf-8"))
        for p in sorted((resources_dir() / "examples" / "workflows").glob("*.json"))
    ]
    out = []
    for i in range(n):
        kind = WORKLOAD_KINDS[i % len(WORKLOAD_KINDS)]
        data: dict[str, object] = {"kind": kind, "items": rng.randint(1, 200)}
        if kind in ("sprite_generation", "cg_remix", "cg_super_res", "cg_bake"):
            side = rng.choice([512, 1024, 1536, 2048])
            data.update(width=side, height=side)
        elif kind == "voice_synthesis":
            data["audio_seconds"] = rng.uniform(10, 3600)
        elif kind == "translation":
            data["characters"] = rng.randint(1000, 2_000_000)
        elif graphs:
            data["workflow"] = rng.choice(graphs)
        data["latency"] = rng.choice([None, "batch", "interactive"])
        data["budget_usd"] = rng.choice([None, None, 1.0, 5.0])
        data["residency"] = rng.choice([None, [], ["eu"], ["us", "eu"]])
        data["cached_graphs"] = rng.random() < 0.2
        out.append(Workload.model_validate(data))
    return out


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"{label:<28} mean {statistics.fmean(ms):7.3f} ms   p50 {ms[len(ms) // 2]:7.3f} ms   "
        f"p99 {p99:7.3f} ms   ({statistics.fmean(ms) / FRAME_MS:.3f} of a 16 ms frame)"
    )


def main() -> int:
    n_work = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_prov = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    rng = random.Random(20261127)
    catalog = load_catalog()
    provs, health = providers(n_prov, rng)
    works = workloads(n_work, rng)
    local = LocalSnapshot.model_validate(
        {
            "gpus": [
                {"name": "RTX 2060", "vram_total_gb": 6, "vram_free_gb": 5.5, "utilization": 0.3}
            ]
        }
    )
    settings = AdvisorSettings(budget_usd=None, latency="batch", residency=[])

    total: list[float] = []
    advisor_only: list[float] = []
    chosen: dict[str | None, int] = {}
    start = time.perf_counter()
    for w in works:
        t0 = time.perf_counter()
        req = estimate(w, catalog)
        t1 = time.perf_counter()
        advice = advise(w, req, provs, health, local, settings, catalog)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        advisor_only.append(t2 - t1)
        kind = (
            None
            if advice.choice is None
            else catalog.profile(next(p.template_id for p in provs if p.id == advice.choice)).kind
            if advice.choice != "local"
            else "local"
        )
        chosen[kind] = chosen.get(kind, 0) + 1
    wall = time.perf_counter() - start
    print(
        f"advisor benchmark: {n_work} workloads x {n_prov} providers (+ local), "
        f"catalog {catalog.version}"
    )
    print(summary("estimate + advise", total))
    print(summary("advise only", advisor_only))
    print(f"whole queue: {wall:.2f} s ({n_work / wall:.0f} advices/s)")
    print(
        "choices by provider kind: "
        + ", ".join(
            f"{k or 'none'} {v}" for k, v in sorted(chosen.items(), key=lambda kv: str(kv[0]))
        )
    )
    queue(works, local)
    return 0


def queue(works: list[Workload], local: LocalSnapshot) -> None:
    """The job queue: add the workloads as jobs (one transaction), then re-advise them all
    (sqlite, WAL) as a health change does; the registry has the local GPU only."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        svc = Service(Home(root / "config", root / "data", root / "logs"))
        svc.local_snapshots.max_age_s = 1e9
        svc.local_snapshots._snap = local  # a fixed snapshot: no NVML in the figures
        svc.local_snapshots._taken = time.monotonic()
        t0 = time.perf_counter()
        svc.add_jobs([(f"job {i}", w, {}) for i, w in enumerate(works)])
        t1 = time.perf_counter()
        svc.readvise("benchmark")
        t2 = time.perf_counter()
        svc.local_snapshots._snap = LocalSnapshot.model_validate(
            {
                "gpus": [
                    {
                        "name": "RTX 4090",
                        "vram_total_gb": 24,
                        "vram_free_gb": 23,
                        "utilization": 0.0,
                    }
                ]
            }
        )
        changed = svc.readvise("a bigger GPU")
        t3 = time.perf_counter()
        svc.job_store.close()
        print(
            f"job queue: add {len(works)} jobs {t1 - t0:.2f} s; re-advise with no change "
            f"{t2 - t1:.2f} s; re-advise changing {len(changed)} decisions {t3 - t2:.2f} s "
            f"({(t3 - t2) / max(1, len(works)) * 1000:.2f} ms a job)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
