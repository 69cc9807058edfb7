"""A job's input files: the project folder recorded at import, looked up at dispatch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.service import Service
from comfyvn_gui.service.inputs import job_inputs
from tests.cli.test_cli import cli

pytestmark = pytest.mark.usefixtures("secret_service")

MOONLIT = resources_dir() / "examples" / "summaries" / "moonlit-academy.json"


def summary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MOONLIT.read_text("utf-8"))
    return data


def make_project(root: Path, *, voices: dict[str, int] | None = None) -> Path:
    """The moonlit-academy project's files (empty placeholders), its voice folders filled."""
    counts = voices if voices is not None else {"hana": 180, "ren": 140, "narrator": 100}
    for asset in summary()["assets"]:
        if asset["id"].endswith("/"):
            continue
        path = root / asset["id"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    for who, n in counts.items():
        folder = root / "voice" / who
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (folder / f"line{i:03}.wav").write_bytes(b"w")
    return root


def by_kind(svc: Service, kind: str) -> int:
    return next(j.id for j in svc.list_jobs() if j.kind == kind)


def test_an_imported_job_finds_its_files_in_the_project_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path / "moonlit")
    svc = Service()
    jobs = svc.import_summary(summary(), str(project))
    assert all(j.source["project_dir"] == str(project) for j in jobs)
    cgs = svc.job_inputs(by_kind(svc, "cg_super_res"))
    assert [p.relative_to(project).as_posix() for p in cgs] == [
        "cg/bg_school_night.png",
        "cg/bg_rooftop_dusk.png",
        "cg/bg_library.png",
        "cg/ev_01_fireworks.png",
        "cg/ev_02_confession.png",
    ]
    voices = svc.job_inputs(by_kind(svc, "voice_synthesis"))
    assert len(voices) == 420  # three folders: 180 + 140 + 100 files, each sorted by name
    assert voices[0] == project / "voice" / "hana" / "line000.wav"
    assert voices[-1] == project / "voice" / "narrator" / "line099.wav"


def test_import_accepts_files_that_are_elsewhere_and_dispatch_names_the_missing_ones(
    tmp_path: Path,
) -> None:
    svc = Service()
    svc.import_summary(summary(), str(tmp_path / "not-there-yet"))  # nothing is looked at now
    job = by_kind(svc, "cg_super_res")
    with pytest.raises(InputError, match="does not exist: give the right one"):
        svc.job_inputs(job)
    project = make_project(tmp_path / "elsewhere")
    (project / "cg" / "bg_library.png").unlink()
    (project / "cg" / "ev_02_confession.png").unlink()
    with pytest.raises(InputError) as info:
        svc.job_inputs(job, str(project))
    assert info.value.message == (
        f"job {job}: 2 input file(s) not found in {project}: cg/bg_library.png, "
        "cg/ev_02_confession.png; put them there or give the right folder with --project-dir DIR"
    )


def test_a_folder_that_changed_since_import_is_refused_with_both_counts(tmp_path: Path) -> None:
    project = make_project(tmp_path / "moonlit", voices={"hana": 175, "ren": 140, "narrator": 100})
    svc = Service()
    svc.import_summary(summary(), str(project))
    with pytest.raises(InputError, match=r"says voice/hana/ holds 180 files, but .* holds 175"):
        svc.job_inputs(by_kind(svc, "voice_synthesis"))


def test_without_a_project_folder_the_fix_is_named(tmp_path: Path) -> None:
    svc = Service()
    svc.import_summary(summary())
    with pytest.raises(InputError, match=r"no project folder.*--project-dir DIR"):
        svc.job_inputs(by_kind(svc, "cg_super_res"))
    project = make_project(tmp_path / "p")
    assert len(svc.job_inputs(by_kind(svc, "cg_super_res"), str(project))) == 5


@pytest.mark.parametrize("asset_id", ["../outside.png", "/etc/passwd", "cg\\a.png", ""])
def test_an_input_outside_the_project_folder_is_refused(tmp_path: Path, asset_id: str) -> None:
    source = {"inputs": [{"id": asset_id}], "project_dir": str(tmp_path)}
    (tmp_path.parent / "outside.png").write_bytes(b"x")
    with pytest.raises(InputError, match="not a path inside its project folder"):
        job_inputs(3, source)


def test_a_link_leading_out_of_the_project_folder_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    os.symlink(secret, project / "cg.png")
    with pytest.raises(InputError, match="leads outside its project folder"):
        job_inputs(3, {"inputs": [{"id": "cg.png"}], "project_dir": str(project)})


def test_a_relative_project_folder_is_refused_by_the_service_and_nothing_is_queued() -> None:
    svc = Service()
    with pytest.raises(InputError, match="must be an absolute folder path"):
        svc.import_summary(summary(), "moonlit")
    assert svc.list_jobs() == []


def test_the_cli_records_the_summarys_folder_or_the_one_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "my vn"
    folder.mkdir()
    file = folder / "summary.json"
    file.write_text(MOONLIT.read_text("utf-8"), "utf-8")
    code, _, err = cli(capsys, "jobs", "import-summary", str(file), "--json")
    assert code == 0, err
    svc = Service()
    assert {j.source["project_dir"] for j in svc.list_jobs()} == {str(folder)}
    other = tmp_path / "assets"
    code, _, err = cli(
        capsys, "jobs", "import-summary", str(file), "--project-dir", str(other), "--json"
    )
    assert code == 0, err
    newest = max(j.id for j in svc.list_jobs())
    assert svc.get_job(newest).source["project_dir"] == str(other)
    code, _, err = cli(
        capsys, "jobs", "import-summary", "-", "--json", stdin=file.read_text("utf-8")
    )
    assert code == 0, err
    newest = max(j.id for j in svc.list_jobs())
    assert "project_dir" not in svc.get_job(newest).source


def test_outputs_go_under_the_project_folder_else_the_homes_data(tmp_path: Path) -> None:
    svc = Service()
    svc.import_summary(summary(), str(tmp_path / "moonlit"))
    job = by_kind(svc, "cg_super_res")
    assert svc.job_outputs_dir(job) == tmp_path / "moonlit" / "comfyvn-output" / str(job)
    assert svc.job_outputs_dir(job, str(tmp_path / "other")) == (
        tmp_path / "other" / "comfyvn-output" / str(job)
    )
    svc.import_summary(summary())
    loose = max(j.id for j in svc.list_jobs())
    assert svc.job_outputs_dir(loose) == svc.home.data_dir / "outputs" / str(loose)
