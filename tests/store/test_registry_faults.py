"""A process killed at EVERY step of a registry transaction: the next one recovers to all-old
or all-new, keyring included.

The registry names its steps (``Registry._fault``, a no-op in the app). A launcher here (the
only place that can make it kill) installs a hook that SIGKILLs the process when the step named
in ``COMFYVN_GUI_FAULT_AT`` is reached, and first lists the steps a change goes through, so a
new step is covered without editing this test. Unlike the random-timing SIGKILL test in
test_registry_processes.py, every step is hit, deterministically.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.conftest import keyring_entries

pytestmark = pytest.mark.usefixtures("secret_service")

LAUNCHER = textwrap.dedent(
    """
    import os, signal, sys
    from comfyvn_gui.store.registry import Registry

    target = os.environ.get("COMFYVN_GUI_FAULT_AT", "")
    log = os.environ["COMFYVN_GUI_FAULT_LOG"]

    def fault(step):
        with open(log, "a") as f:
            f.write(step + "\\n")
        if step == target:
            os.kill(os.getpid(), signal.SIGKILL)

    Registry._fault = staticmethod(fault)
    from comfyvn_gui.__main__ import main
    sys.exit(main(sys.argv[1:]))
    """
)

LONG_OLD = "o" * 1500  # stored in parts (comfyvn-chunks)
LONG_NEW = "n" * 2500


def run(
    *args: str, fault_at: str = "", log: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COMFYVN_GUI_FAULT_AT=fault_at, COMFYVN_GUI_FAULT_LOG=str(log))
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def entries() -> dict[str, str]:
    """This home's keyring entries (username -> value), chunk parts and parked values too."""
    service = f"comfyvn-gui/{resolve_home().home_id()}"
    return {u: v for (s, u), v in keyring_entries(service).items() if s == service}


def state() -> tuple[list[tuple[str, str, list[str]]], dict[str, str], bool]:
    home = resolve_home()
    reg = json.loads(home.registry_file.read_text())
    providers = [(p["id"], p.get("name", ""), sorted(p["secrets_set"])) for p in reg["providers"]]
    return providers, entries(), home.journal_file.exists()


def seed() -> None:
    svc = Service(resolve_home())
    svc.create_provider(
        "runpod",
        {"id": "p1", "name": "One", "config": {"api_key": "old-key-1-0123456789"},
         "secrets": {"webhook_secret": LONG_OLD}},
    )  # fmt: skip
    svc.create_provider(
        "runpod", {"id": "p2", "name": "Two", "config": {"api_key": "old-2-0123456789"}}
    )


CHANGE: dict[str, Any] = {
    "providers": [
        {"id": "p1", "template_id": "runpod", "name": "One v2",
         "secrets": {"api_key": "new-key-1-0123456789", "webhook_secret": LONG_NEW}},
        {"id": "p3", "template_id": "vast", "name": "Three",
         "secrets": {"api_key": "new-key-3-0123456789"}},
    ]
}  # fmt: skip


@pytest.mark.slow
def test_a_kill_at_every_step_of_a_replacing_import_recovers_to_old_or_new(
    app_home: Path, tmp_path: Path
) -> None:
    """One transaction that overwrites secrets (one stored in parts), adds one and deletes
    another provider's, killed at each of its steps in turn."""
    change = tmp_path / "change.json"
    change.write_text(json.dumps(CHANGE))
    argv = ("providers", "import", str(change), "--replace", "--yes")

    # The steps, and the all-new state, from one run that is not killed.
    seed()
    old = state()
    steps_log = tmp_path / "steps.log"
    res = run(*argv, log=steps_log)
    assert res.returncode == 0, res.stderr
    new = state()
    steps = steps_log.read_text().splitlines()
    assert len(steps) >= 10 and len(set(steps)) == len(steps), steps
    assert old != new and not old[2] and not new[2]
    assert not any("@prev" in u for u in new[1])

    outcomes: dict[str, str] = {}
    for step in steps:
        # Back to the old state: remove everything, seed again.
        Service(resolve_home()).remove_all_providers()
        seed()
        assert state() == old, f"set-up before {step}"
        killed = run(*argv, fault_at=step, log=tmp_path / f"kill-{steps.index(step)}.log")
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr)
        # The next process (any command) finishes or undoes what the killed one left.
        after = run("providers", "list", log=tmp_path / "recover.log")
        assert after.returncode == 0, (step, after.stderr)
        got = state()
        assert got in (old, new), f"killed at {step!r}: neither all-old nor all-new: {got}"
        outcomes[step] = "new" if got == new else "old"
    # Both ways out were taken: an early kill rolls back, a late one completes.
    assert outcomes[steps[0]] == "old" and outcomes[steps[-1]] == "new", outcomes
