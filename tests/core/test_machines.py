"""core/machines.py on its own: resource names and tags, the hard deadline, and the start-up
script — whose parts are RUN here under ``sh`` (``/bin/sh``, dash on Debian) with stub
commands first on ``PATH`` that record their argv, so a test proves what the shell hands each
command, not what the text looks like. No network; nothing outside the test's folder is
written: the ``ssh`` part's absolute paths (``/etc/ssh``, ``/run/sshd``, ``/usr/sbin/sshd``,
``/root``) and the ``comfyui`` part's log are moved into the test's folder first, and a guard
fails the test if any is left.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.machines import (
    DOWNLOAD_ALLOWANCE_S,
    HOME_TAG,
    JOB_TAG,
    StartupPlan,
    hard_deadline,
    parse_resource_name,
    resource_name,
    resource_tags,
    script_part,
    startup_script,
)
from comfyvn_gui.providers.machine import generate_keys
from tests.fakes.machine_host import keys_of

HOME = "0a1b2c3d4e5f6789"
KEYS = generate_keys(resource_name(HOME, 7))
START = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

# -- names and tags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("home", "job"), [(HOME, 7), ("abcd", 0), ("f" * 64, 999_999_999_999), (HOME, 42)]
)
def test_resource_name_round_trips(home: str, job: int) -> None:
    name = resource_name(home, job)
    assert name == f"comfyvn-{home}-job{job}"
    assert parse_resource_name(name) == (home, job)


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        f"other-{HOME}-job7",  # another prefix
        f"comfyvn2-{HOME}-job7",
        f"xcomfyvn-{HOME}-job7",
        f"comfyvn-{HOME}-jobx",  # the job id not numeric
        f"comfyvn-{HOME}-job",
        f"comfyvn-{HOME}-job-7",
        f"comfyvn-{HOME}-job7a",
        f"comfyvn-{HOME}-job1234567890123",  # 13 digits
        f"comfyvn-{HOME.upper()}-job7",  # an uppercase home
        "comfyvn-0A1B-job7",
        "comfyvn-abc-job7",  # a home id too short
        f"comfyvn-{'a' * 65}-job7",  # too long
        f"comfyvn-{HOME}-job7-extra",
        f"comfyvn-{HOME}-job7 ",
        f" comfyvn-{HOME}-job7",
        "comfyvn-ghij-job7",
        "comfyvn--job7",
    ],
)
def test_foreign_names_parse_to_none(name: str | None) -> None:
    assert parse_resource_name(name) is None


def test_a_name_with_a_trailing_newline_is_foreign() -> None:
    assert parse_resource_name(f"comfyvn-{HOME}-job7\n") is None


def test_resource_tags() -> None:
    tags = resource_tags(HOME, 7)
    assert tags == {HOME_TAG: HOME, JOB_TAG: "7"}
    assert (HOME_TAG, JOB_TAG) == ("comfyvn-gui-home", "comfyvn-gui-job")
    assert all(isinstance(v, str) for v in tags.values())


# -- the hard deadline -------------------------------------------------------------------


def test_the_runtime_alone_sets_the_deadline() -> None:
    got = hard_deadline(START, runtime_s=3600, cost_usd=None, hourly_usd=None)
    assert got == START + timedelta(seconds=3600 + DOWNLOAD_ALLOWANCE_S)
    assert DOWNLOAD_ALLOWANCE_S == 300.0
    # a cost ceiling without a price, or a price without a ceiling, or a price of 0: runtime
    for cost, hourly in ((1.0, None), (None, 2.0), (1.0, 0.0)):
        assert hard_deadline(START, runtime_s=3600, cost_usd=cost, hourly_usd=hourly) == got


def test_the_cost_ceiling_at_the_price_comes_sooner() -> None:
    # $1 at $2/h lasts 30 min, under the 1 h runtime ceiling
    got = hard_deadline(START, runtime_s=3600, cost_usd=1.0, hourly_usd=2.0)
    assert got == START + timedelta(seconds=1800 + 300)
    # $10 at $2/h lasts 5 h: the runtime ceiling comes first
    got = hard_deadline(START, runtime_s=3600, cost_usd=10.0, hourly_usd=2.0)
    assert got == START + timedelta(seconds=3600 + 300)
    # a cost ceiling of 0: only the allowance
    assert hard_deadline(START, runtime_s=3600, cost_usd=0.0, hourly_usd=2.0) == START + (
        timedelta(seconds=300)
    )


def test_the_allowance_is_added() -> None:
    for allowance in (0.0, 1.5, 900.0):
        got = hard_deadline(
            START, runtime_s=60, cost_usd=None, hourly_usd=None, allowance_s=allowance
        )
        assert got == START + timedelta(seconds=60 + allowance)
    # a negative time left counts as none: the allowance still comes after the start
    got = hard_deadline(START, runtime_s=-50, cost_usd=None, hourly_usd=None, allowance_s=10)
    assert got == START + timedelta(seconds=10)


def test_the_deadline_is_timezone_aware_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    start = datetime(2030, 1, 2, 12, 0, tzinfo=tokyo)
    got = hard_deadline(start, runtime_s=600, cost_usd=None, hourly_usd=None)
    assert got.tzinfo is UTC and got.utcoffset() == timedelta(0)
    assert got == start + timedelta(seconds=900)  # the same instant
    assert (got.hour, got.minute) == (3, 15)


# -- the start-up script: shape ------------------------------------------------------------

PWNED = "PWNED"  # a canary file in the test's folder that a hostile value tries to create


def plan(**changes: Any) -> StartupPlan:
    doc: dict[str, Any] = {
        "name": resource_name(HOME, 7),
        "deadline": START,
        "deadman": "shutdown",
        "host_private_key": KEYS.host_private,
        "host_public_key": KEYS.host_public,
        "client_public_key": KEYS.client_public,
        "ssh_user": "ubuntu",
        "comfyui_port": 8189,
        "image": "ghcr.io/example/comfyui:1.2",
        "api_url": "",
    }
    doc.update(changes)
    return StartupPlan(**doc)


def hostile(tmp: Path, deadman: str, mode: str) -> StartupPlan:
    """Every value the user can set, written to break out of its quotes."""
    canary = tmp / PWNED
    return plan(
        deadman=deadman,
        mode=mode,
        ssh_user=f"o'neil$(touch {canary})`touch {canary}`",
        image=f"comfy:1; touch {canary}",
        comfyui_command=f'python3 main.py --extra "a b" && touch {canary} $(touch {canary})',
        client_public_key=KEYS.client_public + f" it's $(touch {canary})",
        api_url=f"https://api.example/v0/?a='b'&c=$(touch {canary})`touch {canary}`",
    )


def sh_syntax_ok(text: str) -> None:
    proc = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, timeout=5)
    assert proc.returncode == 0, proc.stderr


def test_the_script_is_fenced_in_three_parts_in_order() -> None:
    script = startup_script(plan())
    assert script.startswith("#!/bin/sh\n# comfyvn-gui start-up script for ")
    starts = [script.index(f"# >>> comfyvn:{p}\n") for p in ("deadman", "ssh", "comfyui")]
    assert starts == sorted(starts)  # the dead-man switch first
    for part in ("deadman", "ssh", "comfyui"):
        assert script.count(f"# >>> comfyvn:{part}\n") == 1
        assert script.count(f"# <<< comfyvn:{part}\n") == 1
        assert script_part(script, part).strip()
    with pytest.raises(KeyError):
        script_part(script, "nothing")


def test_a_name_with_a_newline_stays_in_the_header_comment(tmp_path: Path) -> None:
    script = startup_script(plan(name=f"x\ntouch {tmp_path / PWNED}"))
    first, header, fence = script.splitlines()[:3]
    assert (first, fence) == ("#!/bin/sh", "# >>> comfyvn:deadman")
    assert header.startswith("# comfyvn-gui start-up script for ")


@pytest.mark.parametrize("deadman", ["shutdown", "runpod_pod", "vast"])
@pytest.mark.parametrize("mode", ["vm", "container"])
def test_every_script_parses_under_sh_even_with_hostile_values(
    deadman: str, mode: str, tmp_path: Path
) -> None:
    script = startup_script(hostile(tmp_path, deadman, mode))
    sh_syntax_ok(script)
    for part in ("deadman", "ssh", "comfyui"):
        sh_syntax_ok(script_part(script, part))
    # what the machine fakes read back: the host key from the heredoc, the client key line
    host, client = keys_of(script)
    assert host == KEYS.host_private.strip() + "\n"
    assert client == KEYS.client_public + f" it's $(touch {tmp_path / PWNED})"


@pytest.mark.parametrize("port", [0, -1, 65536, 100000])
def test_a_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ValueError, match="not a port"):
        startup_script(plan(comfyui_port=port))


@pytest.mark.parametrize("port", [1, 8188, 65535])
def test_a_port_in_range_is_taken(port: int) -> None:
    assert f"127.0.0.1:{port}:8188" in startup_script(plan(comfyui_port=port))


def test_a_host_key_holding_the_heredoc_marker_is_refused() -> None:
    key = KEYS.host_private.replace("-----END", "COMFYVN_HOST_KEY\n-----END")
    with pytest.raises(ValueError, match="end marker"):
        startup_script(plan(host_private_key=key))
    with pytest.raises(ValueError):
        startup_script(plan(host_private_key="x COMFYVN_HOST_KEY y"))


# -- running parts with stub commands ------------------------------------------------------

STUB = """#!{python}
# A stand-in that records its argv, the time and its environment, then answers what
# STUB_<NAME> (JSON: [[stdout, status], ...], one per call, the last repeated) says.
import json, os, sys, time
record = os.environ["COMFYVN_RECORD"]
name = os.path.basename(sys.argv[0])
n = len([f for f in os.listdir(record) if f.startswith(name + ".") and f.endswith(".json")])
doc = {{"argv": sys.argv[1:], "at": time.time(), "env": dict(os.environ)}}
with open(os.path.join(record, f"{{name}}.{{n}}.tmp"), "w") as fh:
    json.dump(doc, fh)
os.rename(os.path.join(record, f"{{name}}.{{n}}.tmp"), os.path.join(record, f"{{name}}.{{n}}.json"))
answers = json.loads(os.environ.get("STUB_" + name.upper(), "[]") or "[]")
out, status = answers[min(n, len(answers) - 1)] if answers else ("", 0)
if name == "sleep":  # (every pause short: the loops around it re-check the clock)
    time.sleep(min(float(sys.argv[1]), 0.2))
sys.stdout.write(out)
sys.exit(status)
"""


@dataclass
class Stubs:
    """A folder of recording stand-ins, first on PATH."""

    bin: Path
    record: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "COMFYVN_RECORD": str(self.record),
            "HOME": str(self.record.parent),
            "LC_ALL": "C",
            **extra,
        }

    def calls(self, name: str) -> list[dict[str, Any]]:
        files = sorted(self.record.glob(f"{name}.*.json"), key=lambda p: int(p.name.split(".")[-2]))
        return [json.loads(p.read_text()) for p in files]

    def argvs(self, name: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls(name)]


def make_stubs(tmp: Path, *names: str) -> Stubs:
    stubs = Stubs(tmp / "bin", tmp / "record")
    stubs.bin.mkdir()
    stubs.record.mkdir()
    for name in names:
        path = stubs.bin / name
        path.write_text(STUB.format(python=sys.executable))
        path.chmod(0o755)
    return stubs


@contextlib.contextmanager
def running(text: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``sh -c text`` in a session of its own; everything it left running ends after."""
    proc = subprocess.Popen(
        ["sh", "-c", text],
        env=env,
        cwd=cwd,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=5)


def run_sh(text: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["sh", "-c", text], env=env, cwd=cwd, capture_output=True, text=True, timeout=10
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def wait_until(what: Any, timeout: float) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.02)


# -- the comfyui part ------------------------------------------------------------------------


def test_the_vm_part_starts_the_image_with_exactly_its_values(tmp_path: Path) -> None:
    p = hostile(tmp_path, "shutdown", "vm")
    stubs = make_stubs(tmp_path, "docker")
    part = script_part(startup_script(p), "comfyui")
    run_sh(part, stubs.env(), tmp_path)
    assert stubs.argvs("docker") == [
        [
            "run",
            "-d",
            "--name",
            p.name,
            "--restart",
            "no",
            "--gpus",
            "all",
            "-p",
            "127.0.0.1:8189:8188",  # published on the machine's loopback only
            p.image,
        ]
    ]
    assert not (tmp_path / PWNED).exists()


def test_a_hostile_name_is_one_argument_too(tmp_path: Path) -> None:
    name = f"n'a$(touch {tmp_path / PWNED}); touch {tmp_path / PWNED}"
    stubs = make_stubs(tmp_path, "docker")
    run_sh(script_part(startup_script(plan(name=name)), "comfyui"), stubs.env(), tmp_path)
    [argv] = stubs.argvs("docker")
    assert argv[argv.index("--name") + 1] == name
    assert not (tmp_path / PWNED).exists()


def test_the_container_part_runs_the_command_with_exactly_its_words(tmp_path: Path) -> None:
    p = hostile(tmp_path, "runpod_pod", "container")
    stubs = make_stubs(tmp_path, "nohup")
    part = script_part(startup_script(p), "comfyui")
    assert part.count(">/var/log/comfyui.log") == 1  # (moved into the test's folder)
    part = part.replace(">/var/log/comfyui.log", f">{tmp_path / 'comfyui.log'}")
    run_sh(part + "\nwait\n", stubs.env(), tmp_path)
    canary = str(tmp_path / PWNED)
    assert stubs.argvs("nohup") == [
        # shlex's words of the option, each one argument (`&&` and `$(` are just words)
        [
            *("python3", "main.py", "--extra", "a b", "&&", "touch", canary),
            *("$(touch", f"{canary})", "--listen", "127.0.0.1", "--port", "8189"),
        ]
    ]
    assert not (tmp_path / PWNED).exists()


def test_a_container_without_a_command_starts_nothing(tmp_path: Path) -> None:
    part = script_part(startup_script(plan(mode="container", comfyui_command="")), "comfyui")
    assert part.strip().startswith("true")
    stubs = make_stubs(tmp_path, "nohup", "docker")
    run_sh(part, stubs.env(), tmp_path)
    assert stubs.argvs("nohup") == [] and stubs.argvs("docker") == []


# -- the ssh part ------------------------------------------------------------------------------

# Absolute paths of the ssh part and where a test moves them (the real ones are never touched).
SYSTEM_PATHS = {
    "/usr/sbin/sshd": "bin/sshd",
    "/etc/ssh": "fake-etc-ssh",
    "/run/sshd": "fake-run-sshd",
    "comfyvn_home=/root": "comfyvn_home={root}/fake-root-home",
}


def sandboxed_ssh_part(script: str, root: Path) -> str:
    part = script_part(script, "ssh")
    for real, fake in SYSTEM_PATHS.items():
        target = fake.format(root=root) if "{root}" in fake else f"{root}/{fake}"
        part = part.replace(real, target)
    for real in ("/etc/", "/run/", "/usr/", "=/root", "/var/"):
        assert real not in part.replace(str(root), ""), f"{real} left in the ssh part"
    return part


@pytest.mark.parametrize("mode", ["vm", "container"])
def test_the_ssh_part_installs_exactly_the_keys_and_user_it_was_given(
    mode: str, tmp_path: Path
) -> None:
    p = hostile(tmp_path, "shutdown", mode)
    home = tmp_path / "user-home"
    etc = tmp_path / "fake-etc-ssh"
    stubs = make_stubs(tmp_path, "getent", "chown", "pkill", "systemctl", "service", "sshd")
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAAold earlier\n")
    etc.mkdir()
    (etc / "ssh_host_rsa_key").write_text("the image's own key")
    (etc / "ssh_host_rsa_key.pub").write_text("the image's own key")
    part = sandboxed_ssh_part(startup_script(p), tmp_path)
    passwd = f"x:x:1000:1000::{home}:/bin/sh\n"
    run_sh(part, stubs.env(STUB_GETENT=json.dumps([[passwd, 0]])), tmp_path)

    assert stubs.argvs("getent") == [["passwd", p.ssh_user]]
    assert stubs.argvs("chown") == [["-R", p.ssh_user, f"{home}/.ssh"]]
    host_key = etc / "comfyvn_host_ed25519_key"
    assert host_key.read_text() == KEYS.host_private.strip() + "\n"
    assert (etc / "comfyvn_host_ed25519_key.pub").read_text() == KEYS.host_public + "\n"
    authorized = (home / ".ssh" / "authorized_keys").read_text()
    assert authorized == "ssh-ed25519 AAAAold earlier\n" + p.client_public_key + "\n"
    assert (home / ".ssh").stat().st_mode & 0o777 == 0o700
    assert (home / ".ssh" / "authorized_keys").stat().st_mode & 0o777 == 0o600
    assert host_key.stat().st_mode & 0o777 == 0o600  # (umask 077)
    if mode == "vm":  # the image's host keys replaced by the app's, then sshd restarted
        assert sorted(f.name for f in etc.iterdir()) == [
            "comfyvn_host_ed25519_key",
            "comfyvn_host_ed25519_key.pub",
            "ssh_host_ed25519_key",
            "ssh_host_ed25519_key.pub",
        ]
        assert (etc / "ssh_host_ed25519_key").read_text() == host_key.read_text()
        assert stubs.argvs("systemctl") == [["restart", "ssh"]]
        assert stubs.argvs("service") == [] and stubs.argvs("sshd") == []
    else:  # sshd started with the app's host key only, password logins off
        assert stubs.argvs("pkill") == [["-x", "sshd"]]
        assert stubs.argvs("sshd") == [
            ["-h", f"{etc}/comfyvn_host_ed25519_key", "-o", "PasswordAuthentication=no"]
        ]
        assert (tmp_path / "fake-run-sshd").is_dir()
        assert stubs.argvs("systemctl") == [] and (etc / "ssh_host_rsa_key").exists()
    assert not (tmp_path / PWNED).exists()


def test_the_ssh_part_falls_back_to_root_and_to_service(tmp_path: Path) -> None:
    stubs = make_stubs(tmp_path, "getent", "chown", "systemctl", "service")
    part = sandboxed_ssh_part(startup_script(plan(ssh_user="nobody-here")), tmp_path)
    env = stubs.env(STUB_GETENT=json.dumps([["", 2]]), STUB_SYSTEMCTL=json.dumps([["", 1]]))
    run_sh(part, env, tmp_path)
    root_home = tmp_path / "fake-root-home"  # (the user is unknown: root's home)
    assert (root_home / ".ssh" / "authorized_keys").read_text() == KEYS.client_public + "\n"
    assert stubs.argvs("systemctl") == [["restart", "ssh"], ["restart", "sshd"]]
    assert stubs.argvs("service") == [["ssh", "restart"]]


def test_a_host_key_body_is_written_verbatim(tmp_path: Path) -> None:
    """The heredoc is quoted: nothing in the key text is expanded."""
    body = f"line $(touch {tmp_path / PWNED})\n`touch {tmp_path / PWNED}` $HOME \\n 'x' \"y\""
    stubs = make_stubs(tmp_path, "getent", "chown", "systemctl")
    part = sandboxed_ssh_part(startup_script(plan(host_private_key=body)), tmp_path)
    run_sh(part, stubs.env(STUB_GETENT=json.dumps([["", 2]])), tmp_path)
    assert (tmp_path / "fake-etc-ssh" / "comfyvn_host_ed25519_key").read_text() == body + "\n"
    assert not (tmp_path / PWNED).exists()


# -- the dead-man switch ---------------------------------------------------------------------


def soon() -> datetime:
    """A deadline 2 s (or a little more) ahead, on a whole second: exactly the script's
    ``comfyvn_deadline``."""
    return datetime.fromtimestamp(math.ceil(time.time()) + 2, UTC)


def fires_at_the_deadline(stubs: Stubs, command: str, deadline: datetime) -> float:
    """Waits until just before ``deadline`` proving ``command`` was not run, then until it
    was; the time of its first call."""
    epoch = deadline.timestamp()
    while time.time() < epoch - 0.15:
        assert stubs.calls(command) == [], "the dead-man switch fired before the deadline"
        time.sleep(0.05)
    assert wait_until(lambda: stubs.calls(command), 2.5), "the dead-man switch never fired"
    first: float = stubs.calls(command)[0]["at"]
    assert first >= epoch
    return first


def test_the_vm_switch_shuts_down_at_the_deadline(tmp_path: Path) -> None:
    deadline = soon()
    stubs = make_stubs(tmp_path, "shutdown", "poweroff", "sleep")
    part = script_part(startup_script(plan(deadline=deadline)), "deadman")
    assert f"comfyvn_deadline={int(deadline.timestamp())} " in part
    with running(part, stubs.env(), tmp_path) as proc:
        assert proc.wait(3) == 0  # the part puts the switch in the background and returns
        fires_at_the_deadline(stubs, "shutdown", deadline)
        time.sleep(0.3)
        assert stubs.argvs("shutdown") == [["-h", "now"]]
        assert stubs.argvs("poweroff") == []  # shutdown worked: no fallback


def test_a_vm_switch_past_its_deadline_fires_at_once_and_falls_back_to_poweroff(
    tmp_path: Path,
) -> None:
    deadline = datetime.now(UTC) - timedelta(minutes=5)
    stubs = make_stubs(tmp_path, "shutdown", "poweroff", "sleep")
    part = script_part(startup_script(plan(deadline=deadline)), "deadman")
    env = stubs.env(STUB_SHUTDOWN=json.dumps([["", 1]]))
    with running(part, env, tmp_path):
        assert wait_until(lambda: stubs.calls("poweroff"), 3)
        assert stubs.argvs("shutdown") == [["-h", "now"]] and stubs.argvs("poweroff") == [[]]
        assert stubs.argvs("sleep") == []  # (no wait at all)


def test_a_pod_terminates_itself_with_graphql_variables_and_retries_on_errors(
    tmp_path: Path,
) -> None:
    deadline = soon()
    canary = tmp_path / PWNED
    url = f"https://api.runpod.example/graphql?x='y'&z=$(touch {canary})"
    stubs = make_stubs(tmp_path, "curl", "sleep")
    part = script_part(
        startup_script(plan(deadline=deadline, deadman="runpod_pod", api_url=url)), "deadman"
    )
    answers = [
        ["", 22],  # HTTP failure (curl -f)
        ['{"errors":[{"message":"try later"}],"data":null}', 0],  # GraphQL's failure
        ['{"data":{"podTerminate":null}}', 0],
    ]
    env = stubs.env(
        RUNPOD_API_KEY="rpa_POD'key$(x)",
        RUNPOD_POD_ID="pod0123456789ab",
        STUB_CURL=json.dumps(answers),
    )
    with running(part, env, tmp_path):
        fires_at_the_deadline(stubs, "curl", deadline)
        assert wait_until(lambda: len(stubs.calls("curl")) >= 3, 3)
        time.sleep(0.3)
        calls = stubs.calls("curl")
    assert len(calls) == 3, "it went on after the pod was terminated"  # then stopped
    for call in calls:
        argv = call["argv"]
        assert argv[-1] == url  # the URL exactly (quoted)
        assert argv[argv.index("-X") + 1] == "POST"
        headers = [argv[i + 1] for i, a in enumerate(argv) if a == "-H"]
        assert headers == [
            "Authorization: Bearer rpa_POD'key$(x)",
            "Content-Type: application/json",
        ]
        body = json.loads(argv[argv.index("--data") + 1])
        assert body["variables"] == {"input": {"podId": "pod0123456789ab"}}
        assert "podTerminate(input: $input)" in body["query"]  # (a variable, not a literal)
        assert "mutation" in body["query"] and "PodTerminateInput!" in body["query"]
    # the pause between tries is a minute (here cut short by the stub)
    pauses = [a for a in stubs.argvs("sleep") if a == ["60"]]
    assert len(pauses) == 2
    assert not canary.exists()


def test_a_vast_instance_destroys_itself_and_retries_on_failure(tmp_path: Path) -> None:
    deadline = soon()
    api = "https://console.vast.example/api/v0/"  # (a trailing slash: one slash kept)
    stubs = make_stubs(tmp_path, "curl", "sleep")
    part = script_part(
        startup_script(plan(deadline=deadline, deadman="vast", api_url=api)), "deadman"
    )
    env = stubs.env(
        CONTAINER_API_KEY="instkey-0123",
        CONTAINER_ID="4242",
        STUB_CURL=json.dumps([["", 7], ["", 22], ['{"success": true}', 0]]),
    )
    with running(part, env, tmp_path):
        fires_at_the_deadline(stubs, "curl", deadline)
        assert wait_until(lambda: len(stubs.calls("curl")) >= 3, 3)
        time.sleep(0.3)
        argvs = stubs.argvs("curl")
    assert len(argvs) == 3  # two failures, then it stopped after the success
    for argv in argvs:
        assert argv[-1] == "https://console.vast.example/api/v0/instances/4242/"
        assert argv[argv.index("-X") + 1] == "DELETE"
        assert argv[argv.index("-H") + 1] == "Authorization: Bearer instkey-0123"
    assert [a for a in stubs.argvs("sleep") if a == ["60"]] == [["60"], ["60"]]


# -- the bill of a dispatched job's record (core.dispatch.job_bill: the driver's and the window's)


def test_a_job_bill_follows_the_machine_from_launch_to_release() -> None:
    from comfyvn_gui.core.dispatch import billed_seconds, job_bill

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    price = {"hourly_usd": 1.2, "increment_minutes": 1, "minimum_minutes": 1}
    machine = {
        "started_at": "2026-12-04T11:00:00+00:00",
        "target": "machine",
        "machine": {
            "launched_at": "2026-12-04T11:30:00.000+00:00",
            "released_at": "2026-12-04T11:40:00.500+00:00",
        },
        "price": price,
    }
    assert billed_seconds(machine, now) == 600.5  # launch to release, not the driver's start
    assert job_bill(machine, now) == (11.0, 0.22)  # 11 started minutes at $1.20/h
    in_flight = {**machine, "machine": {"launched_at": "2026-12-04T11:55:00+00:00"}}
    assert billed_seconds(in_flight, now) == 300.0  # still rented: until now
    none_rented = {**machine, "machine": {}}
    assert job_bill(none_rented, now) == (0.0, 0.0)  # a machine provider that rented nothing
    serverless = {"started_at": "2026-12-04T11:00:00+00:00", "billed_s": 42.0, "price": price}
    assert billed_seconds(serverless, now) == 42.0  # the requests' run time, not the wall clock
    own = {"started_at": "2026-12-04T11:59:00+00:00", "price": price}
    assert billed_seconds(own, now) == 60.0
    assert job_bill({"price": price}, now) == (0.0, 0.0)  # never started: nothing billed
