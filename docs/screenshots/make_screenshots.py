"""Make docs/screenshots/{remote-gpu,jobs,advisor}.png: a temporary home with a few providers,
checked for real against the test suite's provider fakes and a private Secret Service keyring,
and the sample importer summary resources/examples/summaries/moonlit-academy.json queued.

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
env, pid = cf.start_secret_service(base)
os.environ.update(env)
home = base / "home"
os.environ["COMFYVN_GUI_HOME"] = str(home)
from comfyvn_gui.service import Service  # noqa: E402
from tests.fakes.lambda_cloud import LambdaFake  # noqa: E402
from tests.fakes.runpod import RunPodFake, health_body  # noqa: E402

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
                "config": {"api_key": "secret_OLDKEY_0123456789abcdef.0000"},
            },
        )
        s.create_provider(
            "aws", {"id": "aws-eu", "name": "AWS Frankfurt", "config": {"region": "eu-central-1"}}
        )
        s.run_checks("validate", ["runpod-voices", "lambda-cg"])
        s.run_checks("health", ["runpod-voices"])
        summary = ROOT / "resources" / "examples" / "summaries" / "moonlit-academy.json"
        s.import_summary(json.loads(summary.read_text("utf-8")))
        s.close()
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    for page in ("remote-gpu", "jobs", "advisor"):
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
            timeout=60,
        )
        print(r.stdout.strip() or r.stderr[-2000:])
finally:
    os.kill(pid, 15)
