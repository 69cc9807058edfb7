"""Concurrency benchmark of validation (issue 5): many providers checked at once.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/checks_bench.py``).

The mix: 40 HTTP providers (Vast.ai contract fakes answering after 200 ms), 5 AWS providers on
moto (authentication enforced), 5 SSH providers on a real sshd with an ``nvidia-smi`` that
takes 200 ms (when openssh-server and the SSH adapter are available), plus one black-holed
provider (accepts connections, never answers). It prints the slowest single check and the sum
when checked one by one, the wall time when all are checked together, and their ratio (goal:
at most 1.5; sequential would be about 50x), then shows that the black-holed provider delays
nothing beyond its own deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.http import SilentServer, slow  # noqa: E402
from tests.fakes.vast import VastFake  # noqa: E402
from tests.secret_service import MissingTools, start  # noqa: E402

DEADLINE_S = 5.0


def make_service(root: Path) -> Any:
    from comfyvn_gui.service import Service
    from comfyvn_gui.store.paths import Home

    return Service(Home(root / "config", root / "data", root / "logs"))


def add_ssh(stack: ExitStack, svc: Any, tmp: Path, pids: dict[str, int]) -> list[str]:
    """5 SSH providers on a real sshd whose nvidia-smi takes 200 ms, each at an address of its
    own (as 5 servers would be: the app runs at most 4 checks at once per destination)."""

    from tests.fakes import sshd as sshd_fake

    (tmp / "sshd").mkdir()
    addresses = tuple(f"127.0.0.{i + 1}" for i in range(5))
    server = stack.enter_context(sshd_fake.running_sshd(tmp / "sshd", addresses))
    server.flag("slow")  # nvidia-smi takes 200 ms
    pids["sshd"] = server.proc.pid
    ids = []
    for i in range(5):
        pid = f"ssh-{i}"
        svc.create_provider(
            "ssh",
            {
                "id": pid,
                "config": {
                    "hostname": f"{addresses[i]}:{server.port}",
                    "username": "root",
                    "ssh_key_path": str(server.client_key),
                    "nfs_mount": str(server.nfs),
                },
            },
        )
        svc.trust_host(pid, server.host_fingerprint)
        ids.append(pid)
    return ids


CORES = os.cpu_count() or 1


def cpu_seconds(others: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of this process (the app), and of the servers' processes.

    sshd serves each connection in a child it waits for, so its children's times count
    (``/proc/PID/stat`` fields utime, stime, cutime, cstime).
    """
    tick = os.sysconf("SC_CLK_TCK")
    out = {"the app": time.process_time()}
    for name, pid in others.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = sum(int(f) for f in fields[11:15]) / tick
    return out


STEPS: dict[str, float] = {}


def time_steps(svc: Any) -> None:
    """Time the steps around the checks: the batch of keyring reads and the recording."""
    checks = svc._checks

    def timed(name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                STEPS[name] = time.perf_counter() - t

        return run

    checks.registry.read_secrets_many = timed("keyring", checks.registry.read_secrets_many)
    checks._record = timed("recording", checks._record)


async def check_all(svc: Any, ids: list[str]) -> tuple[float, list[Any]]:
    t = time.perf_counter()
    results = await svc.check("validate", ids, timeout_s=DEADLINE_S)
    return time.perf_counter() - t, results


def main() -> int:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        try:
            keyring_service = start(tmp / "keyring")
        except MissingTools as exc:
            print(f"cannot run: {exc}")
            return 1
        stack.callback(keyring_service.stop)
        env = keyring_service.env
        for k in ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
            os.environ[k] = env[k]
        svc = make_service(tmp / "home")

        # The counterparts run in another process, so their CPU (and GIL) is not the checks'.
        peer = subprocess.Popen(
            [sys.executable, __file__, "--counterparts"],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
        )
        stack.callback(peer.wait, 10)
        stack.callback(peer.stdin.close)  # type: ignore[union-attr]
        info = json.loads(peer.stdout.readline())  # type: ignore[union-attr]
        http_ids = []
        for i in range(40):
            pid = f"vast-{i}"
            svc.create_provider(
                "vast",
                {"id": pid, "base_url": info["vast"], "secrets": {"api_key": info["vast_key"]}},
            )
            http_ids.append(pid)
        aws_ids: list[str] = []
        for i in range(5):
            pid = f"aws-{i}"
            svc.create_provider(
                "aws",
                {
                    "id": pid,
                    "config": {"region": "us-east-1", "endpoints": {"aws": info["moto"]}},
                    "secrets": info["aws_keys"],
                },
            )
            aws_ids.append(pid)

        others = {"counterparts": peer.pid}
        ssh_ids = add_ssh(stack, svc, tmp, others)
        hole = stack.enter_context(SilentServer())
        svc.create_provider(
            "vast",
            {"id": "black-hole", "base_url": hole.base, "secrets": {"api_key": info["vast_key"]}},
        )

        ids = http_ids + aws_ids + ssh_ids
        print(
            f"{len(ids)} providers: {len(http_ids)} HTTP (200 ms), {len(aws_ids)} AWS on moto, "
            f"{len(ssh_ids)} SSH; plus 1 black-holed; deadline {DEADLINE_S:g} s; "
            f"{os.cpu_count()} CPU cores"
        )

        # Warm up imports and the botocore loader once, as a running app would have.
        asyncio.run(check_all(svc, [http_ids[0], *aws_ids[:1], *ssh_ids[:1]]))

        singles = []
        for pid in ids:
            elapsed, (r,) = asyncio.run(check_all(svc, [pid]))
            assert r.status == "valid", (pid, r.status, r.message)
            singles.append((elapsed, pid))
        slowest, slowest_id = max(singles)
        total = sum(e for e, _ in singles)
        print(
            f"one by one:        slowest single check {slowest:.3f} s ({slowest_id}); "
            f"sum {total:.2f} s"
        )

        time_steps(svc)
        cpu_before = cpu_seconds(others)
        wall, results = asyncio.run(check_all(svc, ids))
        cpu = {k: v - cpu_before[k] for k, v in cpu_seconds(others).items()}
        bad = [(r.provider, r.status) for r in results if r.status != "valid"]
        assert not bad, bad
        print(
            f"all {len(ids)} together: {wall:.3f} s  ->  ratio to the slowest single "
            f"{wall / slowest:.2f} (goal <= 1.5; sequential {total / slowest:.0f}x)"
        )
        longest = max((r.latency_ms or 0) / 1000 for r in results)
        print(
            f"  where the time goes: the longest check itself {longest:.3f} s; the rest "
            f"{wall - longest:.3f} s: the keyring batch of {len(ids) - 5} providers' secrets "
            f"{STEPS['keyring'] * 1000:.0f} ms (the SSH checks, which need none, run "
            f"meanwhile), recording the results and one activation commit "
            f"{STEPS['recording'] * 1000:.0f} ms"
        )
        print(
            f"  CPU used meanwhile: {sum(cpu.values()):.2f} s of the {wall * CORES:.2f} s that "
            f"{CORES} cores give in {wall:.3f} s ("
            + ", ".join(f"{k} {v:.2f} s" for k, v in cpu.items())
            + "); the servers share this machine's cores with the app"
        )
        kinds: dict[str, list[float]] = {}
        for r in results:
            kinds.setdefault(r.provider.split("-")[0], []).append((r.latency_ms or 0) / 1000)
        for kind, lat in kinds.items():
            print(
                f"  {kind:5s} x{len(lat):2d}: check latency max {max(lat):.3f} s, "
                f"mean {sum(lat) / len(lat):.3f} s"
            )

        wall_bh, results = asyncio.run(check_all(svc, [*ids, "black-hole"]))
        hole_r = next(r for r in results if r.provider == "black-hole")
        others = [(r.latency_ms or 0) / 1000 for r in results if r.provider != "black-hole"]
        print(
            f"with the black hole: it ended as {hole_r.status!r} after "
            f"{(hole_r.latency_ms or 0) / 1000:.2f} s (deadline {DEADLINE_S:g} s); the call "
            f"took {wall_bh:.2f} s; the other checks' latency max {max(others):.3f} s "
            f"(alone: {wall:.3f} s for all of them)"
        )
    return 0


def counterparts() -> int:
    """The HTTP and AWS counterparts, in their own process, until stdin closes."""
    import logging

    from tests.fakes.aws import moto_server, setup_account

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with VastFake() as vast:
        for key, route in list(vast.server.routes.items()):
            vast.server.routes[key] = slow(route, 0.2)
        gen = moto_server()
        url = next(gen)
        account = setup_account(url)
        print(
            json.dumps(
                {
                    "vast": vast.api_base,
                    "vast_key": vast.key,
                    "moto": url,
                    "aws_keys": account.keys["app"].secrets,
                }
            ),
            flush=True,
        )
        sys.stdin.read()
        gen.close()
    return 0


if __name__ == "__main__":
    sys.exit(counterparts() if "--counterparts" in sys.argv else main())
