"""``comfyvn-gui jobs dispatch|watch|outputs|remove`` as a user types them: one line per
refusal (exit 2, nothing sent), the job followed to its end, its outputs listed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfyvn_gui.service import Service
from tests.cli.test_cli import cli
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.service.test_dispatch import local_gpu, project, stop_driver, summary

pytestmark = pytest.mark.usefixtures("secret_service")

__all__ = ["local_gpu"]  # (the fixture: a GPU for the local provider, this machine has none)


@pytest.fixture
def comfyui() -> Iterator[ComfyUIServer]:
    with running_comfyui() as server:
        yield server


def test_dispatch_watch_and_outputs_from_the_command_line(
    capsys: pytest.CaptureFixture[str], comfyui: ComfyUIServer, tmp_path: Path
) -> None:
    svc = Service()
    svc.register_provider(
        {"id": "local", "template_id": "local", "config": {"endpoints": {"comfyui": comfyui.url}}}
    )
    folder = project(tmp_path / "project")
    (tmp_path / "summary.json").write_text(json.dumps(summary()))
    code, _, err = cli(capsys, "jobs", "import-summary", str(tmp_path / "summary.json"))
    assert code == 0, err
    [job] = svc.list_jobs()
    assert job.source["project_dir"] == str(tmp_path)  # the summary's folder ...
    # ... where the files are not: dispatch names the missing ones and sends nothing
    code, _, err = cli(capsys, "jobs", "dispatch", str(job.id))
    assert code == 2 and "cg/a.png" in err and "Traceback" not in err
    assert comfyui.requests == []
    # watch, outputs and cancel of a queued job say what to do
    code, _, err = cli(capsys, "jobs", "watch", str(job.id))
    assert code == 2 and f"jobs dispatch {job.id}" in err
    code, _, err = cli(capsys, "jobs", "outputs", str(job.id))
    assert code == 2 and "has not run" in err
    code, _, err = cli(capsys, "jobs", "dispatch", "999")
    assert code == 2 and "no job 999" in err

    code, out, err = cli(
        capsys, "jobs", "dispatch", str(job.id), "--project-dir", str(folder)
    )  # (local: nothing leaves the machine, so nothing to acknowledge)
    assert code == 0, err
    assert f"job {job.id} dispatched to local" in out and "jobs watch" in out
    code, _, err = cli(capsys, "jobs", "dispatch", str(job.id))
    assert code == 2 and "jobs watch" in err  # not queued any more
    code, _, err = cli(capsys, "jobs", "remove", str(job.id))
    assert code == 2 and "cancel it first" in err

    code, out, err = cli(capsys, "jobs", "watch", str(job.id))
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"job {job.id}: completed on local: 2 of 2 runs, 2 output files")
    code, out, err = cli(capsys, "jobs", "outputs", str(job.id), "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert listing["folder"] == str(folder / "comfyvn-output" / str(job.id))
    assert len(listing["outputs"]) == 2
    stop_driver(svc)
    code, out, err = cli(capsys, "jobs", "remove", str(job.id))
    assert code == 0 and "outputs stay on disk" in out, err
    assert (folder / "comfyvn-output" / str(job.id) / "outputs.json").is_file()
    code, _, err = cli(capsys, "jobs", "show", str(job.id))
    assert code == 2 and f"no job {job.id}" in err


def test_warnings_are_asked_about_in_a_terminal_and_needed_without_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import os
    import pty
    import subprocess
    import sys

    from tests.service.test_dispatch_custom import TOKEN, box_job

    with running_comfyui(token=TOKEN) as server:
        svc = Service()
        job = box_job(svc, server, tmp_path)
        # no terminal, no --yes: exit 2 listing the warnings
        code, _, err = cli(capsys, "jobs", "dispatch", str(job.id))
        assert code == 2 and "data_leaves_machine" in err and "--yes" in err
        assert len(err.strip().splitlines()) == 1
        # a terminal: the warnings are listed and asked about; "n" sends nothing
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "comfyvn_gui", "jobs", "dispatch", str(job.id)],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=follower,
            env=os.environ.copy(),
        )
        os.close(follower)
        shown = b""
        while b"[y/N]" not in shown:
            chunk = os.read(leader, 4096)
            assert chunk, shown
            shown += chunk
        os.write(leader, b"n\n")
        assert proc.wait(60) == 1
        rest = b""
        try:
            while chunk := os.read(leader, 4096):
                rest += chunk
        except OSError:
            pass
        os.close(leader)
        proc.stdout.close()  # type: ignore[union-attr]
        text = (shown + rest).decode()
        assert "[data_leaves_machine]" in text and "Upload and run it?" in text
        assert "not dispatched: nothing was sent" in text
        assert server.requests == [] and svc.get_job(job.id).status == "queued"
        # --yes acknowledges them
        code, out, err = cli(capsys, "jobs", "dispatch", str(job.id), "--yes")
        assert code == 0 and "dispatched to box" in out, err
        code, out, _ = cli(capsys, "jobs", "watch", str(job.id))
        assert code == 0 and "completed on box" in out
        stop_driver(svc)
