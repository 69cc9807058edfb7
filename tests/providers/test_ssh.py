"""The On-Prem SSH / NFS adapter through ``Service.check``, against a real OpenSSH server.

tests/fakes/sshd.py starts ``/usr/sbin/sshd`` (key auth only) with a fake ``nvidia-smi`` on the
session's PATH; the served account is the test's user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.http import SilentServer, arun, closed_port_url
from tests.fakes.sshd import PASSPHRASE, Sshd, free_port, running_sshd

pytestmark = pytest.mark.usefixtures("secret_service")

OTHER_FP = "SHA256:" + "A" * 43


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def sshd(sshd_server: Sshd) -> Iterator[Sshd]:
    sshd_server.reset()
    yield sshd_server
    sshd_server.reset()


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def add(
    svc: Service,
    sshd: Sshd,
    pid: str = "gpu01",
    *,
    key: Path | None = None,
    secrets: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
    **config: Any,
) -> None:
    cfg = {
        "hostname": sshd.hostname,
        "username": "root",
        "ssh_key_path": str(key or sshd.client_key),
        "nfs_mount": str(sshd.nfs),
        **config,
    }
    body: dict[str, Any] = {"id": pid, "config": cfg, "secrets": secrets or {}}
    if meta:
        body["meta"] = meta
    svc.create_provider("ssh", body)


def check(svc: Service, kind: str = "validate", pid: str = "gpu01", t: float = 10) -> CheckResult:
    [result] = arun(svc.check(kind, [pid], timeout_s=t))  # type: ignore[arg-type]
    return result


def pin(svc: Service, sshd: Sshd, pid: str = "gpu01") -> None:
    svc.trust_host(pid, sshd.host_fingerprint)


def assert_no_secret(svc: Service, *results: CheckResult) -> None:
    for r in results:
        assert PASSPHRASE not in r.model_dump_json()
    for d in (svc.home.config_dir, svc.home.data_dir, svc.home.log_dir):
        for path in d.rglob("*"):
            if path.is_file():
                assert PASSPHRASE.encode() not in path.read_bytes(), path


# --------------------------------------------------------------------------- trust on first use


def test_first_check_untrusted_then_trust_host_cli_then_valid(
    svc: Service, sshd: Sshd, app_home: Path
) -> None:
    add(svc, sshd, meta={"runbook_url": "https://wiki.example/runbooks/gpu01"})
    first = check(svc)
    assert first.status == "untrusted_host", first.message
    assert first.detail["fingerprint"] == sshd.host_fingerprint
    assert first.detail["key_type"] == "ssh-ed25519"
    assert first.detail["host"] == sshd.hostname
    command = f"comfyvn-gui providers trust-host gpu01 --fingerprint {sshd.host_fingerprint}"
    assert command in first.message
    assert first.fields == ["hostname"]
    assert "https://wiki.example/runbooks/gpu01" in first.message
    # Nothing was authenticated: the server never saw our key (no "Accepted publickey").
    assert "Accepted publickey" not in (sshd.dir / "sshd.log").read_text()

    res = subprocess.run(
        [sys.executable, "-m", "comfyvn_gui", "providers", "trust-host", "gpu01",
         "--fingerprint", sshd.host_fingerprint, "--json"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "COMFYVN_GUI_HOME": str(app_home)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    pinned = json.loads(res.stdout)
    assert (pinned["host"], pinned["fingerprint"]) == (sshd.hostname, sshd.host_fingerprint)

    second = check(svc)
    assert second.status == "valid", second.message
    d = second.detail
    assert d["identity"] == f"root@{sshd.hostname}"
    assert [(g["name"], g["vram_total_gb"], g["utilization_pct"]) for g in d["gpus"]] == [
        ("NVIDIA RTX A6000", 48.0, 37),
        ("NVIDIA GeForce RTX 4090", 24.0, 12),
    ]
    assert d["reported_vram_gb"] == 48.0
    assert d["nfs_mount"] == str(sshd.nfs)
    assert d["nfs_free_gb"] > 0
    assert d["runbook"] == "https://wiki.example/runbooks/gpu01"
    assert "NVIDIA RTX A6000 48 GB" in second.message
    assert "runbook: https://wiki.example/runbooks/gpu01" in second.message
    assert "Accepted publickey" in (sshd.dir / "sshd.log").read_text()

    health = check(svc, "health")
    assert (health.status, health.code) == ("healthy", None), health.message


def test_changed_host_key_is_mismatch_and_never_accepted(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd, meta={"compliance": "https://intranet.example/contracts/acme"})
    svc.trust_host("gpu01", OTHER_FP)
    for kind in ("validate", "health"):
        r = check(svc, kind)
        assert r.code == "host_key_mismatch", r.message
        assert r.detail["fingerprint"] == sshd.host_fingerprint
        assert r.detail["pinned_fingerprint"] == OTHER_FP
        assert sshd.host_fingerprint in r.message and OTHER_FP in r.message
        assert r.detail["compliance"] == "https://intranet.example/contracts/acme"
    assert r.status == "unhealthy"


def test_pin_for_another_address_is_untrusted(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd)
    # The right key, but pinned when the provider pointed at another address.
    svc.host_keys.pin("gpu01", "localhost:22", sshd.host_fingerprint)
    r = check(svc)
    assert r.status == "untrusted_host", r.message
    assert "localhost:22" in r.message


# --------------------------------------------------------------------------- keys


def test_wrong_key_is_invalid_credentials(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd, key=sshd.bad_key)
    pin(svc, sshd)
    r = check(svc)
    assert r.status == "invalid_credentials", r.message
    assert r.fields == ["ssh_key_path", "username"]


def test_encrypted_key_with_passphrase_is_valid(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd, key=sshd.encrypted_key, secrets={"key_passphrase": PASSPHRASE})
    pin(svc, sshd)
    r = check(svc)
    assert r.status == "valid", r.message
    assert r.detail["reported_vram_gb"] == 48.0
    assert_no_secret(svc, r)


def test_encrypted_key_without_passphrase_names_it(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd, key=sshd.encrypted_key)
    pin(svc, sshd)
    r = check(svc)
    assert r.status == "misconfigured", r.message
    assert r.fields == ["key_passphrase"]


def test_wrong_passphrase_is_invalid_credentials(svc: Service, sshd: Sshd) -> None:
    wrong = "not-the-passphrase-canary-99"
    add(svc, sshd, key=sshd.encrypted_key, secrets={"key_passphrase": wrong})
    pin(svc, sshd)
    r = check(svc)
    assert r.status == "invalid_credentials", r.message
    assert r.fields == ["key_passphrase"]
    assert wrong not in r.model_dump_json()
    assert_no_secret(svc, r)


def test_missing_key_file_names_ssh_key_path(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd, key=sshd.dir / "nope")
    r = check(svc)  # the key is read before anything is sent: no pin needed
    assert r.status == "misconfigured", r.message
    assert r.fields == ["ssh_key_path"]


def test_public_key_file_is_not_a_private_key(svc: Service, sshd: Sshd) -> None:
    pub = sshd.dir / "client_key.pub"
    pub.write_text((sshd.dir / "authorized_keys").read_text().splitlines()[0] + "\n")
    add(svc, sshd, key=pub)
    r = check(svc)
    assert (r.status, r.fields) == ("misconfigured", ["ssh_key_path"]), r.message
    assert "public key" in r.message


def test_ambient_keys_and_agent_are_not_used(
    svc: Service, sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An agent socket and a ~/.ssh holding the authorized key: neither may be tried.
    fake_home = tmp_path / "fakehome"
    (fake_home / ".ssh").mkdir(parents=True)
    (fake_home / ".ssh" / "id_ed25519").write_bytes(sshd.client_key.read_bytes())
    monkeypatch.setenv("HOME", str(fake_home))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    add(svc, sshd, key=sshd.bad_key)
    pin(svc, sshd)
    assert check(svc).status == "invalid_credentials"


# --------------------------------------------------------------------------- GPU and NFS


def test_missing_nfs_path_names_nfs_mount(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd, nfs_mount=str(sshd.nfs / "gone; touch /tmp/ssh-adapter-injected"))
    pin(svc, sshd)
    r = check(svc)
    assert r.status == "misconfigured", r.message
    assert r.fields == ["nfs_mount"]
    assert not Path("/tmp/ssh-adapter-injected").exists()  # shell-quoted


def test_no_nvidia_smi_valid_but_health_degraded(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd)
    pin(svc, sshd)
    sshd.flag("absent")
    v = check(svc)
    assert v.status == "valid", v.message
    assert v.detail["gpus"] == [] and "reported_vram_gb" not in v.detail
    assert v.detail["gpu"].startswith("no GPU found")
    h = check(svc, "health")
    assert (h.status, h.code) == ("degraded", "misconfigured"), h.message
    sshd.flag("absent", False)
    sshd.flag("fail")
    h = check(svc, "health")
    assert (h.status, h.code) == ("degraded", "error")
    assert "NVIDIA driver" in h.message


def test_a_failing_nvidia_smi_does_not_hide_the_nfs_figures(svc: Service, sshd: Sshd) -> None:
    # The check runs nvidia-smi, stat and df in one SSH session; each part's output and exit
    # status must still reach its own place.
    add(svc, sshd)
    pin(svc, sshd)
    sshd.flag("fail")
    h = check(svc, "health")
    assert (h.status, h.code) == ("degraded", "error"), h.message
    assert "nvidia-smi failed (exit 9: NVIDIA-SMI has failed" in h.message
    assert h.detail["nfs_free_gb"] > 0 and h.detail["nfs_fs_type"], h.detail
    assert "GB free on" in h.message


def test_an_nfs_path_with_quotes_and_dollars_reaches_the_host_intact(
    svc: Service, sshd: Sshd
) -> None:
    odd = sshd.nfs / "it's $(id) `uname` %s \\n"
    odd.mkdir()
    try:
        add(svc, sshd, nfs_mount=str(odd))
        pin(svc, sshd)
        r = check(svc)
        assert r.status == "valid", r.message
        assert r.detail["nfs_mount"] == str(odd) and r.detail["nfs_free_gb"] > 0
        assert len(r.detail["gpus"]) == 2
        file = odd / "a file"
        file.write_text("x")
        add(svc, sshd, pid="gpu02", nfs_mount=str(file))
        pin(svc, sshd, "gpu02")
        r = check(svc, pid="gpu02")
        assert r.status == "misconfigured" and "is a regular file" in r.message, r.message
        assert r.fields == ["nfs_mount"]
    finally:
        for f in odd.iterdir():
            f.unlink()
        odd.rmdir()


def test_the_probe_output_is_split_back_into_its_parts() -> None:
    from comfyvn_gui.providers.ssh import _sections

    m = "0123abcd"
    out = f"A, 1\n\n{m} gpu 0\nregular file\n\n{m} stat 0\n4096 100\n\n{m} df 0\n"
    err = f"\n{m} gpu\n\n{m} stat\n\n{m} df\n"
    found = _sections(out, err, m)
    assert found == {
        "gpu": (0, "A, 1\n", ""),
        "stat": (0, "regular file\n", ""),
        "df": (0, "4096 100\n", ""),
    }
    # A probe cut short (the connection dropped) leaves the later parts out.
    assert list(_sections(f"A\n\n{m} gpu 9\npartial", f"boom\n{m} gpu\n", m)) == ["gpu"]


def test_busy_gpu_degrades_health_and_slow_smi_is_fine(svc: Service, sshd: Sshd) -> None:
    add(svc, sshd)
    pin(svc, sshd)
    sshd.flag("busy")
    sshd.flag("slow")
    h = check(svc, "health")
    assert h.status == "degraded", h.message
    assert "99% busy" in h.message


# --------------------------------------------------------------------------- network


def test_refused_port_is_unreachable_naming_hostname(svc: Service, sshd: Sshd) -> None:
    port = closed_port_url().rsplit(":", 1)[1]
    add(svc, sshd, hostname=f"127.0.0.1:{port}")
    r = check(svc)
    assert r.status == "unreachable", r.message
    assert r.fields == ["hostname"]


def test_black_hole_ends_by_its_deadline(svc: Service, sshd: Sshd) -> None:
    with SilentServer() as silent:
        port = silent.sock.getsockname()[1]
        add(svc, sshd, hostname=f"127.0.0.1:{port}")
        started = time.monotonic()
        r = check(svc, t=2)
        took = time.monotonic() - started
    assert r.status == "timeout", r.message
    assert took < 3.5


def test_black_holes_do_not_starve_other_checks(svc: Service, sshd: Sshd) -> None:
    with SilentServer() as silent:
        port = silent.sock.getsockname()[1]
        for i in range(6):
            add(svc, sshd, f"hole{i}", hostname=f"127.0.0.1:{port}")
        add(svc, sshd, "good")
        pin(svc, sshd, "good")
        ids = [*(f"hole{i}" for i in range(6)), "good", "local"]  # local: built in
        started = time.monotonic()
        results = {r.provider: r for r in arun(svc.check("validate", ids, timeout_s=3))}
        took = time.monotonic() - started
    assert took < 4.5
    assert {results[f"hole{i}"].status for i in range(6)} == {"timeout"}
    assert results["good"].status == "valid", results["good"].message
    assert results["good"].latency_ms is not None and results["good"].latency_ms < 2500
    assert results["local"].status == "valid", results["local"].message


def test_unused_port_helper_is_free() -> None:
    assert 0 < free_port() < 65536
