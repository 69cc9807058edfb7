"""HTTP API benchmark: 20 concurrent clients send 10,000 ``POST /compute/advise`` requests.

Run: ``.venv/bin/python benchmarks/api_bench.py [--requests N] [--clients N]``.

The real server (``comfyvn_gui.api.server.build``, uvicorn, as ``comfyvn-gui serve`` runs it)
serves a temporary home with 10 providers of mixed templates (registered without secrets: the
advisor needs none; the keyring is the null backend). The clients run in a separate process, so
the server's process does only the server's work; each client is a thread with its own
keep-alive ``httpx.Client``. The requests cycle through ``resources/examples/advice`` (what-if
requests naming their own providers) and the same workloads without their providers (advised
against the registered ones, read from the home on each request).

Prints the requests, the errors (non-200 answers and exceptions), the wall time, the throughput,
the latency (p50, p90, p99, max), the cost of one advice in-process (``Service.advise`` on the
same requests, no HTTP) and the ratio HTTP p50 / in-process mean, which a machine's speed
decides least (with 20 requests in flight, most of p50 is waiting for the others: the wall time
per request at full load is printed too). The goal: no errors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TOKEN_ENV = "COMFYVN_API_BENCH_TOKEN"
ADVICE_EXAMPLES = Path(__file__).resolve().parent.parent / "resources" / "examples" / "advice"


def advice_requests() -> list[dict[str, Any]]:
    """The example requests, and each one's workload (with its ``local``) alone."""
    examples = [json.loads(p.read_text("utf-8")) for p in sorted(ADVICE_EXAMPLES.glob("*.json"))]
    if not examples:
        raise SystemExit(f"no example requests in {ADVICE_EXAMPLES}")
    live = [{k: v for k, v in e.items() if k in ("workload", "local")} for e in examples]
    return examples + live


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))]


# -- the clients (a separate process) ----------------------------------------------------------


def run_clients(url: str, requests: int, clients: int) -> dict[str, Any]:
    """Send ``requests`` advice requests from ``clients`` threads; the figures as a dict."""
    import httpx

    token = os.environ[TOKEN_ENV]
    bodies = [json.dumps(b).encode() for b in advice_requests()]
    lock = threading.Lock()
    next_index = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    exceptions: dict[str, int] = {}
    start = threading.Barrier(clients + 1)

    def take() -> int | None:
        nonlocal next_index
        with lock:
            if next_index >= requests:
                return None
            next_index += 1
            return next_index - 1

    def client() -> None:
        mine: list[float] = []
        codes: dict[int, int] = {}
        errors: dict[str, int] = {}
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            start.wait()
            while (i := take()) is not None:
                t0 = time.perf_counter()
                try:
                    response = http.post("/compute/advise", content=bodies[i % len(bodies)])
                    response.read()
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                mine.append(time.perf_counter() - t0)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n
            for name, n in errors.items():
                exceptions[name] = exceptions.get(name, 0) + n

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "latencies_s": latencies,
        "statuses": {str(k): v for k, v in statuses.items()},
        "exceptions": exceptions,
    }


# -- the server (this process) -----------------------------------------------------------------


def register_providers(svc: Any) -> list[str]:
    """10 providers, one of each template but the built-in local one (no secrets)."""
    nowhere = "http://127.0.0.1:9"
    configs: dict[str, dict[str, Any]] = {
        "aws": {"region": "eu-central-1"},
        "azure": {
            "tenant_id": "00000000-0000-4000-8000-000000000001",
            "client_id": "00000000-0000-4000-8000-000000000002",
            "subscription_id": "00000000-0000-4000-8000-000000000003",
            "region": "westeurope",
        },
        "coreweave": {"organization_id": "comfyvn-bench"},
        "gcp": {"project_id": "comfyvn-bench", "region": "europe-west4"},
        "lambda": {"region": "us-east-1"},
        "lan": {"endpoint": nowhere},
        "paperspace": {"project": "pbench01", "region": "AMS1"},
        "runpod": {},
        "ssh": {
            "hostname": "127.0.0.1:9",
            "username": "render",
            "ssh_key_path": "/nonexistent/id_ed25519",
            "nfs_mount": "/mnt/comfyvn",
        },
        "vast": {},
    }
    ids = []
    for template_id, config in configs.items():
        entry = svc.create_provider(template_id, {"id": f"{template_id}-bench", "config": config})
        ids.append(entry.id)
    return ids


def in_process_ms(svc: Any, bodies: list[dict[str, Any]], rounds: int) -> float:
    """Mean milliseconds of one ``Service.advise`` on ``bodies`` (no HTTP, no JSON)."""
    for body in bodies:  # warm the caches the server's requests warm too
        svc.advise(body)
    times = []
    for i in range(rounds):
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter()
        svc.advise(body)
        times.append(time.perf_counter() - t0)
    return statistics.fmean(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests in all")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)  # the client process
    args = parser.parse_args(argv)
    if args.requests < 1 or args.clients < 1:
        parser.error("--requests and --clients must be at least 1")
    if args.client:
        json.dump(run_clients(args.client, args.requests, args.clients), sys.stdout)
        return 0

    with tempfile.TemporaryDirectory(prefix="comfyvn-api-bench-") as tmp:
        os.environ["COMFYVN_GUI_HOME"] = str(Path(tmp) / "home")
        os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from comfyvn_gui.service import Service
        from tests.fakes.api_server import ApiServer

        svc = Service()
        providers = register_providers(svc)
        bodies = advice_requests()
        for body in bodies:
            svc.advise(body)  # each request is valid: the goal counts only the server's errors
        in_process = in_process_ms(svc, bodies, rounds=600)

        server = ApiServer(svc).start()  # the product's server, as `serve` builds it
        url = server.url
        try:
            env = dict(os.environ, **{TOKEN_ENV: svc.home.api_token()})
            proc = subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--client",
                    url,
                    "--requests",
                    str(args.requests),
                    "--clients",
                    str(args.clients),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            server.stop()
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"the client process failed (exit {proc.returncode})")
        result = json.loads(proc.stdout)

    ms = sorted(s * 1000 for s in result["latencies_s"])
    statuses = {int(k): v for k, v in result["statuses"].items()}
    non_200 = sum(n for code, n in statuses.items() if code != 200)
    exceptions = sum(result["exceptions"].values())
    answered = sum(statuses.values())
    wall = result["wall_s"]
    print(
        f"API benchmark: POST /compute/advise, {args.clients} concurrent clients (another "
        f"process), {len(providers)} registered providers, {len(bodies)} request kinds"
    )
    print(f"requests:    {args.requests} sent, {answered} answered")
    print(
        f"errors:      {non_200} non-200"
        + (f" {dict(sorted(statuses.items()))}" if non_200 else "")
        + f", {exceptions} exceptions"
        + (f" {result['exceptions']}" if exceptions else "")
    )
    print(f"wall time:   {wall:.2f} s")
    print(f"throughput:  {answered / wall:.0f} req/s")
    if ms:
        print(
            f"latency:     p50 {percentile(ms, 0.50):.2f} ms   p90 {percentile(ms, 0.90):.2f} ms"
            f"   p99 {percentile(ms, 0.99):.2f} ms   max {ms[-1]:.2f} ms"
        )
    print(f"in-process:  Service.advise mean {in_process:.3f} ms (same requests, no HTTP)")
    if ms:
        print(f"ratio:       HTTP p50 / in-process mean = {percentile(ms, 0.50) / in_process:.1f}")
    if answered:
        per = wall / answered * 1000
        print(
            f"server:      {per:.2f} ms of wall time a request at full load "
            f"({per / in_process:.1f} x in-process; the rest of p50 is queueing)"
        )
    met = non_200 == 0 and exceptions == 0 and answered == args.requests
    print(f"goal: no errors — {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
