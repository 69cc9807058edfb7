"""Make docs/screenshots/{remote-gpu,jobs,advisor,workflows,running,offers,dispatch-dialog}.png: a
temporary home with a few providers, checked for real against the test suite's provider fakes
and a private Secret Service keyring; the sample importer summary
resources/examples/summaries/moonlit-academy.json queued; a super-resolution job that really
ran (dispatched to a custom ComfyUI endpoint served by the ComfyUI contract fake, through the
real driver) and another queued for it (the confirmation dialog's picture); and a pod on the
RunPod pods fake that no job owns (an orphan, for the Running page), released at the end; the
Lambda provider's live prices fetched from the Lambda Cloud fake once its key is accepted again
(after the Remote GPU picture, which shows it refused): live rows on the Offers page.

Run from the repository root: ``.venv/bin/python docs/screenshots/make_screenshots.py``.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
import tests.conftest as cf  # noqa: E402

base = Path(tempfile.mkdtemp())
keyring = cf.start_secret_service(base)
os.environ.update(keyring.env)
home = base / "home"
os.environ["COMFYVN_GUI_HOME"] = str(home)
from comfyvn_gui.service import Service  # noqa: E402
from tests.fakes.comfyui import running_comfyui  # noqa: E402
from tests.fakes.lambda_cloud import LambdaFake  # noqa: E402
from tests.fakes.machine_host import MachineHosts  # noqa: E402
from tests.fakes.runpod import RunPodFake, health_body  # noqa: E402
from tests.fakes.runpod_pods import RunPodPodsFake  # noqa: E402
from tests.service.test_dispatch import project, stop_driver, summary  # noqa: E402

ENDED = ("completed", "failed", "cancelled")
OLD_LAMBDA_KEY = "secret_OLDKEY_0123456789abcdef.0000"


def run_a_job(s: Service, folder: Path) -> int:
    """Import a two-image super-resolution job for studio-box and dispatch it to the end."""
    import time

    [job] = s.import_summary(summary(), str(project(folder)))
    if job.compute is None or job.compute.provider != "studio-box":
        job = s.pick_provider(job.id, "studio-box")
    assert job.compute is not None
    codes = [item.code for item in s.job_consent(job.id)]
    s.dispatch_job(
        job.id, decided_at=job.compute.decided_at, acknowledge=codes, interface="screenshots"
    )
    deadline = time.monotonic() + 120
    while s.get_job(job.id).status not in ENDED:
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job.id} did not end in 2 minutes")
        time.sleep(0.2)
    return job.id


def rent_an_orphan(s: Service, provider_id: str) -> None:
    """A pod of this home that no job owns (rented by an app that died before recording it)."""
    import asyncio
    import getpass
    from datetime import UTC, datetime, timedelta

    from comfyvn_gui.core import machines
    from comfyvn_gui.providers.dispatch_targets import machine_adapter
    from comfyvn_gui.providers.machine import LaunchSpec, generate_keys

    async def launch() -> None:
        entry = s.registry.get(provider_id)
        ctx = s._checks.context(
            entry, s.registry.read_secrets(entry), asyncio.get_running_loop().time() + 60
        )
        adapter = machine_adapter(entry.template_id)
        name = machines.resource_name(s.home.home_id(), 41)
        keys = generate_keys(name)
        deadline = datetime.now(UTC) + timedelta(hours=1)
        plan = machines.StartupPlan(
            name=name,
            deadline=deadline,
            deadman=adapter.deadman,  # type: ignore[arg-type]
            host_private_key=keys.host_private,
            host_public_key=keys.host_public,
            client_public_key=keys.client_public,
            ssh_user=getpass.getuser(),
            mode=adapter.mode,  # type: ignore[arg-type]
            image="comfy:1",
        )
        await adapter.launch(
            ctx,
            LaunchSpec(
                name=name,
                tags=machines.resource_tags(s.home.home_id(), 41),
                job_id=41,
                image="comfy:1",
                startup_script=machines.startup_script(plan),
                client_public_key=keys.client_public,
                vram_mb=16000,
                max_hourly_usd=2.0,
                zones=None,
                deadline=deadline,
            ),
        )

    asyncio.run(launch())


def dialog_picture(s: Service, job_id: int, path: Path) -> None:
    """The dispatch confirmation of a queued job, rendered offscreen in this process."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from comfyvn_gui.gui.jobs.dispatch_dialog import DispatchDialog, read_confirmation

    app = QApplication.instance() or QApplication([])
    dialog = DispatchDialog(read_confirmation(s, [job_id]))
    dialog.resize(660, 560)
    dialog.show()
    for _ in range(20):
        app.processEvents()
    dialog.grab().save(str(path))
    dialog.close()
    print(f"saved {path}")


try:
    with (
        RunPodFake(endpoints={"ep-voices": health_body(idle=2, running=1)}) as rp,
        LambdaFake() as lam,
    ):
        s = Service()
        s.create_provider(
            "runpod",
            {
                "id": "runpod-voices",
                "name": "RunPod (voices)",
                "base_url": rp.serverless_base,
                "config": {
                    "api_key": rp.key,
                    "endpoint_id": "ep-voices",
                    "endpoints": {"graphql": rp.graphql_url},
                },
            },
        )
        s.create_provider(
            "lambda",
            {
                "id": "lambda-cg",
                "name": "Lambda (CG bakes)",
                "base_url": lam.api_base,
                "config": {"api_key": OLD_LAMBDA_KEY},
            },
        )
        s.create_provider(
            "aws", {"id": "aws-eu", "name": "AWS Frankfurt", "config": {"region": "eu-central-1"}}
        )
        s.run_checks("validate", ["runpod-voices", "lambda-cg"])
        s.run_checks("health", ["runpod-voices"])
        summary_file = ROOT / "resources" / "examples" / "summaries" / "moonlit-academy.json"
        s.import_summary(json.loads(summary_file.read_text("utf-8")))

        with running_comfyui(node_delay_s=0.2) as comfy, MachineHosts() as hosts:
            pods = RunPodPodsFake()
            pods.hosts = hosts
            with pods:
                s.create_provider(
                    "custom",
                    {
                        "id": "studio-box",
                        "name": "Studio box (ComfyUI)",
                        "config": {
                            "endpoint": comfy.url,
                            "hourly_usd": "0.60",
                            "zones": "eu",
                            "vram_gb": "24",
                            "billing_increment_minutes": "1",
                        },
                    },
                )
                s.create_provider(
                    "runpod",
                    {
                        "id": "runpod-pods",
                        "name": "RunPod (pods)",
                        "config": {
                            "api_key": pods.key,
                            "endpoints": {"graphql": pods.graphql_url},
                        },
                    },
                )
                s.run_checks("validate", ["studio-box", "runpod-pods"])
                ran = run_a_job(s, base / "project-ran")
                stop_driver(s, wait_idle=True)
                print(f"job {ran}: {s.get_job(ran).status}")
                [queued] = s.import_summary(summary(), str(project(base / "project-next")))
                if queued.compute is None or queued.compute.provider != "studio-box":
                    s.pick_provider(queued.id, "studio-box")
                rent_an_orphan(s, "runpod-pods")
                folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
                for page in ("remote-gpu", "jobs", "advisor", "workflows", "running", "offers"):
                    if page == "offers":
                        lam.key = OLD_LAMBDA_KEY  # (Lambda accepts the key now)
                        [prices] = s.run_refresh_prices(["lambda-cg"])
                        print(f"lambda-cg: {len(prices.offers)} live offers {prices.error or ''}")
                    r = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "comfyvn_gui",
                            "--screenshot",
                            str(folder / f"{page}.png"),
                            "--page",
                            page,
                        ],
                        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                        capture_output=True,
                        text=True,
                        timeout=90,
                    )
                    print(r.stdout.strip() or r.stderr[-2000:])
                dialog_picture(s, queued.id, folder / "dispatch-dialog.png")
                import asyncio

                stopped = asyncio.run(s.stop_running(orphans=True))
                print(f"released {len(stopped)} orphan resource(s); pods left: {sorted(pods.pods)}")
        s.close()
finally:
    keyring.stop()
