"""Typed settings in config/settings.json: defaults, parsing, validation, robustness."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.errors import InputError, OperationError
from comfyvn_gui.core.settings import SETTINGS, SettingSpec, specs
from comfyvn_gui.store.paths import Home, resolve_home
from comfyvn_gui.store.settings import SettingsStore

DEFAULTS: dict[str, Any] = {
    "advisor.budget_usd": None,
    "advisor.latency": "batch",
    "advisor.residency": [],
    "health.interval_s": 300,
    "checks.timeout_s": 20,
    "network.ca_bundle": None,
    # the bill guard of dispatch
    "dispatch.boot_timeout_min": 20.0,
    "dispatch.max_cost_factor": 2.0,
    "dispatch.max_runtime_factor": 3.0,
    "dispatch.runpod_parallel": 1,
    # how long live prices are used
    "prices.max_age_h": 24.0,
    # the ComfyUI templates: null = the shipped one (or none, for the kinds needing custom nodes)
    "workflows.cg_bake": None,
    "workflows.cg_remix": None,
    "workflows.cg_super_res": None,
    "workflows.sprite_generation": None,
    "workflows.translation": None,
    "workflows.voice_synthesis": None,
}


@pytest.fixture
def home() -> Home:
    return resolve_home()


@pytest.fixture
def store(home: Home) -> SettingsStore:
    return SettingsStore(home)


def test_specs_describe_every_key() -> None:
    assert sorted(SETTINGS) == sorted(DEFAULTS)
    assert [s.key for s in specs()] == sorted(DEFAULTS)
    for spec in specs():
        assert isinstance(spec, SettingSpec)
        assert spec.default == DEFAULTS[spec.key]
        assert spec.help
        assert spec.type_name
        assert spec.accepts
        assert spec.parse(spec.default) == spec.default  # every default is valid


def test_defaults_without_a_file(home: Home, store: SettingsStore) -> None:
    assert store.all() == DEFAULTS
    assert store.get("health.interval_s") == 300
    assert not home.settings_file.exists()  # reading writes nothing


def test_default_lists_are_not_shared(store: SettingsStore) -> None:
    store.get("advisor.residency").append("eu")
    store.all()["advisor.residency"].append("us")
    assert store.get("advisor.residency") == []
    assert SETTINGS["advisor.residency"].default == []


def test_set_get_round_trip_across_instances(home: Home, store: SettingsStore) -> None:
    assert store.set("health.interval_s", "600") == 600
    assert store.set("advisor.budget_usd", "2.5") == 2.5
    assert store.set("advisor.latency", "Interactive") == "interactive"
    assert store.set("advisor.residency", "eu, us") == ["eu", "us"]

    other = SettingsStore(resolve_home())
    assert other.all() == {
        **DEFAULTS,
        "advisor.budget_usd": 2.5,
        "advisor.latency": "interactive",
        "advisor.residency": ["eu", "us"],
        "health.interval_s": 600,
    }
    doc = json.loads(home.settings_file.read_text("utf-8"))
    assert doc["schema_version"] == 1
    assert doc["values"]["health.interval_s"] == 600
    assert stat.S_IMODE(home.settings_file.stat().st_mode) == 0o600
    assert (home.config_dir / ".settings.lock").exists()


def test_unset_returns_to_default(home: Home, store: SettingsStore) -> None:
    store.set("health.interval_s", 900)
    store.set("advisor.latency", "interactive")
    store.unset("health.interval_s")
    assert store.get("health.interval_s") == 300
    assert store.get("advisor.latency") == "interactive"
    assert "health.interval_s" not in json.loads(home.settings_file.read_text())["values"]
    before = home.settings_file.read_bytes()
    store.unset("health.interval_s")  # already unset: nothing written
    assert home.settings_file.read_bytes() == before


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("health.interval_s", "600", 600),
        ("health.interval_s", " 15 ", 15),
        ("health.interval_s", "86400", 86400),
        ("health.interval_s", 120, 120),
        ("health.interval_s", 120.0, 120),
        ("advisor.budget_usd", "null", None),
        ("advisor.budget_usd", "None", None),
        ("advisor.budget_usd", "", None),
        ("advisor.budget_usd", None, None),
        ("advisor.budget_usd", "0", 0.0),
        ("advisor.budget_usd", "$2.50", 2.5),
        ("advisor.budget_usd", 3, 3.0),
        ("advisor.latency", "batch", "batch"),
        ("advisor.latency", " INTERACTIVE ", "interactive"),
        ("advisor.residency", "eu,us", ["eu", "us"]),
        ("advisor.residency", "EU, us,,eu,", ["eu", "us"]),
        ("advisor.residency", '["eu"]', ["eu"]),
        ("advisor.residency", "[]", []),
        ("advisor.residency", "", []),
        ("advisor.residency", "any", []),
        ("advisor.residency", "null", []),
        ("advisor.residency", ["UK", "eu"], ["uk", "eu"]),
        ("advisor.residency", ("eu",), ["eu"]),
    ],
)
def test_command_line_strings_and_typed_values(
    store: SettingsStore, key: str, raw: Any, expected: Any
) -> None:
    typed = store.set(key, raw)
    assert typed == expected
    assert type(typed) is type(expected)
    assert SettingsStore(resolve_home()).get(key) == expected


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        (
            "health.interval_s",
            "abc",
            "health.interval_s must be an integer between 15 and 86400 seconds, got 'abc'",
        ),
        ("health.interval_s", "14", "got '14'"),
        ("health.interval_s", 86401, "got 86401"),
        ("health.interval_s", "1.5", "integer between 15 and 86400"),
        ("health.interval_s", 1.5, "integer between 15 and 86400"),
        ("health.interval_s", True, "got True"),
        ("health.interval_s", "null", "got 'null'"),
        ("health.interval_s", None, "got None"),
        ("health.interval_s", "", "got ''"),
        ("advisor.budget_usd", "-1", "advisor.budget_usd must be a number of US dollars >= 0"),
        ("advisor.budget_usd", "nan", "or null for no budget, got 'nan'"),
        ("advisor.budget_usd", "inf", "got 'inf'"),
        ("advisor.budget_usd", "cheap", "got 'cheap'"),
        ("advisor.budget_usd", False, "got False"),
        ("advisor.budget_usd", [1], "got [1]"),
        (
            "advisor.latency",
            "fast",
            "advisor.latency must be one of interactive, batch, got 'fast'",
        ),
        ("advisor.latency", None, "got None"),
        ("advisor.latency", 1, "got 1"),
        ("advisor.residency", "eu us", "advisor.residency must be a list of residency zones"),
        ("advisor.residency", ["us-east", "eu"], "known zones: af, asia, ca, eu,"),
        ("advisor.residency", '["eu", 3]', "got '[\"eu\", 3]'"),
        ("advisor.residency", '{"eu": 1}', "got '{\"eu\": 1}'"),
        ("advisor.residency", "[eu", "got '[eu'"),
        ("advisor.residency", [""], "got ['']"),
        ("advisor.residency", "europe!", "got 'europe!'"),
        ("advisor.residency", 5, "got 5"),
    ],
)
def test_invalid_values_are_refused_and_change_nothing(
    home: Home, store: SettingsStore, key: str, raw: Any, message: str
) -> None:
    store.set("health.interval_s", 600)
    store.set("advisor.residency", "eu")
    before = home.settings_file.read_bytes()
    with pytest.raises(InputError) as info:
        store.set(key, raw)
    assert message in info.value.message
    assert info.value.message.startswith(f"{key} must be ")
    assert info.value.fields == [key]
    assert home.settings_file.read_bytes() == before


def test_invalid_value_on_a_fresh_home_creates_no_file(home: Home, store: SettingsStore) -> None:
    with pytest.raises(InputError):
        store.set("health.interval_s", "abc")
    assert not home.settings_file.exists()


@pytest.mark.parametrize("key", ["health.interval", "nope", "", "HEALTH.INTERVAL_S"])
def test_unknown_key_names_it_and_lists_the_known_ones(
    home: Home, store: SettingsStore, key: str
) -> None:
    for call in (
        lambda: store.get(key),
        lambda: store.set(key, "1"),
        lambda: store.unset(key),
    ):
        with pytest.raises(InputError) as info:
            call()
        assert repr(key) in info.value.message
        for known in DEFAULTS:
            assert known in info.value.message
    assert not home.settings_file.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'{"schema_version": 1, "values": [1]}',
        b"\xff\xfe garbage",
    ],
)
def test_corrupted_file_is_reported_and_kept(
    home: Home, store: SettingsStore, content: bytes
) -> None:
    home.ensure()
    home.settings_file.write_bytes(content)
    for call in (
        store.all,
        lambda: store.get("health.interval_s"),
        lambda: store.set("health.interval_s", 600),
        lambda: store.unset("health.interval_s"),
    ):
        with pytest.raises(OperationError) as info:
            call()
        assert str(home.settings_file) in info.value.message
        assert "delete it" in info.value.message
    assert home.settings_file.read_bytes() == content  # never overwritten
    home.settings_file.unlink()
    assert store.get("health.interval_s") == 300  # deleting it returns to the defaults


def test_invalid_stored_value_names_the_key_and_set_repairs_it(
    home: Home, store: SettingsStore
) -> None:
    home.ensure()
    home.settings_file.write_text(
        json.dumps({"schema_version": 1, "values": {"health.interval_s": "often"}})
    )
    assert store.get("advisor.latency") == "batch"  # other keys still readable
    with pytest.raises(OperationError) as info:
        store.get("health.interval_s")
    assert "health.interval_s" in info.value.message
    assert "settings unset health.interval_s" in info.value.message
    with pytest.raises(OperationError):
        store.all()
    assert store.set("health.interval_s", "60") == 60
    assert store.all()["health.interval_s"] == 60


def test_unknown_keys_from_a_newer_version_are_preserved(home: Home, store: SettingsStore) -> None:
    home.ensure()
    home.settings_file.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "values": {"gui.theme": "dark", "advisor.latency": "interactive"},
                "future_section": {"x": [1, 2]},
            }
        )
    )
    assert store.all()["advisor.latency"] == "interactive"
    assert "gui.theme" not in store.all()
    store.set("health.interval_s", 60)
    store.unset("advisor.latency")
    doc = json.loads(home.settings_file.read_text("utf-8"))
    assert doc["values"] == {"gui.theme": "dark", "health.interval_s": 60}
    assert doc["future_section"] == {"x": [1, 2]}


ZONES = ("eu", "us", "uk")


def _set_many(home_dir: str, worker: int) -> None:
    store = SettingsStore(resolve_home({"COMFYVN_GUI_HOME": home_dir}))
    for i in range(15):
        store.set("health.interval_s", 100 + worker * 100 + i)
        store.set("advisor.residency", [ZONES[worker]])


@pytest.mark.slow
def test_concurrent_writers_leave_a_valid_file(app_home: Path, home: Home) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_set_many, args=(str(app_home), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    values = SettingsStore(home).all()
    assert values["health.interval_s"] in {100 + w * 100 + 14 for w in range(3)}
    assert values["advisor.residency"] in [[ZONES[w]] for w in range(3)]
    leftovers = [p.name for p in home.config_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("key", "raw", "typed"),
    [
        ("checks.timeout_s", "5", 5),
        ("network.ca_bundle", "/etc/ssl/corp.pem", "/etc/ssl/corp.pem"),
        ("network.ca_bundle", "null", None),
    ],
)
def test_network_and_check_settings(key: str, raw: str, typed: Any) -> None:
    store = SettingsStore(resolve_home())
    assert store.set(key, raw) == typed
    assert SettingsStore(resolve_home()).get(key) == typed


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("checks.timeout_s", "0"),
        ("checks.timeout_s", "301"),
        ("network.ca_bundle", "relative/ca.pem"),
    ],
)
def test_bad_network_and_check_settings(key: str, raw: str) -> None:
    with pytest.raises(InputError, match=key):
        SettingsStore(resolve_home()).set(key, raw)
