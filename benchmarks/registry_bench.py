"""Registry benchmark: load, export and import of a registry of 1,000 providers.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/registry_bench.py [N]``).

Prints wall times and, so that a machine's speed does not decide, ratios against the bare
``json.loads`` + ``json.dumps`` of the same registry file. A second part imports a team preset
of 100 providers with 2 secrets each into a private gnome-keyring (started here when
gnome-keyring and dbus-daemon are installed), exports it with its secrets, and compares the
import with the backend's floor: the same number of bare keyring writes into an empty keyring
(the ratio is what the app adds); then the same with keyring's own backend (a connection a call).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import Home

TEMPLATES = ["runpod", "vast", "lambda", "aws", "azure", "coreweave", "gcp", "paperspace", "lan"]


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def make_home(root: Path) -> Service:
    return Service(Home(root / "config", root / "data", root / "logs"))


def entries(n: int) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        t = TEMPLATES[i % len(TEMPLATES)]
        out.append(
            {
                "id": f"{t}-{i}",
                "template_id": t,
                "name": f"{t} node {i}",
                "meta": {"notes": "benchmark", "price_ceiling_usd": 0.5},
            }
        )
    return out


def start_keyring(base: Path) -> Any:
    """A private gnome-keyring (the tests' helper, a ``SecretService`` to ``stop()``); None
    when it is not installed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.secret_service import MissingTools, start

    try:
        service = start(base)
    except MissingTools:
        return None
    for k in ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        os.environ[k] = service.env[k]
    return service


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    data = entries(n)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # import into an empty home (no secrets: no keyring involved)
        homes = iter(range(100))
        import_s = best_of(
            lambda: make_home(root / f"i{next(homes)}").import_providers(
                data, replace=False, overwrite=True
            ),
            repeat=3,
        )
        svc = make_home(root / "i0")
        reg_file = svc.home.registry_file
        size_kb = reg_file.stat().st_size / 1024

        def load() -> object:
            return make_home(root / "i0").list_providers()

        load_s = best_of(load)
        export_s = best_of(lambda: make_home(root / "i0").export_providers())
        export = make_home(root / "i0").export_providers()
        reimport_s = best_of(
            lambda: make_home(root / "i0").import_providers(export, replace=False, overwrite=True),
            repeat=3,
        )
        raw = reg_file.read_text()
        json_s = best_of(lambda: json.dumps(json.loads(raw)), repeat=20)

        print(f"registry of {n} providers ({size_kb:.0f} KiB on disk)")
        print(f"  load                {load_s * 1000:8.1f} ms   {load_s / json_s:6.1f}x raw JSON")
        print(
            f"  export              {export_s * 1000:8.1f} ms   {export_s / json_s:6.1f}x raw JSON"
        )
        print(
            f"  import (new home)   {import_s * 1000:8.1f} ms   {import_s / json_s:6.1f}x raw JSON"
        )
        print(
            f"  import (overwrite)  {reimport_s * 1000:8.1f} ms   "
            f"{reimport_s / json_s:6.1f}x raw JSON"
        )
        print(f"  raw json load+dump  {json_s * 1000:8.1f} ms   (the yardstick)")

        keyring_service = start_keyring(root / "kr")
        if keyring_service is None:
            print("keyring part skipped: gnome-keyring / dbus-daemon not installed")
            return 0
        try:
            # A team preset: 100 providers with 2 secrets each (issue 16: <= 2 s).
            with_secrets = [
                {
                    "id": f"team-{i:03d}",
                    "template_id": "runpod",
                    "name": f"Team {i}",
                    "secrets": {
                        "api_key": f"bench-secret-{i:012d}",
                        "webhook_secret": f"bench-hook-{i:012d}",
                    },
                }
                for i in range(100)
            ]
            k = sum(len(p["secrets"]) for p in with_secrets)  # type: ignore[arg-type]
            from keyring.backends.SecretService import Keyring as PerCallConnection

            from comfyvn_gui.store.secrets import SecretStore

            # What the backend itself needs: k bare writes into an empty keyring, then removed.
            floor_store = SecretStore("bench-floor")
            backend = floor_store.backend
            t = time.perf_counter()
            for i in range(k):
                backend.set_password(floor_store.service, f"p{i}/api_key", f"f{i:014d}")
            floor = time.perf_counter() - t
            for i in range(k):
                backend.delete_password(floor_store.service, f"p{i}/api_key")
            for label, per_call in (("one connection (the app)", False), ("keyring's own", True)):
                s_svc = make_home(root / ("p" if per_call else "s"))
                if per_call:  # keyring's backend as it comes: a D-Bus connection per call
                    store = SecretStore(s_svc.home.home_id, backend=PerCallConnection())
                    s_svc.registry._secrets = store
                t = time.perf_counter()
                s_svc.import_providers(with_secrets, replace=False, overwrite=True)
                imp = time.perf_counter() - t
                t = time.perf_counter()
                doc = s_svc.export_providers(include_secrets=True)
                exp = time.perf_counter() - t
                assert sum(1 for p in doc["providers"] if p.get("secrets")) == len(with_secrets)
                samples = []
                for _ in range(20):
                    t0 = time.perf_counter()
                    s_svc.registry.secrets.get("team-000", "api_key")
                    samples.append(time.perf_counter() - t0)
                rt = statistics.median(samples)
                print(
                    f"with the OS keyring (gnome-keyring), {len(with_secrets)} providers with 2 "
                    f"secrets each, {label}"
                )
                print(
                    f"  import with secrets {imp * 1000:8.1f} ms   ({imp / k * 1000:.1f} ms a "
                    f"secret, {imp / k / rt:.1f} keyring reads' time a secret; goal <= 2000 ms)"
                )
                print(
                    f"  export with secrets {exp * 1000:8.1f} ms   ({exp / k * 1000:.1f} ms a "
                    "secret)"
                )
                print(f"  one keyring read    {rt * 1000:8.2f} ms")
                if not per_call:
                    print(
                        f"  {k} bare keyring writes {floor * 1000:6.1f} ms   (the backend's floor "
                        f"for this import, into as empty a keyring: it is {imp / floor:.2f}x that)"
                    )
        finally:
            keyring_service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
