"""Help -> "Save diagnostics": the zip's contents, and that no stored secret ever reaches it."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.checks import CheckResult, now
from comfyvn_gui.core.errors import OperationError
from comfyvn_gui.service import Service
from comfyvn_gui.service import diagnostics as diag_module
from comfyvn_gui.service.diagnostics import REDACTED, DiagnosticsReport
from comfyvn_gui.store.audit import read_events
from comfyvn_gui.store.checks import CheckStore
from comfyvn_gui.store.paths import resolve_home
from comfyvn_gui.store.secrets import KeyringUnavailableError

pytestmark = pytest.mark.usefixtures("secret_service")

RUNPOD_KEY = "rpa_CANARY_DIAG_0001abcdefghijkl"
AWS_ACCESS = "AKIA" + "CANARYDIAG000001"
AWS_SECRET = "CANARYdiagAwsSecret".ljust(40, "0")
PEM_LINE = "MIIEvQIBADANCANARYdiagGcpPrivateKeyLine0001"
GCP_PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{PEM_LINE}\n-----END PRIVATE KEY-----\n"
GCP_SA = json.dumps(
    {
        "type": "service_account",
        "project_id": "vn-diag-project",
        "private_key_id": "0123456789abcdef",
        "private_key": GCP_PRIVATE_KEY,
        "client_email": "vn@vn-diag-project.iam.gserviceaccount.com",
    },
    indent=2,
)
CANARIES = [RUNPOD_KEY, AWS_ACCESS, AWS_SECRET, GCP_SA, GCP_PRIVATE_KEY, PEM_LINE]

BASE_MEMBERS = [
    "README.txt",
    "about.json",
    "settings.json",
    "providers.json",
    "checks.json",
    "local-gpu.json",
]


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def add_providers(svc: Service) -> None:
    svc.create_provider(
        "runpod", {"id": "rp-diag", "config": {"api_key": RUNPOD_KEY, "endpoint_id": "ep-diag"}}
    )
    svc.create_provider(
        "aws",
        {
            "id": "aws-diag",
            "config": {"access_key": AWS_ACCESS, "secret_key": AWS_SECRET, "region": "us-east-1"},
        },
    )
    svc.create_provider(
        "gcp",
        {
            "id": "gcp-diag",
            "config": {"service_account_json": GCP_SA, "project_id": "vn-diag-project"},
        },
    )


def plant_leaks(svc: Service) -> None:
    """Secrets where they should never be: logs (raw, as an older version might have written
    them, and through the GUI's unfiltered gui.log handler), a check message, an audit event."""
    log_dir = svc.home.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / "gui.log", encoding="utf-8")  # as gui/app.py does
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("comfyvn_gui")
    logger.addHandler(handler)
    try:
        logger.warning("upload to bucket failed for rp-diag using %s today", RUNPOD_KEY)
    finally:
        logger.removeHandler(handler)
        handler.close()
    with (log_dir / "gui.log").open("a", encoding="utf-8") as fh:
        fh.write(f"aws said no to {AWS_SECRET} while listing regions\n")
        fh.write(f"gcp credentials dump {json.dumps({'sa': GCP_SA})} end of dump\n")
        fh.write(f"traceback line: {PEM_LINE} <- here\n")
    (log_dir / "compute_advisor.log.1").write_text(
        json.dumps({"event": "old.version", "note": f"key was {RUNPOD_KEY}", "sa": GCP_SA}) + "\n"
    )
    (log_dir / ".__compute_advisor.lock").write_text("")  # lock files are left out
    svc.audit.event("diag.test", note=f"accidental {AWS_SECRET} in a note")
    svc.audit.close()
    CheckStore(svc.home).save(
        [
            CheckResult(
                provider="rp-diag",
                check="validate",
                status="invalid_credentials",
                code="invalid_credentials",
                message=f"the server said the key {RUNPOD_KEY} is not valid",
                fields=["api_key"],
                checked_at=now(),
            )
        ]
    )


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def assert_no_canary(members: dict[str, bytes], canaries: list[str] = CANARIES) -> None:
    for canary in canaries:
        forms = {canary, json.dumps(canary)[1:-1], json.dumps(json.dumps(canary)[1:-1])[1:-1]}
        for form in forms:
            needle = form.encode()
            for name, data in members.items():
                assert needle not in data, f"a canary secret leaked into {name}"


# ------------------------------------------------------------------------------- contents


def test_zip_holds_every_section_and_no_secret(svc: Service, tmp_path: Path) -> None:
    add_providers(svc)
    plant_leaks(svc)
    svc.add_job({"title": "Chapter 1 translation", "kind": "translation", "characters": 5000})
    target = tmp_path / "out" / "diagnostics.zip"
    target.parent.mkdir()

    report = svc.write_diagnostics(target)

    assert isinstance(report, DiagnosticsReport)
    assert report.path == target
    assert report.keyring_read is True
    assert report.redacted_count >= 7  # 4 in gui.log, 2 in the old log, 1 in checks
    members = read_zip(target)
    assert list(members) == report.files
    assert report.files == [
        *BASE_MEMBERS,
        "jobs.json",
        "logs/compute_advisor.log",
        "logs/compute_advisor.log.1",
        "logs/gui.log",
    ]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["diagnostics.zip"]  # no temp file
    assert_no_canary(members)

    about = json.loads(members["about.json"])
    assert about["version"] and about["catalog_version"]
    assert about["keyring_backend"] != "none" and about["keyring_problem"] is None
    assert about["secrets_read_from_keyring"] is True
    assert about["packages"]["PySide6"] != "not installed"
    assert set(about["packages"]) >= {"qasync", "boto3", "google-auth", "nvidia-ml-py"}
    assert about["python"].startswith(sys.version.split()[0])

    providers = {p["id"]: p for p in json.loads(members["providers.json"])["providers"]}
    assert set(providers) == {"local", "rp-diag", "aws-diag", "gcp-diag"}
    assert providers["rp-diag"]["secrets_set"] == ["api_key"]
    assert providers["rp-diag"]["config"]["endpoint_id"] == "ep-diag"
    assert sorted(providers["aws-diag"]["secrets_set"]) == ["access_key", "secret_key"]
    assert providers["gcp-diag"]["config"]["project_id"] == "vn-diag-project"

    check = json.loads(members["checks.json"])["rp-diag"]["validate"]
    assert check["status"] == "invalid_credentials"
    assert check["message"].startswith("the server said the key ")
    assert check["message"].endswith(" is not valid")

    assert json.loads(members["settings.json"]) == svc.settings.all()
    assert "gpus" in json.loads(members["local-gpu.json"])

    jobs = json.loads(members["jobs.json"])
    assert jobs["total"] == 1 and jobs["by_status"]["queued"] == 1
    (job,) = jobs["latest"]
    assert job["title"] == "Chapter 1 translation" and job["kind"] == "translation"
    assert set(job) == {"id", "title", "kind", "status", "provider", "updated_at"}

    gui_log = members["logs/gui.log"].decode()
    assert "upload to bucket failed for rp-diag using " in gui_log
    assert " today" in gui_log
    assert "while listing regions" in gui_log and "end of dump" in gui_log
    assert "traceback line: " in gui_log
    assert "diag.test" in members["logs/compute_advisor.log"].decode()
    assert b"old.version" in members["logs/compute_advisor.log.1"]

    readme = members["README.txt"].decode()
    assert "redacted" in readme and "providers.json" in readme and "logs/" in readme
    (saved,) = [e for e in read_events(svc.home) if e["event"] == "diagnostics.saved"]
    assert saved["path"] == str(target) and saved["files"] == len(report.files)
    assert saved["redacted_count"] == report.redacted_count and saved["keyring_read"] is True


def test_without_jobs_or_logs_the_zip_has_only_the_base_sections(
    svc: Service, tmp_path: Path
) -> None:
    report = svc.write_diagnostics(tmp_path / "d.zip")
    assert report.files == BASE_MEMBERS
    assert report.keyring_read is True
    assert not svc.job_store.exists()  # writing diagnostics creates no job queue


def test_stored_secrets_are_removed_even_where_redact_does_not_know_them(
    svc: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyring pass on its own: with redact() switched off every canary is still gone,
    replaced with [redacted], and the words around it stay."""
    add_providers(svc)
    plant_leaks(svc)
    monkeypatch.setattr(diag_module, "redact", lambda obj: obj)

    report = svc.write_diagnostics(tmp_path / "d.zip")

    members = read_zip(report.path)
    assert_no_canary(members)
    gui_log = members["logs/gui.log"].decode()
    assert f"upload to bucket failed for rp-diag using {REDACTED} today" in gui_log
    assert f"aws said no to {REDACTED} while listing regions" in gui_log
    assert f"traceback line: {REDACTED} <- here" in gui_log
    assert f"credentials dump {json.dumps({'sa': REDACTED})} end of dump" in gui_log
    check = json.loads(members["checks.json"])["rp-diag"]["validate"]
    assert check["message"] == f"the server said the key {REDACTED} is not valid"
    old = json.loads(members["logs/compute_advisor.log.1"])
    assert old == {"event": "old.version", "note": f"key was {REDACTED}", "sa": REDACTED}
    assert report.redacted_count >= 7


def test_long_logs_keep_their_last_five_megabytes(svc: Service, tmp_path: Path) -> None:
    add_providers(svc)
    log = svc.home.log_dir / "gui.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    filler = "x" * 99 + "\n"
    with log.open("w", encoding="utf-8") as fh:
        fh.write(f"first line with {RUNPOD_KEY}\n")
        fh.write(filler * 60_000)  # 6 MB
        fh.write(f"last line with {RUNPOD_KEY}\n")

    members = read_zip(svc.write_diagnostics(tmp_path / "d.zip").path)

    text = members["logs/gui.log"].decode()
    assert text.startswith("[the first ")
    assert "first line with" not in text
    assert "last line with " in text
    assert len(members["logs/gui.log"]) <= diag_module.LOG_CAP_BYTES + 200
    assert_no_canary(members)


# ------------------------------------------------------------------------------- keyring


def test_unavailable_keyring_still_writes_the_zip_and_says_so(
    svc: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_providers(svc)
    plant_leaks(svc)

    def unavailable(*_args: Any, **_kwargs: Any) -> None:
        raise KeyringUnavailableError("No usable OS keyring was found (test).")

    for method in ("get", "get_raw", "check"):
        monkeypatch.setattr(svc.secrets, method, unavailable)

    report = svc.write_diagnostics(tmp_path / "d.zip")

    assert report.keyring_read is False
    members = read_zip(report.path)
    assert report.files[: len(BASE_MEMBERS)] == BASE_MEMBERS
    about = json.loads(members["about.json"])
    assert about["secrets_read_from_keyring"] is False
    assert "No usable OS keyring" in about["keyring_problem"]
    assert "pattern-based redaction only" in about["keyring_read_problem"]
    assert "could not be read" in members["README.txt"].decode()
    # redact() still knows the whole values this process stored, and masks them (a lone line
    # of a key in free text is only found through the keyring, which is out here).
    assert_no_canary(members, [c for c in CANARIES if c != PEM_LINE])
    assert "upload to bucket failed for rp-diag using *** today" in members["logs/gui.log"].decode()


# ------------------------------------------------------------------------------- failures


def test_a_folder_nobody_can_write_raises_and_leaves_nothing(svc: Service) -> None:
    with pytest.raises(OperationError, match=r"cannot save the diagnostics to /proc/d\.zip"):
        svc.write_diagnostics(Path("/proc/d.zip"))  # not writable, not even by root
    assert not any(p.name.startswith(".d.zip") for p in Path("/proc").iterdir())


def test_a_missing_folder_or_a_folder_as_target_is_refused(svc: Service, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OperationError, match="does not exist"):
        svc.write_diagnostics(blocker / "d.zip")
    with pytest.raises(OperationError, match="it is a folder"):
        svc.write_diagnostics(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["file.txt"]


def test_a_failure_half_way_removes_the_temp_file_and_keeps_the_old_zip(
    svc: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out" / "d.zip"
    target.parent.mkdir()
    target.write_bytes(b"the previous report")
    calls = {"n": 0}
    real_writestr = zipfile.ZipFile.writestr

    def disk_full(self: zipfile.ZipFile, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_writestr(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full)
    with pytest.raises(OperationError, match="No space left on device") as info:
        svc.write_diagnostics(target)
    assert "Nothing was written" in info.value.message
    assert [p.name for p in target.parent.iterdir()] == ["d.zip"]
    assert target.read_bytes() == b"the previous report"


# ------------------------------------------------------------------------------- imports


def test_writing_diagnostics_loads_no_cloud_sdk(svc: Service, tmp_path: Path) -> None:
    add_providers(svc)
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from comfyvn_gui.service import Service

        report = Service().write_diagnostics(Path(sys.argv[1]))
        sdks = ("boto3", "botocore", "azure", "google.auth", "google.oauth2", "paramiko",
                "kubernetes")
        print(report.keyring_read, sorted(m for m in sdks if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "d.zip")],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=True,
    ).stdout
    assert out.strip() == "True []"


def test_the_local_api_token_is_removed_like_a_secret(svc: Service, tmp_path: Path) -> None:
    """A log line that quoted the API's bearer token (it never should) loses it in the zip."""
    token = svc.home.api_token()
    log = svc.home.log_dir / "gui.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"a user pasted {token} into the wrong field\n")

    members = read_zip(svc.write_diagnostics(tmp_path / "d.zip").path)

    assert all(token.encode() not in data for data in members.values())
    assert f"a user pasted {REDACTED} into the wrong field" in members["logs/gui.log"].decode()
