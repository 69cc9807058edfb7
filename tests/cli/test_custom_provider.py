"""``comfyvn-gui providers`` with the custom ComfyUI endpoint template: create and register one
(secrets from a config file or stdin, never argv), its terms shown back, bad terms refused in
one line with nothing changed, export and import, and a validation against the ComfyUI fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import cli, jcli
from tests.conftest import keyring_entries
from tests.fakes.comfyui import running_comfyui

pytestmark = pytest.mark.usefixtures("secret_service")

TOKEN = "CANARY-custom-token-0042"
CONFIG = {
    "endpoint": "https://comfy.example.net",
    "api_token": TOKEN,
    "hourly_usd": 0.35,
    "zones": "eu, uk",
    "vram_gb": "24",
    "gpu_name": "RTX 4090",
    "billing_increment_minutes": "60",
    "billing_minimum_minutes": "60",
}


def home_keyring(app_home: Path) -> dict[tuple[str, str], str]:
    """This home's keyring entries (none before the home has an id)."""
    path = app_home / "config" / "home.json"
    if not path.exists():
        return {}
    return keyring_entries(f"comfyvn-gui/{json.loads(path.read_text())['home_id']}")


def registry(app_home: Path) -> str:
    path = app_home / "config" / "providers.json"
    return path.read_text("utf-8") if path.exists() else ""


def test_create_from_a_config_file_keeps_the_token_in_the_keyring(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, app_home: Path
) -> None:
    f = tmp_path / "box.json"
    f.write_text(json.dumps(CONFIG))
    code, out, err = cli(
        capsys, "providers", "create", "custom", "--id", "box", "--config-file", str(f)
    )
    assert code == 0, err
    assert "created box (api_token stored in the OS keyring)" in out
    entry = jcli(capsys, "providers", "show", "box")
    assert entry["template_id"] == "custom" and entry["secrets_set"] == ["api_token"]
    assert entry["config"] == {
        "endpoint": "https://comfy.example.net",
        "hourly_usd": "0.35",
        "zones": "eu, uk",
        "vram_gb": "24",
        "gpu_name": "RTX 4090",
        "billing_increment_minutes": "60",
        "billing_minimum_minutes": "60",
    }
    code, out, _ = cli(capsys, "providers", "show", "box")
    assert (
        "cost:      $0.35/hr (the price you stated for it; billed per 60 min, minimum 60 min)"
        in out
    )
    assert "zones:     eu, uk" in out
    assert "api_token: stored in the OS keyring" in out
    code, out, _ = cli(capsys, "providers", "list")
    assert "box" in out and "not validated" in out
    assert TOKEN not in registry(app_home) and TOKEN not in out
    mine = home_keyring(app_home)
    assert [v for (_, user), v in mine.items() if user == "box/api_token"] == [TOKEN]


def test_register_from_stdin_keeps_meta_and_takes_a_zone_list(
    capsys: pytest.CaptureFixture[str], app_home: Path
) -> None:
    payload: dict[str, Any] = {
        "id": "friend",
        "template_id": "custom",
        "name": "Friend's box",
        "config": {"endpoint": "http://192.168.1.20:8188", "hourly_usd": 0, "zones": ["on_prem"]},
        "meta": {"notes": "in the garage", "owner": {"name": "Sam", "rack": 2}},
    }
    entry = jcli(capsys, "providers", "register", "--config-file", "-", stdin=json.dumps(payload))
    assert entry["config"]["zones"] == "on_prem" and entry["config"]["hourly_usd"] == "0"
    assert entry["meta"] == payload["meta"]  # unknown meta keys are kept, as for every template
    update = {"id": "friend", "secrets": {"api_token": TOKEN}, "meta": {"notes": None}}
    entry = jcli(capsys, "providers", "register", "--config-file", "-", stdin=json.dumps(update))
    assert entry["secrets_set"] == ["api_token"]
    assert entry["meta"] == {"owner": {"name": "Sam", "rack": 2}}
    assert TOKEN not in registry(app_home)
    assert {p["id"] for p in jcli(capsys, "providers", "list")} == {"local", "friend"}


BAD = [
    ({"hourly_usd": -1}, "config.hourly_usd: Price per hour (USD) must be 0 or more"),
    ({"hourly_usd": "cheap"}, "config.hourly_usd: Price per hour (USD) must be a number"),
    ({"vram_gb": 0}, "config.vram_gb: GPU VRAM (GB) must be more than 0"),
    ({"zones": "eu, mars"}, "config.zones: Residency zones: 'mars' is not one of: us, ca,"),
    ({"zones": [1, 2]}, 'config.zones must be text or a list of text (e.g. "eu, us"), got list'),
    ({"billing_increment_minutes": 0}, "config.billing_increment_minutes: Billed per (minutes) "),
    ({"endpoint": "comfy.example.net"}, "config.endpoint: ComfyUI address does not have the"),
    ({"price": 1}, "config.price is not a setting of Custom ComfyUI endpoint"),
]


@pytest.mark.parametrize(("change", "expect"), BAD, ids=[next(iter(c)) for c, _ in BAD])
def test_bad_terms_give_one_line_and_change_nothing(
    capsys: pytest.CaptureFixture[str], app_home: Path, change: dict[str, Any], expect: str
) -> None:
    good = {"endpoint": "https://comfy.example.net", "hourly_usd": "0.2", "zones": "eu"}
    jcli(capsys, "providers", "create", "custom", "--id", "box", "--config-file", "-",
         stdin=json.dumps(good))  # fmt: skip
    before = registry(app_home)
    for args, stdin in (
        (
            ("providers", "create", "custom", "--id", "box2", "--config-file", "-"),
            {**good, "api_token": TOKEN, **change},
        ),
        (("providers", "register", "--config-file", "-"), {"id": "box", "config": change}),
    ):
        code, out, err = cli(capsys, *args, stdin=json.dumps(stdin))
        assert code == 2, (args, out)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("comfyvn-gui: "), err
        assert expect in lines[0], lines[0]
        assert registry(app_home) == before
    assert home_keyring(app_home) == {}  # the token given with the bad terms was not stored


def test_a_secret_on_argv_is_not_a_thing(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "providers", "create", "custom", "--api-token", TOKEN)
    assert code == 2 and "unrecognized arguments" in err


def test_export_and_import_round_trip_a_custom_provider(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "box.json"
    f.write_text(json.dumps(CONFIG))
    jcli(capsys, "providers", "create", "custom", "--id", "box", "--config-file", str(f))
    out = tmp_path / "export.json"
    code, _, err = cli(capsys, "providers", "export", "--include-secrets", "-o", str(out))
    assert code == 0, err
    doc = json.loads(out.read_text())
    [box] = [p for p in doc["providers"] if p["id"] == "box"]
    assert box["secrets"] == {"api_token": TOKEN} and box["config"]["zones"] == "eu, uk"
    assert cli(capsys, "providers", "remove", "box")[0] == 0
    plan = jcli(capsys, "providers", "import", str(out))
    assert plan["add"] == ["box"]
    again = jcli(capsys, "providers", "show", "box")
    assert again["config"] == {k: str(v) for k, v in CONFIG.items() if k != "api_token"}
    assert again["secrets_set"] == ["api_token"] and again["active"] is False


def test_validate_a_custom_provider_against_comfyui(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_comfyui(token=TOKEN) as server:
        config = {**CONFIG, "endpoint": server.url}
        jcli(capsys, "providers", "create", "custom", "--id", "box", "--config-file", "-",
             stdin=json.dumps(config))  # fmt: skip
        code, out, err = cli(capsys, "providers", "validate", "box")
        assert code == 0, out + err
        assert "ComfyUI" in out and "RTX 4090" in out
        wrong = {"id": "box", "secrets": {"api_token": "wrong-token-123"}}
        jcli(capsys, "providers", "register", "--config-file", "-", stdin=json.dumps(wrong))
        code, out, _ = cli(capsys, "providers", "validate", "box")
    assert code == 1
    assert "invalid_credentials" in out and "api_token" in out
