"""The service as a composition root: its newer methods (save_provider, warm_up, the job helpers
the command line uses), the shape of its feature modules, and the pure provider rules."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from comfyvn_gui.core import provider_rules as rules
from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.checks import LocalSnapshot
from comfyvn_gui.core.errors import ConflictError, InputError, NotFoundError
from comfyvn_gui.core.models import ProviderInput
from comfyvn_gui.service import Service
from comfyvn_gui.store.audit import read_events
from comfyvn_gui.store.paths import resolve_home

SERVICE_DIR = Path(__file__).resolve().parents[2] / "comfyvn_gui" / "service"
KEY = "rp-form-key-0123456789"


@pytest.fixture
def svc(app_home: Path) -> Service:
    return Service(resolve_home())


def form_payload(**extra: object) -> dict[str, object]:
    """What the Remote GPU form hands over: template_id inside, id only when known."""
    return {
        "template_id": "runpod",
        "name": "RunPod (form)",
        "config": {},
        "secrets": {"api_key": KEY},
        **extra,
    }


# ------------------------------------------------------------------------ save_provider


@pytest.mark.usefixtures("secret_service")
def test_save_provider_takes_the_forms_payload_for_new_and_existing(svc: Service) -> None:
    entry, created = svc.save_provider(form_payload())
    assert created and entry.id == "runpod" and entry.secrets_set == ["api_key"]

    update = {k: v for k, v in form_payload(id="runpod", name="Renamed").items() if k != "secrets"}
    entry, created = svc.save_provider(update)
    assert not created and entry.name == "Renamed"
    assert entry.secrets_set == ["api_key"]  # a secret left out is kept
    assert svc.registry.get_secret("runpod", "api_key") == KEY

    entry, created = svc.save_provider(form_payload(id="rp-typed"), new=True)
    assert created and entry.id == "rp-typed"
    events = [e["event"] for e in read_events(svc.home) if e["event"].startswith("provider.")]
    assert events == ["provider.created", "provider.updated", "provider.created"]


@pytest.mark.usefixtures("secret_service")
def test_save_provider_refuses_what_create_and_register_refuse(svc: Service) -> None:
    svc.save_provider(form_payload(id="rp"))
    before = svc.home.registry_file.read_bytes()

    with pytest.raises(ConflictError, match="'rp' already exists") as conflict:
        svc.save_provider(form_payload(id="rp"), new=True)  # a new form with a taken id
    assert conflict.value.fields == ["id"]

    with pytest.raises(InputError, match="template_id cannot change") as changed:
        svc.save_provider(form_payload(id="rp", template_id="vast"))
    assert changed.value.fields == ["template_id"]

    with pytest.raises(InputError, match="needs its `template_id`") as missing:
        svc.save_provider({"name": "no template"})
    assert missing.value.fields == ["template_id"]

    with pytest.raises(InputError, match="built in and always registered as 'local'"):
        svc.save_provider({"template_id": "local"}, new=True)

    assert svc.home.registry_file.read_bytes() == before


@pytest.mark.usefixtures("secret_service")
def test_save_provider_does_not_bring_back_a_provider_removed_meanwhile(svc: Service) -> None:
    svc.save_provider(form_payload(id="rp"))
    svc.remove_provider("rp")
    with pytest.raises(NotFoundError, match="'rp' is registered any more") as gone:
        svc.save_provider(form_payload(id="rp", name="edited in a stale form"), new=False)
    assert gone.value.fields == ["id"]
    assert [p.id for p in svc.list_providers()] == ["local"]


# ------------------------------------------------------------------------ warm_up, helpers


def test_warm_up_imports_the_adapters_and_http_client_but_no_sdk(app_home: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        from comfyvn_gui.providers import adapter_for
        from comfyvn_gui.service import Service

        svc = Service()
        httpx_before = "httpx" in sys.modules
        svc.warm_up()
        warm = set(sys.modules)
        adapters = {t.id: adapter_for(t.id) is not None for t in svc.templates()}
        sdks = ("boto3", "botocore", "azure", "google.auth", "paramiko", "kubernetes", "pynvml")
        print(json.dumps({
            "httpx": [httpx_before, "httpx" in warm],
            "adapters": adapters,
            "imported_later": sorted(set(sys.modules) - warm),
            "sdks": [m for m in sdks if m in sys.modules],
            "keyring_used": "secretstorage" in sys.modules,
        }))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["httpx"] == [False, True]
    assert all(seen["adapters"].values()), seen["adapters"]
    assert seen["imported_later"] == []  # the first check imports nothing more
    assert seen["sdks"] == [] and seen["keyring_used"] is False


@pytest.mark.usefixtures("secret_service")
def test_job_helpers_for_the_command_line(svc: Service) -> None:
    job = svc.add_job({"title": "Chapter 1", "kind": "translation", "characters": 5000})
    [row] = svc.jobs_summary([job])
    assert row["id"] == job.id and row["title"] == "Chapter 1" and row["status"] == "queued"
    advice = svc.job_advice(job)
    assert advice is not None and advice.choice == row["provider"]
    [again] = svc.add_jobs([("Chapter 2", job.workload, {"added_by": "test"})])
    assert [j.id for j in svc.list_jobs()] == [job.id, again.id]
    assert svc.describe_local(LocalSnapshot(source="none", note="no driver")) == (
        "no local GPU (no driver)"
    )


# ------------------------------------------------------------------------ the feature modules


def test_no_feature_knows_the_service() -> None:
    """Each feature is handed its collaborators; none imports the façade or names it."""
    for path in sorted(SERVICE_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.level == 1 and node.module is None), f"{path.name}: from . import"
                assert node.module != "comfyvn_gui.service", f"{path.name} imports the service"
                names = {a.name for a in node.names}
                assert "Service" not in names, f"{path.name} imports Service"
            elif isinstance(node, ast.Name):
                assert node.id not in ("Service", "svc"), f"{path.name} uses {node.id}"
            elif isinstance(node, ast.arg):
                assert node.arg not in ("svc", "service"), f"{path.name} takes {node.arg}"


def test_no_service_module_is_over_800_lines() -> None:
    for path in [*SERVICE_DIR.glob("*.py"), SERVICE_DIR.parent / "store" / "registry.py"]:
        assert len(path.read_text("utf-8").splitlines()) <= 800, path.name


# ------------------------------------------------------------------------ pure rules


def test_provider_rules_plan_an_import_without_any_store() -> None:
    catalog = load_catalog()
    current = [rules.local_entry(catalog)]
    stored = rules.normalize(
        catalog, ProviderInput(id="rp", template_id="runpod", secrets={"api_key": KEY}), None, "x"
    ).entry.model_copy(update={"active": True})
    plan, changes = rules.plan_import(
        catalog,
        [*current, stored],
        {
            "providers": [
                {"id": "rp", "template_id": "runpod", "name": "Again"},
                {"id": "new-one", "template_id": "vast"},
            ]
        },
        replace=False,
        overwrite=True,
    )
    assert (plan.add, plan.update) == (["new-one"], ["rp"])
    assert [c.entry.active for c in changes] == [False, False]  # validated here again first
    assert changes[0].entry.secrets_set == ["api_key"]  # the stored secret is kept
    with pytest.raises(InputError, match="appears twice"):
        rules.plan_import(
            catalog,
            current,
            [{"id": "a", "template_id": "vast"}] * 2,
            replace=False,
            overwrite=True,
        )

    doc = rules.export_document(
        [stored],
        {"rp": {"api_key": KEY}},
        include_secrets=False,
        exported_at=datetime.now(UTC),
        app_version="0",
        catalog_version=catalog.version,
    )
    assert "secrets" not in doc["providers"][0] and KEY not in json.dumps(doc)
