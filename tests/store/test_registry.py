"""The provider registry against a real Secret Service: every operation and its edge cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.errors import ConflictError, InputError, NotFoundError, OperationError
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import Home, resolve_home
from tests.conftest import keyring_entries

pytestmark = pytest.mark.usefixtures("secret_service")


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def home_entries(svc: Service) -> dict[str, str]:
    """This home's keyring entries as username -> value."""
    service = svc.secrets.service
    return {u: v for (s, u), v in keyring_entries(service).items() if s == service}


def state(svc: Service) -> tuple[bytes | None, dict[str, str]]:
    path = svc.home.registry_file
    return (path.read_bytes() if path.exists() else None), home_entries(svc)


def test_create_from_template_merges_profile_and_keeps_secret_in_keyring(svc: Service) -> None:
    entry = svc.create_provider(
        "runpod",
        {
            "id": "runpod-demo",
            "name": "RunPod Demo",
            "base_url": "https://api.runpod.io/v2/",
            "config": {"api_key": "RUNPOD_KEY_canary_1"},
            "meta": {"notes": "Demo project"},
        },
    )
    assert entry.id == "runpod-demo"
    assert entry.template_id == "runpod"
    assert entry.gpu is None and svc.template("runpod").default_gpu == "A10G"
    assert entry.secrets_set == ["api_key"]
    assert "api_key" not in entry.config
    assert entry.meta == {"notes": "Demo project"}
    assert entry.active is False and entry.enabled is True
    assert home_entries(svc) == {"runpod-demo/api_key": "RUNPOD_KEY_canary_1"}
    text = svc.home.registry_file.read_text()
    assert "RUNPOD_KEY_canary_1" not in text
    assert svc.get_provider("runpod-demo") == entry


def test_create_without_id_makes_unique_ids(svc: Service) -> None:
    ids = [svc.create_provider("runpod", {}).id for _ in range(3)]
    assert ids == ["runpod", "runpod-2", "runpod-3"]
    assert [p.id for p in svc.list_providers()] == ["local", *ids]


def test_explicit_duplicate_id_is_refused_and_changes_nothing(svc: Service) -> None:
    svc.create_provider("vast", {"id": "gpu-a", "config": {"api_key": "first-key-123-0123456789"}})
    before = state(svc)
    with pytest.raises(ConflictError, match="'gpu-a' already exists") as info:
        svc.create_provider(
            "runpod", {"id": "gpu-a", "config": {"api_key": "second-key-1-0123456789"}}
        )
    assert info.value.fields == ["id"]
    assert state(svc) == before


@pytest.mark.parametrize(
    ("template", "payload", "match", "field"),
    [
        ("nosuch", {}, "unknown template 'nosuch'", "template_id"),
        ("local", {}, "built in", "template_id"),
        ("runpod", {"id": "../x"}, "not a valid id", "id"),
        ("runpod", {"id": "x" * 10_000}, "10000 characters long", "id"),
        ("runpod", {"id": "export"}, "reserved", "id"),
        ("runpod", {"config": {"api_key": ""}}, "empty", "api_key"),
        ("runpod", {"config": {"nonsense": "1"}}, "config.nonsense is not a setting", "nonsense"),
        ("runpod", {"secrets": {"region": "x"}}, "not a secret field", "region"),
        ("runpod", {"base_url": "ftp://x"}, "must be an http", "base_url"),
        ("runpod", {"gpu": "GTX 9999"}, "not in the GPU catalog", "gpu"),
        ("runpod", {"meta": {"api_key": "x"}}, "looks like a credential", "api_key"),
        # the metadata a profile declares is checked by the service, whichever skin sent it
        ("aws", {"meta": {"subnet_id": "my-subnet"}}, "expected form", "meta.subnet_id"),
        (
            "vast",
            {"meta": {"price_ceiling_usd": "x"}},
            "must be a number",
            "meta.price_ceiling_usd",
        ),
        (
            "aws",
            {"config": {"access_key": "not-an-aws-key"}},
            "does not have the expected form",
            "access_key",
        ),
        (
            "gcp",
            {"config": {"service_account_json": "{broken"}},
            "not valid JSON",
            "service_account_json",
        ),
    ],
)
def test_bad_create_is_refused_with_specific_error(
    svc: Service, template: str, payload: dict[str, Any], match: str, field: str
) -> None:
    svc.create_provider(
        "vast", {"id": "existing", "config": {"api_key": "vast-key-1234-0123456789"}}
    )
    before = state(svc)
    with pytest.raises(InputError, match=match) as info:
        svc.create_provider(template, payload)
    assert field in info.value.fields
    assert state(svc) == before
    assert "10000" not in str(info.value) or len(str(info.value)) < 300


def test_register_keeps_omitted_secret_clears_null_and_credential_change_clears_active(
    svc: Service,
) -> None:
    svc.create_provider(
        "aws",
        {
            "id": "aws-1",
            "config": {
                "access_key": "AKIA" + "ABCDEFGHIJKLMNOP",
                "secret_key": "s" * 40,
                "region": "us-east-1",
            },
        },
    )
    svc.registry.set_active("aws-1", True)
    # Renaming is not a credential change: still active, secrets kept.
    entry, created = svc.register_provider({"id": "aws-1", "name": "Render farm"})
    assert not created and entry.active and entry.name == "Render farm"
    assert entry.secrets_set == ["access_key", "secret_key"]
    assert home_entries(svc)["aws-1/secret_key"] == "s" * 40
    # A new region is a credential change.
    entry, _ = svc.register_provider({"id": "aws-1", "config": {"region": "eu-central-1"}})
    assert entry.active is False and entry.config["region"] == "eu-central-1"
    svc.registry.set_active("aws-1", True)
    # A secret set to null is cleared, the other is kept.
    entry, _ = svc.register_provider({"id": "aws-1", "secrets": {"secret_key": None}})
    assert entry.secrets_set == ["access_key"] and entry.active is False
    assert home_entries(svc) == {"aws-1/access_key": "AKIA" + "ABCDEFGHIJKLMNOP"}


def test_register_creates_with_template_and_refuses_without(svc: Service) -> None:
    with pytest.raises(InputError, match="give its `template_id`"):
        svc.register_provider({"id": "new-one"})
    entry, created = svc.register_provider(
        {
            "id": "new-one",
            "template_id": "lambda",
            "config": {"api_key": "secret_lambda_1-0123456789"},
        }
    )
    assert created and entry.secrets_set == ["api_key"]
    with pytest.raises(InputError, match="template_id cannot change"):
        svc.register_provider({"id": "new-one", "template_id": "runpod"})


def test_remove_protects_local_and_deletes_secrets(svc: Service) -> None:
    svc.create_provider("runpod", {"config": {"api_key": "to-be-deleted-1-0123456789"}})
    with pytest.raises(InputError, match="cannot be removed"):
        svc.remove_provider("local")
    with pytest.raises(NotFoundError):
        svc.remove_provider("ghost")
    svc.remove_provider("runpod")
    assert [p.id for p in svc.list_providers()] == ["local"]
    assert home_entries(svc) == {}


def test_remove_all_leaves_nothing_of_the_home_in_the_keyring(svc: Service) -> None:
    other = Service(
        Home(*(svc.home.config_dir.parent.parent / "other" / d for d in ("config", "data", "logs")))
    )
    other.create_provider("runpod", {"config": {"api_key": "other-home-key-0123456789"}})
    svc.create_provider("runpod", {"config": {"api_key": "k1-secret-0123456789"}})
    svc.create_provider(
        "gcp",
        {
            "config": {
                "service_account_json": json.dumps(
                    {"type": "service_account", "private_key": "x" * 3000}
                )
            }
        },
    )
    svc.create_provider("ssh", {"config": {"key_passphrase": "pass-phrase"}})
    assert len(home_entries(svc)) > 3  # the long JSON is stored in parts
    removed = svc.remove_all_providers()
    assert sorted(removed) == ["gcp", "runpod", "ssh"]
    assert home_entries(svc) == {}
    assert [p.id for p in svc.list_providers()] == ["local"]
    assert home_entries(other) == {"runpod/api_key": "other-home-key-0123456789"}


def test_list_and_get_never_return_secret_values(svc: Service) -> None:
    svc.create_provider("azure", {"config": {"client_secret": "AZURE_CANARY_SECRET_9"}})
    dumped = json.dumps([p.model_dump() for p in svc.list_providers()])
    assert "AZURE_CANARY_SECRET_9" not in dumped
    assert svc.get_provider("azure").secrets_set == ["client_secret"]


def test_long_secret_round_trips_in_parts(svc: Service) -> None:
    value = "".join(chr(0x41 + i % 26) for i in range(3000)) + "é✓"
    svc.create_provider(
        "gcp",
        {
            "id": "g",
            "secrets": {
                "service_account_json": json.dumps({"type": "service_account", "blob": value})
            },
        },
    )
    stored = svc.registry.get_secret("g", "service_account_json")
    assert stored is not None and json.loads(stored)["blob"] == value
    entries = home_entries(svc)
    assert entries["g/service_account_json"].startswith("comfyvn-chunks:")
    assert all(len(v) <= 1000 for v in entries.values())


def test_overwriting_secrets_long_and_short_leaves_exactly_the_new_entries(svc: Service) -> None:
    """An import overwrites values it has just read in one batch (not read again before each
    write): a long value replaced by a short one, a short by a long one and a long by a longer
    one leave exactly the entries of the new values, and nothing parked."""
    long_a, long_b, long_c = "a" * 2500, "b" * 1200, "c" * 3500
    svc.import_providers(
        [
            {"id": "p1", "template_id": "runpod", "secrets": {"api_key": long_a}},
            {"id": "p2", "template_id": "runpod", "secrets": {"api_key": "short-key-0123456789"}},
            {"id": "p3", "template_id": "runpod", "secrets": {"api_key": long_b}},
        ],
        replace=False,
        overwrite=True,
    )
    assert len(home_entries(svc)) == 1 + 3 + 1 + 1 + 2
    svc.import_providers(
        [
            {"id": "p1", "template_id": "runpod", "secrets": {"api_key": "now-short-0123456789"}},
            {"id": "p2", "template_id": "runpod", "secrets": {"api_key": long_a}},
            {"id": "p3", "template_id": "runpod", "secrets": {"api_key": long_c}},
        ],
        replace=False,
        overwrite=True,
    )
    assert svc.registry.get_secret("p1", "api_key") == "now-short-0123456789"
    assert svc.registry.get_secret("p2", "api_key") == long_a
    assert svc.registry.get_secret("p3", "api_key") == long_c
    entries = home_entries(svc)
    assert sorted(entries) == sorted(
        ["p1/api_key", "p2/api_key", "p2/api_key#1", "p2/api_key#2", "p2/api_key#3"]
        + ["p3/api_key"]
        + [f"p3/api_key#{i}" for i in range(1, 5)]
    )
    assert not svc.home.journal_file.exists()


def test_two_homes_never_see_each_others_secrets(svc: Service, tmp_path: Path) -> None:
    other = Service(
        Home(tmp_path / "b" / "config", tmp_path / "b" / "data", tmp_path / "b" / "logs")
    )
    svc.create_provider("runpod", {"config": {"api_key": "home-a-key-0123456789"}})
    other.create_provider("runpod", {"config": {"api_key": "home-b-key-0123456789"}})
    assert svc.registry.get_secret("runpod", "api_key") == "home-a-key-0123456789"
    assert other.registry.get_secret("runpod", "api_key") == "home-b-key-0123456789"
    assert svc.secrets.service != other.secrets.service
    svc.remove_provider("runpod")
    assert other.registry.get_secret("runpod", "api_key") == "home-b-key-0123456789"


# -- export / import ----------------------------------------------------------------------


def _seed_registry(svc: Service) -> None:
    svc.create_provider("runpod", {"id": "rp", "config": {"api_key": "rp-secret-1-0123456789"}})
    svc.create_provider(
        "vast",
        {
            "id": "va",
            "config": {"api_key": "va-secret-1-0123456789"},
            "meta": {"price_ceiling_usd": 0.6},
        },
    )
    svc.registry.set_active("rp", True)


def test_export_strips_secrets_unless_asked(svc: Service) -> None:
    _seed_registry(svc)
    doc = svc.export_providers()
    assert doc["format"] == "comfyvn-gui.providers-export" and doc["version"] == 1
    assert doc["exported_at"] and doc["include_secrets"] is False
    assert "rp-secret-1-0123456789" not in json.dumps(doc)
    assert all("secrets" not in p for p in doc["providers"])
    full = svc.export_providers(include_secrets=True)
    by_id = {p["id"]: p for p in full["providers"]}
    assert by_id["rp"]["secrets"] == {"api_key": "rp-secret-1-0123456789"}


def test_export_import_round_trip_into_a_new_home(svc: Service, tmp_path: Path) -> None:
    _seed_registry(svc)
    doc = svc.export_providers(include_secrets=True)
    other = Service(
        Home(tmp_path / "n" / "config", tmp_path / "n" / "data", tmp_path / "n" / "logs")
    )
    report = other.import_providers(doc, replace=False, overwrite=True)
    assert sorted(report.imported) == ["rp", "va"]
    assert report.plan.skip == {"local": "the local provider is built in and is not imported"}
    assert other.registry.get_secret("rp", "api_key") == "rp-secret-1-0123456789"
    assert all(not p.active for p in other.list_providers() if p.id != "local")
    assert other.get_provider("va").meta == {"price_ceiling_usd": 0.6}


@pytest.mark.parametrize("shape", ["export", "providers", "list"])
def test_import_accepts_three_shapes(svc: Service, shape: str) -> None:
    items = [
        {"id": "lam", "template_id": "lambda", "secrets": {"api_key": "lam-key-123-0123456789"}}
    ]
    data: Any = {
        "export": {"format": "comfyvn-gui.providers-export", "version": 1, "providers": items},
        "providers": {"providers": items},
        "list": items,
    }[shape]
    svc.import_providers(data, replace=False, overwrite=True)
    assert svc.get_provider("lam").secrets_set == ["api_key"]


def test_import_without_overwrite_skips_and_reports_existing(svc: Service) -> None:
    _seed_registry(svc)
    before = svc.get_provider("rp")
    report = svc.import_providers(
        [
            {
                "id": "rp",
                "template_id": "runpod",
                "name": "changed",
                "secrets": {"api_key": "new-rp-k-0123456789"},
            },
            {"id": "fresh", "template_id": "paperspace"},
        ],
        replace=False,
        overwrite=False,
    )
    assert report.imported == ["fresh"]
    assert "rp" in report.plan.skip
    assert svc.get_provider("rp") == before
    assert svc.registry.get_secret("rp", "api_key") == "rp-secret-1-0123456789"


def test_import_with_overwrite_updates_keeps_unsent_secret_and_deactivates(svc: Service) -> None:
    _seed_registry(svc)
    svc.import_providers(
        [{"id": "rp", "template_id": "runpod", "name": "Renamed"}], replace=False, overwrite=True
    )
    entry = svc.get_provider("rp")
    assert entry.name == "Renamed" and entry.active is False
    assert entry.secrets_set == ["api_key"]
    assert svc.registry.get_secret("rp", "api_key") == "rp-secret-1-0123456789"


@pytest.mark.parametrize("overwrite", [True, False])
def test_replace_backs_up_says_what_it_deletes_and_deletes_old_secrets(
    svc: Service, overwrite: bool
) -> None:
    _seed_registry(svc)
    data = [
        {"id": "rp", "template_id": "runpod", "secrets": {"api_key": "replacement-1-0123456789"}},
        {"id": "new", "template_id": "lambda"},
    ]
    plan = svc.plan_import(data, replace=True, overwrite=overwrite)
    assert plan.delete == ["rp", "va"]
    assert plan.delete_credentials == {"rp": ["api_key"], "va": ["api_key"]}
    assert any("va" in line for line in plan.describe())
    report = svc.import_providers(data, replace=True, overwrite=overwrite)
    assert sorted(report.imported) == ["new", "rp"]  # replace: nothing exists to skip
    assert [p.id for p in svc.list_providers()] == ["local", "rp", "new"]
    assert home_entries(svc) == {"rp/api_key": "replacement-1-0123456789"}
    backups = list(svc.home.backups_dir.glob("providers-*.json"))
    assert len(backups) == 1 and "va" in backups[0].read_text()
    assert "va-secret-1-0123456789" not in backups[0].read_text()


def test_backups_keep_the_last_five(svc: Service) -> None:
    for _ in range(7):
        svc.import_providers([], replace=True, overwrite=True)
    assert len(list(svc.home.backups_dir.glob("providers-*.json"))) == 5


MALFORMED: list[tuple[str, Any, str]] = [
    ("not json", "{nope", "not valid JSON"),
    ("number", 42, "expected an export"),
    ("providers not list", {"providers": {"id": "x"}}, "`providers` must be a list"),
    ("entry not object", [["x"]], "must be a JSON object"),
    (
        "unknown version",
        {"format": "comfyvn-gui.providers-export", "version": 99, "providers": []},
        "newer comfyvn-gui",
    ),
    (
        "bad version type",
        {"format": "comfyvn-gui.providers-export", "version": "1", "providers": []},
        "unknown export version",
    ),
    (
        "unknown format",
        {"format": "something-else", "version": 1, "providers": []},
        "unknown format",
    ),
    ("path id", [{"id": "../x", "template_id": "runpod"}], "not a valid id"),
    ("huge id", [{"id": "a" * 10_000, "template_id": "runpod"}], "10000 characters"),
    (
        "duplicate ids",
        [{"id": "d", "template_id": "runpod"}, {"id": "d", "template_id": "vast"}],
        "appears twice",
    ),
    ("no id", [{"template_id": "runpod"}], "has no `id`"),
    ("unknown template", [{"id": "u", "template_id": "nosuch"}], "unknown template"),
    ("wrong types", [{"id": "w", "template_id": "runpod", "enabled": "maybe"}], "enabled"),
    (
        "secret not string",
        [{"id": "s", "template_id": "runpod", "secrets": {"api_key": 5}}],
        "secrets.api_key",
    ),
    ("unknown field", [{"id": "f", "template_id": "runpod", "colour": "red"}], "unknown field"),
    (
        "bad later entry",
        [
            {"id": "ok", "template_id": "runpod", "secrets": {"api_key": "good-k1-0123456789"}},
            {"id": "bad", "template_id": "runpod", "gpu": "nope"},
        ],
        "GPU catalog",
    ),
]


@pytest.mark.parametrize(("case", "data", "match"), MALFORMED, ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize(("replace", "overwrite"), [(False, True), (True, True), (False, False)])
def test_malformed_import_is_refused_whole(
    svc: Service, case: str, data: Any, match: str, replace: bool, overwrite: bool
) -> None:
    _seed_registry(svc)
    before = state(svc)
    with pytest.raises(InputError, match=match):
        svc.import_providers(data, replace=replace, overwrite=overwrite)
    assert state(svc) == before
    assert not svc.home.backups_dir.exists()


def test_a_version_0_registry_is_migrated(svc: Service) -> None:
    svc.home.ensure()
    svc.home.registry_file.write_text(
        json.dumps([{"id": "old-rp", "template_id": "runpod", "name": "Old RunPod"}])
    )
    assert [p.id for p in svc.list_providers()] == ["local", "old-rp"]
    svc.register_provider({"id": "old-rp", "name": "Migrated"})
    data = json.loads(svc.home.registry_file.read_text())
    assert data["schema_version"] == 1 and data["format"] == "comfyvn-gui.providers"
    assert [p["id"] for p in data["providers"]] == ["local", "old-rp"]


def test_a_newer_or_damaged_registry_is_reported_not_overwritten(svc: Service) -> None:
    svc.home.ensure()
    for text, match in [
        (
            json.dumps({"format": "comfyvn-gui.providers", "schema_version": 9, "providers": []}),
            "newer than this comfyvn-gui",
        ),
        ("{truncated", "is damaged"),
    ]:
        svc.home.registry_file.write_text(text)
        with pytest.raises(OperationError, match=match):
            svc.create_provider("runpod", {})
        assert svc.home.registry_file.read_text() == text


def test_plaintext_secrets_in_an_old_registry_move_to_the_keyring(svc: Service) -> None:
    svc.home.ensure()
    svc.home.registry_file.write_text(
        json.dumps(
            {
                "providers": [
                    {
                        "id": "old-rp",
                        "template_id": "runpod",
                        "name": "Old",
                        "config": {
                            "api_key": "LEGACY-plaintext-key-0123456789",
                            "endpoint_id": "abc123",
                        },
                    }
                ]
            }
        )
    )
    (_, entry) = svc.list_providers()
    assert entry.config == {"endpoint_id": "abc123"} and entry.secrets_set == ["api_key"]
    assert "LEGACY" not in svc.home.registry_file.read_text()
    assert home_entries(svc) == {"old-rp/api_key": "LEGACY-plaintext-key-0123456789"}
