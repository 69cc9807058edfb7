"""Bad files and bad input, as a hostile (or unlucky) user gives them, never crash a command.

Each case once failed: an entry from a newer version took every command down (exit 2 naming
neither the provider nor the file), deeply nested JSON was an "internal error", a registry of
random bytes was an internal error everywhere, duplicate ids were accepted (removing one deleted
the other's secret), ``NaN`` / ``Infinity`` / ``1e999`` were stored as null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.core.json_input import MAX_DEPTH
from comfyvn_gui.store.paths import resolve_home
from tests.cli.test_cli import cli
from tests.conftest import keyring_entries

pytestmark = pytest.mark.usefixtures("secret_service")

Capsys = pytest.CaptureFixture[str]
SUMMARY = resources_dir() / "examples" / "summaries" / "moonlit-academy.json"
REQUEST = {"workload": {"kind": "cg_super_res", "items": 4, "width": 2048, "height": 2048}}


def strict_json(text: str) -> Any:
    """JSON as a strict parser reads it: NaN / Infinity are errors, not numbers."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def cli_off_loop(capsys: Capsys, *args: str) -> tuple[int, str, str]:
    """:func:`cli` in a thread of its own: a command that runs checks calls asyncio.run, and a
    GUI test earlier in the session may have left qasync's loop running on this thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(cli, capsys, *args).result()


def registry_file() -> Path:
    return resolve_home().registry_file


def add_runpod(capsys: Capsys, pid: str = "rp", key: str = "rp-secret-0123456789") -> None:
    code, _, err = cli(
        capsys, "providers", "create", "runpod", "--id", pid, "--config-file", "-",
        "--no-prompt", stdin=json.dumps({"api_key": key}),
    )  # fmt: skip
    assert code == 0, err


def add_by_hand(entry: dict[str, Any]) -> bytes:
    """Append an entry to providers.json as a hand edit (or a newer version) would."""
    path = registry_file()
    data = json.loads(path.read_text())
    data["providers"].append(entry)
    path.write_text(json.dumps(data, indent=2))
    return path.read_bytes()


FUTURE = {"id": "future", "template_id": "nebula-cloud", "name": "Nebula (from v9)"}


# --------------------------------------------------------------------------- 1. unknown template


def test_an_entry_with_an_unknown_template_is_listed_as_broken_and_the_others_work(
    capsys: Capsys,
) -> None:
    add_runpod(capsys)
    add_by_hand(FUTURE)

    code, out, err = cli(capsys, "providers", "list")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("future "))
    assert "broken" in row
    assert any(line.startswith("rp ") and "runpod" in line for line in out.splitlines())
    why = next(line for line in out.splitlines() if line.startswith("provider 'future'"))
    # The reason names the provider, its template, the file, and the fix.
    assert "'nebula-cloud'" in why and str(registry_file()) in why
    assert "update comfyvn-gui" in why and "comfyvn-gui providers remove future" in why

    code, out, err = cli(capsys, "providers", "list", "--json")
    assert code == 0, err
    listed = {p["id"]: p for p in json.loads(out)}
    assert "nebula-cloud" in listed["future"]["problem"] and "problem" not in listed["rp"]

    code, out, err = cli(capsys, "providers", "show", "future")
    assert code == 0 and "update comfyvn-gui" in out, err


def test_the_advisor_skips_a_broken_entry_with_a_warning(capsys: Capsys, tmp_path: Path) -> None:
    add_runpod(capsys)
    add_by_hand(FUTURE)
    request = tmp_path / "request.json"
    request.write_text(json.dumps(REQUEST))

    code, out, err = cli(capsys, "advise", "--request", str(request), "--json")
    assert code == 0, err
    advice = strict_json(out)
    skipped = [w for w in advice["warnings"] if w["code"] == "provider_broken_skipped"]
    assert [w["provider"] for w in skipped] == ["future"]
    assert "nebula-cloud" in skipped[0]["message"]
    assert "future" not in {a["provider"] for a in advice["alternatives"]}

    code, out, err = cli(capsys, "jobs", "import-summary", str(SUMMARY), "--json")
    assert code == 0, err
    assert len(json.loads(out)) >= 3


def test_checking_a_broken_entry_says_why_and_it_stays_on_disk_until_removed(
    capsys: Capsys,
) -> None:
    add_runpod(capsys)
    add_by_hand(FUTURE)

    code, out, err = cli_off_loop(capsys, "providers", "validate", "future", "--json")
    assert code == 1 and out, err
    [result] = json.loads(out)
    assert (result["status"], result["fields"]) == ("misconfigured", ["template_id"])
    assert "nebula-cloud" in result["message"]
    kept = {p["id"]: p for p in json.loads(registry_file().read_text())["providers"]}
    assert kept["future"] == FUTURE  # as it was written: not rewritten, not "fixed"

    code, _, err = cli(capsys, "providers", "remove", "future", "--yes")
    assert code == 0, err
    ids = [p["id"] for p in json.loads(registry_file().read_text())["providers"]]
    assert ids == ["local", "rp"]


# --------------------------------------------------------------------------- 2. deep JSON


DEEP = "[" * 100_000 + "]" * 100_000
JUST_TOO_DEEP = json.dumps({"meta": {"x": json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)}})


@pytest.mark.parametrize("text", [DEEP, JUST_TOO_DEEP], ids=["100000 deep", "65 deep"])
@pytest.mark.parametrize(
    "argv",
    [
        ("providers", "create", "runpod", "--no-prompt", "--config-file"),
        ("providers", "register", "--config-file"),
        ("providers", "import", "--yes"),
        ("advise", "--request"),
        ("jobs", "import-summary"),
        ("jobs", "add"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_deeply_nested_json_is_bad_input_on_every_path(
    capsys: Capsys, tmp_path: Path, argv: tuple[str, ...], text: str
) -> None:
    path = tmp_path / "deep.json"
    path.write_text(text)
    code, _, err = cli(capsys, *argv, str(path))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "nested too deeply" in err, err
    assert "internal error" not in err and "Traceback" not in err
    assert not registry_file().exists() or "deep" not in registry_file().read_text()


# --------------------------------------------------------------------------- 3. random bytes


def test_a_registry_of_random_bytes_is_damaged_and_left_alone(capsys: Capsys) -> None:
    add_runpod(capsys)
    path = registry_file()
    junk = bytes(range(256)) * 4
    path.write_bytes(junk)
    for argv in (("providers", "list"), ("advise", "--request", "-"), ("providers", "validate")):
        code, _, err = cli(capsys, *argv, stdin=json.dumps(REQUEST))
        assert code == 1, (argv, err)
        [error] = [line for line in err.splitlines() if line.startswith("comfyvn-gui:")]
        assert "is damaged" in error and "not UTF-8" in error and "backups" in error, err
        assert "internal error" not in err and str(path) in error
        assert path.read_bytes() == junk


# --------------------------------------------------------------------------- 4. duplicate ids


def test_a_registry_with_a_duplicate_id_is_refused_naming_it(capsys: Capsys) -> None:
    add_runpod(capsys)
    service = f"comfyvn-gui/{resolve_home().home_id()}"
    before = {k: v for k, v in keyring_entries().items() if k[0] == service}
    assert (service, "rp/api_key") in before
    raw = add_by_hand({"id": "rp", "template_id": "runpod", "name": "Twin", "secrets_set": []})

    code, _, err = cli(capsys, "providers", "list")
    assert code == 1 and "'rp' is used twice" in err and "providers 2 and 3" in err, err
    code, _, err = cli(capsys, "providers", "remove", "rp", "--yes")
    assert code == 1 and "used twice" in err, err
    assert registry_file().read_bytes() == raw
    assert {k: v for k, v in keyring_entries().items() if k[0] == service} == before


# --------------------------------------------------------------------------- 5. non-finite numbers


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_everywhere(
    capsys: Capsys, tmp_path: Path, number: str
) -> None:
    add_runpod(capsys)
    before = registry_file().read_bytes()
    register = tmp_path / "register.json"
    register.write_text(
        '{"id": "rp", "meta": {"deep": {"price": NUMBER}}}'.replace("NUMBER", number)
    )
    code, _, err = cli(capsys, "providers", "register", "--config-file", str(register))
    assert code == 2 and "not a finite number" in err, err
    assert registry_file().read_bytes() == before

    request = tmp_path / "request.json"
    request.write_text(
        '{"workload": {"kind": "cg_super_res", "items": 1}, "local": {"gpus": [{"name": "X", '
        '"vram_total_gb": NUMBER, "vram_free_gb": 8}]}}'.replace("NUMBER", number)
    )
    code, _, err = cli(capsys, "advise", "--request", str(request))
    assert code == 2 and "not a finite number" in err, err


LONG_UPSCALE_CHAIN = {
    "1": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 1024, "height": 1024, "batch_size": 1},
    },
    **{
        str(i): {
            "class_type": "LatentUpscaleBy",
            "inputs": {"samples": [str(i - 1), 0], "upscale_method": "nearest", "scale_by": 16},
        }
        for i in range(2, 302)
    },
    "302": {
        "class_type": "KSampler",
        "inputs": {"latent_image": ["301", 0], "steps": 20, "seed": 1, "cfg": 7, "denoise": 1,
                   "sampler_name": "euler", "scheduler": "normal"},
    },
}  # fmt: skip


def test_a_long_upscale_chain_gives_finite_advice_as_strict_json(
    capsys: Capsys, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"workload": {"kind": "comfyui_workflow", "workflow": LONG_UPSCALE_CHAIN}})
    )
    code, out, err = cli(capsys, "advise", "--request", str(request), "--json")
    assert code == 0, err
    advice = strict_json(out)
    assert math.isfinite(advice["requirements"]["vram_gb"])
    assert math.isfinite(advice["requirements"]["gpu_hours"])


# --------------------------------------------------------------------------- 6. secrets in meta


@pytest.mark.parametrize(
    "meta", [{"deep": {"api_key": "sk-live-CANARY"}}, {"notes": [{"accessToken": "CANARY"}]}]
)
def test_a_credential_nested_in_meta_is_refused(capsys: Capsys, meta: dict[str, Any]) -> None:
    add_runpod(capsys)
    before = registry_file().read_bytes()
    code, _, err = cli(
        capsys, "providers", "register", "--config-file", "-",
        stdin=json.dumps({"id": "rp", "meta": meta}),
    )  # fmt: skip
    assert code == 2 and "looks like a credential" in err and "meta." in err, err
    assert registry_file().read_bytes() == before
    assert "CANARY" not in registry_file().read_text()
    code, out, _ = cli(capsys, "providers", "export")
    assert "CANARY" not in out


# --------------------------------------------------------------------------- 7. control characters


def test_control_characters_never_reach_the_terminal(capsys: Capsys, tmp_path: Path) -> None:
    add_runpod(capsys)
    code, _, err = cli(
        capsys, "providers", "register", "--config-file", "-",
        stdin=json.dumps({"id": "rp", "name": "Evil\x1b]0;pwned\x07\x1b[2J"}),
    )  # fmt: skip
    assert code == 2 and "control characters" in err, err
    assert "\x1b" not in err
    code, _, err = cli(capsys, "providers", "create", "runpod", "--id", "bad\x1bid", "--no-prompt")
    assert code == 2 and "\x1b" not in err, err

    # A summary (written by another tool) with an escape in its project name.
    summary = json.loads(SUMMARY.read_text())
    summary["project"]["name"] = "Moon\x1b[2J\u202elit"
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    code, _, err = cli(capsys, "jobs", "import-summary", str(path))
    assert code == 0, err
    code, out, err = cli(capsys, "jobs", "list")
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out
    assert "Moon\\x1b[2J\\u202elit" in out
    code, out, err = cli(capsys, "jobs", "list", "--json")
    assert "Moon\x1b[2J\u202elit" in {j["title"].split(" — ")[0] for j in json.loads(out)}


# --------------------------------------------------------------------------- 8, 9. addresses


@pytest.mark.parametrize(
    ("payload", "message", "field"),
    [
        ({"base_url": "https://api.example.com/" + "a" * 3000}, "at most 2048", "base_url"),
        ({"config": {"endpoints": {"graphql": "https://x.io/" + "g" * 3000}}}, "at most 2048",
         "graphql"),
        ({"base_url": "http://api.runpod.example/v2"}, "plain http://", "base_url"),
        ({"config": {"endpoints": {"graphql": "http://10.0.0.7/graphql"}}}, "plain http://",
         "graphql"),
    ],
)  # fmt: skip
def test_long_addresses_and_credentials_in_clear_are_refused(
    capsys: Capsys, payload: dict[str, Any], message: str, field: str
) -> None:
    add_runpod(capsys)
    before = registry_file().read_bytes()
    code, out, err = cli(
        capsys, "providers", "register", "--config-file", "-", "--json",
        stdin=json.dumps({"id": "rp", **payload}),
    )  # fmt: skip
    assert code == 2 and message in err, err
    assert json.loads(out)["error"]["fields"] == [field]
    assert registry_file().read_bytes() == before


def test_loopback_http_is_still_accepted_for_tests_and_tunnels(capsys: Capsys) -> None:
    add_runpod(capsys)
    for url in ("http://127.0.0.1:8000/v2", "http://localhost:9/v2", "http://[::1]:9/v2"):
        code, _, err = cli(
            capsys, "providers", "register", "--config-file", "-",
            stdin=json.dumps({"id": "rp", "base_url": url}),
        )  # fmt: skip
        assert code == 0, (url, err)


def test_a_hand_edited_http_address_is_refused_before_the_key_is_sent(capsys: Capsys) -> None:
    """The input rule is checked again before sending: a key never leaves in clear."""
    import socket

    add_runpod(capsys)
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    own = socket.gethostbyname(socket.gethostname())
    host = own if not own.startswith("127.") else "0.0.0.0"
    data = json.loads(registry_file().read_text())
    for p in data["providers"]:
        if p["id"] == "rp":
            p["base_url"] = f"http://{host}:{port}/v2"
            p["config"] = {
                **p["config"],
                "endpoint_id": "abc123",
                "endpoints": {"graphql": f"http://{host}:{port}/graphql"},
            }
    registry_file().write_text(json.dumps(data))
    try:
        _, out, _ = cli_off_loop(capsys, "providers", "validate", "rp", "--json")
        [result] = json.loads(out)
        assert result["status"] == "misconfigured", result
        assert "plain http://" in result["message"] and result["fields"], result
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


# --------------------------------------------------------------------------- 11. the seed's inputs


def test_an_asset_type_alone_is_enough_to_ask_for_advice(capsys: Capsys) -> None:
    code, out, err = cli(
        capsys, "advise", "--request", "-", "--json",
        stdin=json.dumps({"workload": {"asset_type": "cg", "items": 4}}),
    )  # fmt: skip
    assert code == 0, err
    advice = json.loads(out)
    assert any("taken as CG super-res" in a for a in advice["requirements"]["assumptions"])
    code, _, err = cli(
        capsys, "advise", "--request", "-",
        stdin=json.dumps({"workload": {"asset_type": "hologram"}}),
    )  # fmt: skip
    assert code == 2 and "asset_type" in err, err
