"""What running jobs on ComfyUI costs the app (issue 17, "Measure").

Run: ``make bench`` (or ``.venv/bin/python benchmarks/dispatch_bench.py [RUNS]``). Prints
figures and exits 0 (``GOAL MISSED`` lines flag a missed goal); a dev benchmark, not a test.

The ComfyUI contract fake (``tests/fakes/comfyui.py``: a real aiohttp server that validates,
queues and runs graphs with Pillow) is served by a child process of its own, so its CPU is not
the app's:

1. **Overhead per run.** RUNS (default 100) runs of a 1-image graph (LoadImage -> SaveImage of
   a 64x64 image: the fake answers at once) through the app's ``comfyui_runs.execute`` (one
   ``comfyui_workflow`` job of RUNS items: preflight, upload, then per run the WebSocket,
   ``/prompt``, the messages, ``/history``, ``/view`` to disk, the Pillow check, outputs.json),
   against the bare protocol done by hand with httpx on one connection (``/prompt``, poll
   ``/history`` every 2 ms, ``/view`` into memory): the fake's own time per run. Goal: the app
   adds at most 30 ms a run.
2. **A 500 MB output** downloaded by ``ComfyUIClient.download`` in a fresh child process: its
   peak memory (``ru_maxrss``) before and after. Goal: it grows by less than 50 MB.

The window's event-loop stall while 20 runs proceed (the driver writing their progress to the
queue the window follows) is measured by benchmarks/dispatch_gui_bench.py.
"""

from __future__ import annotations

import asyncio
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
sys.path.insert(0, str(ROOT))

OVERHEAD_GOAL_MS = 30.0
MEMORY_GOAL_MB = 50.0
BIG_MB = 500

SERVE = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from tests.fakes.comfyui import ComfyUIServer
    server = ComfyUIServer().start()
    print(server.url, server.output_dir, flush=True)
    try:
        sys.stdin.read()  # until the parent closes it
    finally:
        server.stop()
    """
)

GRAPH = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "{{input_image}}"}},
    "2": {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "{{output_prefix}}"},
    },
}


def serve() -> tuple[subprocess.Popen[str], str, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url, out = proc.stdout.readline().split()
    return proc, url, Path(out)


def stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)


async def bare_runs(url: str, image: bytes, runs: int) -> float:
    """The protocol by hand: seconds per run."""
    import httpx

    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/upload/image", files={"image": ("bare.png", image)})
        name = r.json()["name"]
        start = time.perf_counter()
        for i in range(runs):
            graph = json.loads(
                json.dumps(GRAPH)
                .replace("{{input_image}}", name)
                .replace("{{output_prefix}}", f"bare/run{i}")
            )
            prompt_id = (await http.post("/prompt", json={"prompt": graph})).json()["prompt_id"]
            while True:
                entry = (await http.get(f"/history/{prompt_id}")).json().get(prompt_id)
                if entry:
                    break
                await asyncio.sleep(0.002)
            for out in entry["outputs"]["2"]["images"]:
                await http.get("/view", params=out)
        return (time.perf_counter() - start) / runs


async def app_runs(url: str, image_path: Path, runs: int, out_dir: Path) -> float:
    import httpx

    from comfyvn_gui.providers.comfyui import ComfyUIClient
    from comfyvn_gui.providers.comfyui_runs import execute

    async with httpx.AsyncClient() as http:
        client = ComfyUIClient(url, http)
        workflow = json.loads(json.dumps(GRAPH).replace("{{input_image}}", image_path.name))
        data = await asyncio.to_thread(image_path.read_bytes)
        name = await client.upload_image(image_path.name, data)
        assert name == image_path.name
        # (a job of two runs first: the WebSocket library, Pillow and the client warmed up)
        await execute(
            client,
            job_id=1,
            kind="comfyui_workflow",
            items=2,
            inputs=[],
            out_dir=out_dir / "warm",
            workflow=workflow,
        )
        start = time.perf_counter()
        report = await execute(
            client,
            job_id=2,
            kind="comfyui_workflow",
            items=runs,
            inputs=[],
            out_dir=out_dir / "job2",
            workflow=workflow,
        )
        took = time.perf_counter() - start
        assert report.outcome == "completed", report.runs[0].error
        assert len(report.outputs) == runs
        return took / runs


BIG = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import httpx
    from comfyvn_gui.providers.comfyui import ComfyUIClient, OutputFile

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def main():
        async with httpx.AsyncClient() as http:
            client = ComfyUIClient(sys.argv[2], http)
            await client.object_info()  # (the client and httpx warmed up)
            before = peak_mb()
            path, digest, size = await client.download(
                OutputFile("9", "big.bin", "", "output"), Path(sys.argv[3]),
                max_bytes=int(sys.argv[4]) + 1,
            )
            print(json.dumps({"before": before, "after": peak_mb(), "size": size}))

    asyncio.run(main())
    """
)


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 100
    from PIL import Image

    print(f"dispatch benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    proc, url, fake_out = serve()
    try:
        with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
            image = Path(tmp) / "tiny.png"
            Image.new("RGB", (64, 64), (90, 120, 200)).save(image)
            data = image.read_bytes()
            asyncio.run(bare_runs(url, data, 10))  # warm both sides
            bare, app = [], []
            for round_ in range(3):
                bare.append(asyncio.run(bare_runs(url, data, runs)))
                app.append(asyncio.run(app_runs(url, image, runs, Path(tmp) / f"r{round_}")))
            b, a = statistics.median(bare) * 1000, statistics.median(app) * 1000
            print(f"\n1. {runs} runs of a 1-image graph, 3 rounds (medians):")
            print(f"   bare protocol (the fake's own time)  {b:7.2f} ms a run")
            print(f"   the app's execute()                  {a:7.2f} ms a run")
            overhead = a - b
            print(f"   the app adds                         {overhead:7.2f} ms a run (goal <= 30)")
            if overhead > OVERHEAD_GOAL_MS:
                print(f"GOAL MISSED: the app adds {overhead:.1f} ms a run > {OVERHEAD_GOAL_MS:g}")

            big = fake_out / "big.bin"
            with big.open("wb") as fh:
                block = os.urandom(2**20)
                for _ in range(BIG_MB):
                    fh.write(block)
            dest = Path(tmp) / "big-dest"
            dest.mkdir()
            res = subprocess.run(
                [sys.executable, "-c", BIG, str(ROOT), url, str(dest), str(BIG_MB * 2**20)],
                capture_output=True,
                text=True,
                check=False,
            )
            big.unlink()
            if res.returncode != 0:
                print(f"GOAL MISSED: the big download failed: {res.stderr.strip()[-500:]}")
                return 0
            figures: dict[str, Any] = json.loads(res.stdout)
            grown = figures["after"] - figures["before"]
            print(f"\n2. a {BIG_MB} MB output downloaded ({figures['size']:,} bytes):")
            print(
                f"   peak memory {figures['before']:.0f} MB before, {figures['after']:.0f} MB "
                f"after: grew {grown:.1f} MB (goal < {MEMORY_GOAL_MB:g})"
            )
            if grown >= MEMORY_GOAL_MB:
                print(f"GOAL MISSED: peak memory grew {grown:.1f} MB >= {MEMORY_GOAL_MB:g}")
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
