"""``comfyvn-gui`` as a user and a script drive it: tables, --json, exit codes, no leaks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.__main__ import main

pytestmark = pytest.mark.usefixtures("secret_service")

CANARIES: dict[str, dict[str, str]] = {
    "runpod": {"api_key": "CANARY-runpod-0000000001", "webhook_secret": "CANARY-webhook-00000001"},
    "vast": {"api_key": "CANARY-vast-000000000001"},
    "lambda": {"api_key": "CANARY-lambda-0000000001"},
    "aws": {
        "access_key": "AKIA" + "CANARY0AWS000001",
        "secret_key": "CANARYawsSecret".ljust(40, "0"),
        "region": "us-east-1",
    },
    "azure": {
        "client_secret": "CANARY-azure-secret-0001",
        "tenant_id": "00000000-0000-4000-8000-000000000001",
        "client_id": "00000000-0000-4000-8000-000000000002",
        "subscription_id": "00000000-0000-4000-8000-000000000003",
    },
    "coreweave": {"api_key": "CANARY-coreweave-000001", "organization_id": "acme"},
    "gcp": {
        "service_account_json": json.dumps(
            {
                "type": "service_account",
                "project_id": "my-vn-project",
                "private_key": "-----BEGIN PRIVATE KEY-----\nCANARY-gcp-private-key\n"
                "-----END PRIVATE KEY-----\n",
                "client_email": "vn@my-vn-project.iam.gserviceaccount.com",
            }
        ),
        "project_id": "my-vn-project",
    },
    "paperspace": {"api_key": "CANARY-paperspace-00001", "project": "vn-cache"},
    "lan": {"api_token": "CANARY-lan-token-000001", "endpoint": "https://nas.local:2376"},
    "ssh": {
        "key_passphrase": "CANARY-ssh-pass-0001",
        "hostname": "render.example.org:2222",
        "username": "vn",
        "ssh_key_path": "/home/vn/.ssh/id_ed25519",
        "nfs_mount": "/mnt/vn",
    },
    "custom": {
        "api_token": "CANARY-custom-token-001",
        "endpoint": "https://comfy.example.net",
        "hourly_usd": "0.5",
        "zones": "eu",
    },
}


def cli(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str = "",
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:
    import io

    mp = monkeypatch or pytest.MonkeyPatch()
    mp.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        if monkeypatch is None:
            mp.undo()
    out, err = capsys.readouterr()
    return code, out, err


def jcli(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> Any:
    code, out, err = cli(capsys, *args, "--json", stdin=stdin)
    assert code == 0, err
    return json.loads(out)


def test_version_needs_no_qt_and_no_keyring() -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom comfyvn_gui.__main__ import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit as e:\n    print(e.code)\n"
            "print('qt' if 'PySide6' in sys.modules else 'no-qt')\n"
            "print('keyring' if 'keyring' in sys.modules else 'no-keyring')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.stdout.split() == ["comfyvn-gui", "0.1.0", "0", "no-qt", "no-keyring"], res.stderr


def test_templates_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "providers", "templates")
    assert code == 0
    for tid in (
        "runpod",
        "vast",
        "lambda",
        "aws",
        "azure",
        "coreweave",
        "gcp",
        "paperspace",
        "lan",
        "ssh",
        "local",
        "custom",
    ):
        assert f"\n{tid} " in out
    assert "~$0.46/hr" in out and "marketplace" in out
    data = jcli(capsys, "providers", "templates")
    assert len(data) == 12 and {"auth_fields", "endpoints", "billing"} <= set(data[0])


def test_create_list_show_from_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys,
        "providers",
        "create",
        "runpod",
        "--id",
        "runpod-demo",
        "--name",
        "RunPod Demo",
        "--config-file",
        "-",
        stdin=json.dumps({"api_key": "CANARY-runpod-0000000001"}),
    )
    assert code == 0, err
    assert "created runpod-demo (api_key stored in the OS keyring)" in out
    listed = jcli(capsys, "providers", "list")
    assert [p["id"] for p in listed] == ["local", "runpod-demo"]
    assert listed[1]["secrets_set"] == ["api_key"]
    code, out, _ = cli(capsys, "providers", "list")
    assert "runpod-demo" in out and "not validated" in out
    code, out, _ = cli(capsys, "providers", "show", "runpod-demo")
    assert "api_key:" in out and "stored in the OS keyring" in out
    assert "CANARY" not in out


def test_show_gives_the_price_the_advisor_uses_for_the_configured_machine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Lambda provider set to the H100 is $3.29/hr, as the advisor prices its jobs — not the
    template's A100 headline; your own price wins, and says so."""
    key = json.dumps({"api_key": "CANARY-lambda-0000000001", "instance_type": "gpu_1x_h100_pcie"})
    code, _, err = cli(capsys, "providers", "create", "lambda", "--config-file", "-", stdin=key)
    assert code == 0, err
    code, out, _ = cli(capsys, "providers", "show", "lambda")
    assert "cost:      $3.29/hr (catalog price as of " in out
    assert ", gpu_1x_h100_pcie; billed per 1 min" in out
    entry = {"id": "lambda", "template_id": "lambda", "meta": {"hourly_usd": 2.5}}
    code, _, err = cli(
        capsys, "providers", "register", "--config-file", "-", stdin=json.dumps(entry)
    )
    assert code == 0, err
    code, out, _ = cli(capsys, "providers", "show", "lambda")
    assert "cost:      $2.50/hr (your price (meta.hourly_usd)" in out


def test_create_takes_a_partial_entry_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "p.json"
    f.write_text(
        json.dumps(
            {
                "config": {"region": "us-east-1"},
                "secrets": {"access_key": "AKIA" + "ABCDEFGHIJKLMNOP"},
                "meta": {"security_group": "sg-1"},
            }
        )
    )
    entry = jcli(capsys, "providers", "create", "aws", "--config-file", str(f))
    assert entry["config"] == {"region": "us-east-1"}
    assert entry["secrets_set"] == ["access_key"] and entry["meta"] == {"security_group": "sg-1"}


@pytest.mark.parametrize(
    ("args", "stdin", "expect"),
    [
        (("providers", "create", "nosuch"), "", "unknown template 'nosuch'"),
        (("providers", "show", "ghost"), "", "no provider 'ghost'"),
        (("providers", "remove", "local"), "", "cannot be removed"),
        (("providers", "create", "runpod", "--config-file", "-"), "{oops", "not valid JSON"),
        (
            ("providers", "create", "runpod", "--config-file", "/nonexistent.json"),
            "",
            "cannot read config file",
        ),
        (("providers", "create", "runpod", "--id", "Bad Id!"), "", "not a valid id"),
        (
            ("providers", "import", "-"),
            '[{"id": "../x", "template_id": "runpod"}]',
            "not a valid id",
        ),
        (("settings", "set", "health.interval_s", "soon"), "", "health.interval_s"),
        (("settings", "get", "no.such.key"), "", "no.such.key"),
        (  # the field's label reads in full (it is not masked as if it were a secret)
            ("providers", "create", "runpod", "--config-file", "-"),
            '{"api_key": "short"}',
            "config.api_key: API key does not have the expected form",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], stdin: str, expect: str
) -> None:
    code, _, err = cli(capsys, *args, stdin=stdin)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and lines[0].startswith("comfyvn-gui: ")
    assert "Traceback" not in err


def test_json_error_object(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "providers", "show", "ghost", "--json")
    assert code == 2
    assert json.loads(out)["error"]["code"] == "not_found"
    assert json.loads(out)["error"]["fields"] == ["id"]


def test_register_updates_and_null_clears(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "e.json"
    f.write_text(
        json.dumps(
            {"id": "va", "template_id": "vast", "config": {"api_key": "CANARY-vast-000000000001"}}
        )
    )
    assert jcli(capsys, "providers", "register", "--config-file", str(f))["secrets_set"] == [
        "api_key"
    ]
    f.write_text(json.dumps({"id": "va", "name": "Vast nodes"}))
    entry = jcli(capsys, "providers", "register", "--config-file", str(f))
    assert entry["name"] == "Vast nodes" and entry["secrets_set"] == ["api_key"]
    f.write_text(json.dumps({"id": "va", "secrets": {"api_key": None}}))
    assert jcli(capsys, "providers", "register", "--config-file", str(f))["secrets_set"] == []


def test_export_to_file_is_private_and_import_round_trips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli(
        capsys,
        "providers",
        "create",
        "lambda",
        "--config-file",
        "-",
        stdin=json.dumps({"api_key": "CANARY-lambda-0000000001"}),
    )
    out_file = tmp_path / "backup.json"
    code, _, err = cli(capsys, "providers", "export", "--include-secrets", "-o", str(out_file))
    assert code == 0 and "plain text" in err
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    assert "CANARY-lambda" in out_file.read_text()
    assert cli(capsys, "providers", "remove", "--all", "--yes")[0] == 0
    code, out, err = cli(capsys, "providers", "import", str(out_file))
    assert code == 0 and "imported 1 provider(s): lambda" in out
    code, out, _ = cli(capsys, "providers", "export")
    doc = json.loads(out)
    assert [p["id"] for p in doc["providers"]] == ["local", "lambda"]
    assert doc["providers"][1]["secrets_set"] == ["api_key"]
    assert "CANARY" not in out


def test_replacing_import_says_what_it_deletes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli(
        capsys,
        "providers",
        "create",
        "vast",
        "--id",
        "old-vast",
        "--config-file",
        "-",
        stdin=json.dumps({"api_key": "CANARY-vast-000000000001"}),
    )
    f = tmp_path / "new.json"
    f.write_text(json.dumps({"providers": [{"id": "new-lambda", "template_id": "lambda"}]}))
    plan = jcli(capsys, "providers", "import", str(f), "--replace", "--dry-run")
    assert plan["delete"] == ["old-vast"] and plan["delete_credentials"] == {
        "old-vast": ["api_key"]
    }
    assert [p["id"] for p in jcli(capsys, "providers", "list")] == ["local", "old-vast"]
    code, out, err = cli(capsys, "providers", "import", str(f), "--replace")
    assert code == 0
    assert "will delete providers: old-vast" in err
    assert "will delete stored credentials of old-vast: api_key" in err
    assert [p["id"] for p in jcli(capsys, "providers", "list")] == ["local", "new-lambda"]
    code, out, err = cli(capsys, "providers", "import", str(f), "--no-overwrite")
    assert code == 0 and "skipped new-lambda" in out


def test_settings_get_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert jcli(capsys, "settings", "get")["health.interval_s"] == 300
    code, out, _ = cli(capsys, "settings", "set", "health.interval_s", "600")
    assert code == 0 and "600" in out
    assert jcli(capsys, "settings", "get", "health.interval_s") == {"health.interval_s": 600}
    code, out, _ = cli(capsys, "settings", "get")
    assert "health.interval_s" in out and "600" in out


def test_a_workflow_template_setting_is_read_from_a_file_checked_and_shown_short(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shipped = Path(__file__).resolve().parents[2] / "resources" / "workflows" / "cg_remix.json"
    graph = json.loads(shipped.read_text("utf-8"))
    graph["6"]["inputs"]["steps"] = 40
    mine = tmp_path / "my remix.json"
    mine.write_text(json.dumps(graph), "utf-8")
    code, out, err = cli(capsys, "settings", "set", "workflows.cg_remix", str(mine))
    assert code == 0, err
    assert out.startswith('workflows.cg_remix = {"nodes": 8, "sha256": ')
    stored = jcli(capsys, "settings", "get", "workflows.cg_remix")["workflows.cg_remix"]
    assert stored["6"]["inputs"]["steps"] == 40
    code, table, _ = cli(capsys, "settings", "get")
    row = next(line for line in table.splitlines() if line.startswith("workflows.cg_remix"))
    assert '"nodes": 8' in row and "CLIPTextEncode" not in row  # a summary, not the graph

    # a graph without the placeholder its kind needs, a UI export, a missing file: exit 2, one
    # line saying what to fix, and the stored template unchanged
    ui = tmp_path / "ui.json"
    ui.write_text('{"nodes": [], "links": []}', "utf-8")
    plain = tmp_path / "plain.json"
    example = shipped.parents[1] / "examples" / "workflows" / "sdxl_txt2img.json"
    plain.write_text(example.read_text("utf-8"), "utf-8")
    for path, message in (
        (plain, 'must hold "{{input_image}}"'),
        (ui, "Save (API Format)"),
        (tmp_path / "missing.json", "cannot read the file for workflows.cg_remix"),
    ):
        code, _, err = cli(capsys, "settings", "set", "workflows.cg_remix", str(path))
        assert code == 2 and message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    again = jcli(capsys, "settings", "get", "workflows.cg_remix")["workflows.cg_remix"]
    assert again == stored
    code, out, _ = cli(capsys, "settings", "unset", "workflows.cg_remix")
    assert code == 0 and "reset to null" in out
    code, _, err = cli(capsys, "settings", "set", "workflows.comfyui_workflow", str(mine))
    assert code == 2 and "unknown setting" in err


def test_schemas_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "schemas"
    code, _, err = cli(capsys, "schemas", "--check", "--out", str(docs))
    assert code == 0, err


def test_no_secret_anywhere_on_disk_after_a_session(app_home: Path, tmp_path: Path) -> None:
    """Canary secrets for every template, a scripted session, then a scan of everything."""
    env = dict(os.environ)
    seen: list[str] = []

    def run(*args: str, stdin: str = "") -> str:
        res = subprocess.run(
            [sys.executable, "-m", "comfyvn_gui", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        seen.extend([res.stdout, res.stderr])
        return res.stdout

    for template, config in CANARIES.items():
        run("providers", "create", template, "--config-file", "-", stdin=json.dumps(config))
    run("providers", "list")
    run("providers", "list", "--json")
    for template in CANARIES:
        run("providers", "show", template)
    run(
        "providers",
        "register",
        "--config-file",
        "-",
        stdin=json.dumps({"id": "vast", "name": "Vast (renamed)"}),
    )
    run("providers", "remove", "coreweave")
    run("settings", "set", "health.interval_s", "120")
    export = run("providers", "export")
    run("providers", "export", "-o", str(app_home / "export.json"))
    run("providers", "import", str(app_home / "export.json"))
    assert json.loads(export)["providers"]

    secret_values = [
        v for cfg in CANARIES.values() for k, v in cfg.items() if "CANARY" in v or k == "secret_key"
    ]
    blobs = {"stdout/stderr": "\n".join(seen), "default export": export}
    files = [f for f in app_home.rglob("*") if f.is_file()]
    assert any(f.name == "compute_advisor.log" for f in files)
    for f in files:
        blobs[str(f)] = f.read_bytes().decode("utf-8", errors="replace")
    for where, text in blobs.items():
        assert "CANARY" not in text, f"a canary secret leaked into {where}"
        for value in secret_values:
            assert value not in text, f"a secret leaked into {where}"


def test_about_reports_the_keyring_backend(capsys: pytest.CaptureFixture[str]) -> None:
    info = jcli(capsys, "about")
    assert info["keyring_backend"] == "keyring.backends.SecretService.Keyring"
    assert info["keyring_problem"] is None
    assert info["config_dir"].endswith("home/config")


def test_about_without_a_keyring_says_what_to_do(app_home: Path) -> None:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    res = subprocess.run(
        [sys.executable, "-m", "comfyvn_gui", "about", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    info = json.loads(res.stdout)
    assert info["keyring_backend"] == "none"
    assert "Secret Service" in info["keyring_problem"]
    assert "Nothing was saved" not in info["keyring_problem"]  # (about saves nothing)


def test_registry_changes_are_logged_without_values(
    capsys: pytest.CaptureFixture[str], app_home: Path
) -> None:
    cli(
        capsys,
        "providers",
        "create",
        "runpod",
        "--id",
        "rp",
        "--config-file",
        "-",
        stdin=json.dumps({"api_key": "CANARY-runpod-0000000001"}),
    )
    cli(
        capsys,
        "providers",
        "register",
        "--config-file",
        "-",
        stdin=json.dumps({"id": "rp", "secrets": {"api_key": "CANARY-runpod-0000000002"}}),
    )
    cli(capsys, "providers", "remove", "rp")
    log = app_home / "logs" / "compute_advisor.log"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds == ["provider.created", "provider.updated", "provider.removed"]
    assert events[1]["secrets_changed"] == ["api_key"]
    assert "CANARY" not in log.read_text()


def test_create_prompts_in_a_terminal_and_never_echoes_secrets(app_home: Path) -> None:
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with a real terminal
        os.execvpe(
            sys.executable,
            [
                sys.executable,
                "-m",
                "comfyvn_gui",
                "providers",
                "create",
                "aws",
                "--id",
                "aws-typed",
            ],
            dict(os.environ),
        )
    output = b""

    def read_until(predicate: Any, timeout: float = 30) -> None:
        nonlocal output
        import time

        end = time.monotonic() + timeout
        while not predicate(output):
            assert time.monotonic() < end, output.decode(errors="replace")
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    break

    read_until(lambda o: o.count(b"(hidden): ") == 1)
    os.write(fd, b"AKIA" + b"CANARY0TYPED0001\n")
    read_until(lambda o: o.count(b"(hidden): ") == 2)
    os.write(fd, b"CANARYtypedSecretKey00000000000000000000\n")
    read_until(lambda o: b"Region" in o.split(b"(hidden): ")[-1] and o.endswith(b": "))
    os.write(fd, b"eu-central-1\n")
    read_until(lambda o: b"created aws-typed" in o)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"CANARY" not in output  # typed secrets are not echoed
    svc_entry = json.loads(
        subprocess.run(
            [sys.executable, "-m", "comfyvn_gui", "providers", "show", "aws-typed", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )
    assert svc_entry["secrets_set"] == ["access_key", "secret_key"]
    assert svc_entry["config"] == {"region": "eu-central-1"}
