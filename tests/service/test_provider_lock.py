"""A provider with work in flight is locked (docs/architecture.md, "Dispatch"): it cannot be
removed, replaced or overwritten by an import, disabled, or have its credentials, location or
endpoints changed; every refusal names the jobs and changes nothing (registry bytes and keyring
alike), harmless changes pass, and once the jobs end the same changes are accepted.

Jobs are put in flight as the dispatch driver will: a queued job moved to ``running`` (or
``submitting``) with its provider, through the job store's own ``change_status``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core import provider_lock
from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.errors import ConflictError
from comfyvn_gui.core.jobs import ComputeDecision
from comfyvn_gui.core.models import ImportPlan, ProviderEntry
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.conftest import keyring_entries

pytestmark = pytest.mark.usefixtures("secret_service")

KEY = "rp-lock-key-0123456789"
AZURE_SECRET = "az-lock-secret-012345"
TENANT = "00000000-0000-4000-8000-000000000001"
RUNPOD = {
    "id": "runpod-1",
    "template_id": "runpod",
    "name": "RunPod one",
    "config": {"endpoint_id": "ep-one"},
    "secrets": {"api_key": KEY},
    "meta": {"notes": "first"},
}
AZURE = {
    "id": "azure-1",
    "template_id": "azure",
    "name": "Azure one",
    "config": {
        "tenant_id": TENANT,
        "client_id": "00000000-0000-4000-8000-000000000002",
        "subscription_id": "00000000-0000-4000-8000-000000000003",
        "region": "westeurope",
        "resource_group": "comfyvn-gpu",
        "vm_size": "Standard_NC4as_T4_v3",
    },
    "secrets": {"client_secret": AZURE_SECRET},
}
WORKLOAD = {"kind": "translation", "characters": 5000}
#: The job lists of a refusal: "(job 3)", "(jobs 3, 5)".
JOBS_NAMED = re.compile(r"\(jobs? ([0-9, ]+)\)")


@pytest.fixture
def svc(app_home: Path) -> Iterator[Service]:
    service = Service(resolve_home())
    service.register_provider(RUNPOD)
    service.register_provider(AZURE)
    yield service
    service.close()


def in_flight(svc: Service, provider_id: str, status: str = "running") -> int:
    """A job of the queue moved to ``status`` on ``provider_id``, as dispatch moves it."""
    job = svc.add_job(WORKLOAD)
    decision = ComputeDecision(
        provider=provider_id, advice={}, decided_at=datetime.now(UTC), decided_by="user"
    )
    moved = svc.job_store.change_status(
        job.id,
        expected=["queued"],
        status=status,
        actor="test",
        message=f"{status}: dispatched by the test",
        decision=decision,
    )
    assert moved is not None and moved.status == status and moved.compute.provider == provider_id
    return job.id


def end(svc: Service, job_id: int, status: str = "completed") -> None:
    done = svc.job_store.change_status(
        job_id,
        expected=["submitting", "running"],
        status=status,
        actor="test",
        message=f"{status}: ended in the test",
    )
    assert done is not None and done.status == status


def state(svc: Service) -> tuple[bytes, dict[tuple[str, str], str]]:
    """The registry's bytes and every keyring entry of the home."""
    service = f"comfyvn-gui/{svc.home.home_id()}"
    return svc.home.registry_file.read_bytes(), keyring_entries(service)


def refused(svc: Service, change: Callable[[], Any], job_ids: list[int]) -> ConflictError:
    """``change`` is refused naming ``job_ids``, and nothing changed."""
    before = state(svc)
    with pytest.raises(ConflictError) as info:
        change()
    assert state(svc) == before
    err = info.value
    named = [int(j) for group in JOBS_NAMED.findall(err.message) for j in group.split(", ")]
    assert named == sorted(job_ids), err.message
    assert f"`comfyvn-gui jobs cancel {min(job_ids)}`" in err.message
    assert "nothing was" in err.message
    return err


# -- updates: refused --------------------------------------------------------------------------

LOCKED_UPDATES = [
    pytest.param("runpod-1", {"secrets": {"api_key": "rp-new-key-0123456789"}}, ["api_key"],
                 "changing its credentials (api_key)", id="new-secret"),
    pytest.param("runpod-1", {"config": {"api_key": "rp-new-key-0123456789"}}, ["api_key"],
                 "changing its credentials (api_key)", id="new-secret-in-config"),
    pytest.param("runpod-1", {"secrets": {"api_key": None}}, ["api_key"],
                 "changing its credentials (api_key)", id="secret-cleared"),
    pytest.param("runpod-1", {"secrets": {"webhook_secret": "whsec-0123456789"}},
                 ["webhook_secret"], "changing its credentials (webhook_secret)",
                 id="secret-added"),
    pytest.param("runpod-1", {"enabled": False}, ["enabled"], "before disabling it",
                 id="disabled"),
    pytest.param("runpod-1", {"base_url": "https://proxy.example.org/v2"}, ["base_url"],
                 "changing its endpoints (base_url)", id="base-url"),
    pytest.param("runpod-1",
                 {"config": {"endpoints": {"graphql": "https://proxy.example.org/graphql"}}},
                 ["endpoints"], "changing its endpoints (endpoints)", id="endpoint-override"),
    pytest.param("runpod-1", {"config": {"endpoint_id": "ep-two"}}, ["endpoint_id"],
                 "changing its location (endpoint_id)", id="serverless-endpoint"),
    pytest.param("runpod-1", {"config": {"endpoint_id": None}}, ["endpoint_id"],
                 "changing its location (endpoint_id)", id="serverless-endpoint-removed"),
    pytest.param("azure-1", {"config": {"region": "northeurope"}}, ["region"],
                 "changing its location (region)", id="region"),
    pytest.param("azure-1", {"config": {"resource_group": "elsewhere"}}, ["resource_group"],
                 "changing its location (resource_group)", id="resource-group"),
    pytest.param("azure-1", {"config": {"tenant_id": "contoso.onmicrosoft.com"}},
                 ["tenant_id"], "changing its credentials (tenant_id)", id="auth-field"),
    pytest.param("azure-1",
                 {"enabled": False, "secrets": {"client_secret": "az-other-secret-0123"},
                  "config": {"region": "eastus"}},
                 ["enabled", "client_secret", "region"],
                 "before disabling it or changing its credentials (client_secret) and its "
                 "location (region)", id="several"),
]  # fmt: skip


@pytest.mark.parametrize("how", ["register", "save", "save-existing"])
@pytest.mark.parametrize(("pid", "update", "fields", "words"), LOCKED_UPDATES)
def test_a_locked_update_is_refused_and_changes_nothing(
    svc: Service, how: str, pid: str, update: dict[str, Any], fields: list[str], words: str
) -> None:
    job = in_flight(svc, pid)
    payload = {"id": pid, **update}
    change = {
        "register": lambda: svc.register_provider(payload),
        "save": lambda: svc.save_provider(payload),  # the form's path (new=None, an id)
        "save-existing": lambda: svc.save_provider(payload, new=False),
    }[how]
    err = refused(svc, change, [job])
    assert err.fields == fields
    assert err.message.startswith(f"{pid} has work in flight (job {job}): wait for it to end")
    assert words in err.message


def test_the_message_names_every_job_of_the_provider(svc: Service) -> None:
    first = in_flight(svc, "runpod-1", "submitting")
    other = in_flight(svc, "azure-1")  # another provider's: not named
    second = in_flight(svc, "runpod-1")
    err = refused(
        svc,
        lambda: svc.register_provider({"id": "runpod-1", "secrets": {"api_key": None}}),
        [first, second],
    )
    assert err.message == (
        f"runpod-1 has work in flight (jobs {first}, {second}): wait for them to end or cancel "
        f"them (`comfyvn-gui jobs cancel {first}`) before changing its credentials (api_key); "
        "nothing was saved (its name, notes and other settings can still be changed)"
    )
    assert other not in (first, second)


# -- updates: allowed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        pytest.param({"name": "Renamed"}, id="name"),
        pytest.param({"meta": {"notes": "second", "runbook": "https://wiki.example/rb"}},
                     id="notes"),
        pytest.param({"gpu": "A100 80GB"}, id="gpu"),
        pytest.param({"config": {"vm_size": "Standard_NC8as_T4_v3"}}, id="machine-size"),
        pytest.param({"secrets": {"client_secret": AZURE_SECRET}}, id="same-secret-again"),
        pytest.param({"config": dict(AZURE["config"])}, id="same-settings-again"),
        pytest.param({"enabled": True}, id="still-enabled"),
    ],
)  # fmt: skip
def test_harmless_updates_pass_while_work_is_in_flight(
    svc: Service, update: dict[str, Any]
) -> None:
    in_flight(svc, "azure-1")
    secrets_before = state(svc)[1]
    entry, created = svc.register_provider({"id": "azure-1", **update})
    assert not created
    stored = svc.get_provider("azure-1")
    assert stored == entry
    for key, value in update.items():
        if key in ("name", "enabled", "gpu"):
            assert getattr(stored, key) == value
        elif key == "meta":
            assert stored.meta == value
    assert state(svc)[1] == secrets_before  # the credentials are what they were


def test_enabling_a_disabled_provider_passes(svc: Service) -> None:
    svc.register_provider({"id": "runpod-1", "enabled": False})
    in_flight(svc, "runpod-1")
    assert svc.register_provider({"id": "runpod-1", "enabled": True})[0].enabled


def test_the_forms_whole_payload_saves_a_rename_and_is_refused_for_a_region(
    svc: Service,
) -> None:
    """The Remote GPU form sends every field it shows, changed or not (forms.py, payload)."""
    job = in_flight(svc, "azure-1")
    config = {k: v for k, v in AZURE["config"].items()}
    form = {
        "id": "azure-1",
        "template_id": "azure",
        "name": "Azure renamed",
        "base_url": None,
        "gpu": None,
        "config": {**config, "endpoints": {}},
    }
    entry, _ = svc.save_provider(form, new=False)
    assert entry.name == "Azure renamed"
    err = refused(
        svc,
        lambda: svc.save_provider({**form, "config": {**config, "region": "uksouth"}}, new=False),
        [job],
    )
    assert err.fields == ["region"]  # the form highlights it (RemoteGpuPage._save)


def test_jobs_that_are_not_in_flight_do_not_lock(svc: Service) -> None:
    queued = svc.add_job(WORKLOAD)
    svc.job_store.change_status(
        queued.id,
        expected=["queued"],
        status="queued",
        actor="test",
        message="picked by the test",
        decision=ComputeDecision(
            provider="runpod-1", advice={}, decided_at=datetime.now(UTC), decided_by="user"
        ),
    )
    ended = in_flight(svc, "runpod-1")
    end(svc, ended, "failed")
    cancelled = in_flight(svc, "runpod-1", "submitting")
    end(svc, cancelled, "cancelled")
    in_flight(svc, "azure-1")  # another provider's job
    svc.register_provider({"id": "runpod-1", "secrets": {"api_key": "rp-new-key-0123456789"}})
    assert svc.registry.get_secret("runpod-1", "api_key") == "rp-new-key-0123456789"
    assert svc.remove_provider("runpod-1").id == "runpod-1"


def test_without_a_job_queue_nothing_is_locked_and_sqlite_is_not_opened(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_queue_read(status: object) -> None:
        raise AssertionError("the job queue was read although it does not exist")

    monkeypatch.setattr(svc, "job_providers", no_queue_read)
    assert not svc.home.jobs_file.exists()
    svc.register_provider({"id": "runpod-1", "enabled": False, "secrets": {"api_key": None}})
    svc.import_providers({"providers": [RUNPOD]}, replace=True, overwrite=True)
    svc.remove_provider("runpod-1")
    svc.remove_all_providers()
    assert not svc.home.jobs_file.exists()


# -- remove, remove --all, import --------------------------------------------------------------


def test_remove_and_remove_all_are_refused(svc: Service) -> None:
    job = in_flight(svc, "runpod-1")
    err = refused(svc, lambda: svc.remove_provider("runpod-1"), [job])
    assert err.fields == ["id"] and "before removing it; nothing was removed" in err.message
    err = refused(svc, svc.remove_all_providers, [job])
    assert err.message.startswith(f"runpod-1 (job {job}) has work in flight: wait for it")
    assert "before removing every provider" in err.message
    # another provider can still go
    assert svc.remove_provider("azure-1").id == "azure-1"


def test_remove_all_names_every_busy_provider_and_ignores_the_local_ones(svc: Service) -> None:
    local_job = in_flight(svc, "local")
    a = in_flight(svc, "azure-1")
    r = in_flight(svc, "runpod-1")
    err = refused(svc, svc.remove_all_providers, [a, r])
    assert err.message.startswith(
        f"azure-1 (job {a}) and runpod-1 (job {r}) have work in flight: wait for them to end"
    )
    assert f"(job {local_job})" not in err.message
    end(svc, a)
    end(svc, r)
    # local's own work does not hold up removing the others: local stays
    assert sorted(svc.remove_all_providers()) == ["azure-1", "runpod-1"]


def test_a_replacing_or_overwriting_import_is_refused(svc: Service) -> None:
    job = in_flight(svc, "runpod-1")
    other = {**RUNPOD, "id": "runpod-2"}
    again = {**RUNPOD, "secrets": {"api_key": "rp-imported-0123456789"}}
    for replace, overwrite, data, flag in (
        (True, True, {"providers": [other]}, "replace"),
        (True, False, {"providers": [RUNPOD]}, "replace"),
        (False, True, {"providers": [other, again]}, "overwrite"),
    ):
        for call in (svc.plan_import, svc.import_providers):  # the preview says so first
            attempt = functools.partial(call, data, replace=replace, overwrite=overwrite)
            err = refused(svc, attempt, [job])
            assert err.fields == [flag]
            assert "nothing was imported" in err.message
            assert f"import without {flag}" in err.message
    assert err.message.startswith(
        f"the import would overwrite runpod-1 (job {job}), which has work in flight: wait for "
        f"it to end or cancel it (`comfyvn-gui jobs cancel {job}`) first, or import without "
        "overwrite to skip it"
    )
    # An import that leaves it alone passes: a new provider, or it skipped (no overwrite).
    report = svc.import_providers({"providers": [other, again]}, replace=False, overwrite=False)
    assert report.imported == ["runpod-2"] and "runpod-1" in report.plan.skip
    assert svc.registry.get_secret("runpod-1", "api_key") == KEY


# -- after the work ends ------------------------------------------------------------------------


def test_every_refused_change_is_accepted_once_the_jobs_end(svc: Service) -> None:
    jobs = [in_flight(svc, "runpod-1"), in_flight(svc, "runpod-1", "submitting")]
    locked = [
        lambda: svc.register_provider({"id": "runpod-1", "secrets": {"api_key": "rp-2-0123456"}}),
        lambda: svc.save_provider({"id": "runpod-1", "config": {"endpoint_id": "ep-two"}}),
        lambda: svc.save_provider({"id": "runpod-1", "enabled": False}, new=False),
        lambda: svc.import_providers({"providers": [RUNPOD]}, replace=False, overwrite=True),
        lambda: svc.remove_provider("runpod-1"),
    ]
    for change in locked:
        refused(svc, change, jobs)
    end(svc, jobs[0])
    refused(svc, locked[0], jobs[1:])  # one is still in flight
    end(svc, jobs[1], "failed")
    svc.register_provider({"id": "runpod-1", "secrets": {"api_key": "rp-2-0123456"}})
    assert svc.registry.get_secret("runpod-1", "api_key") == "rp-2-0123456"
    assert (
        svc.save_provider({"id": "runpod-1", "config": {"endpoint_id": "ep-two"}})[0].config[
            "endpoint_id"
        ]
        == "ep-two"
    )
    assert not svc.save_provider({"id": "runpod-1", "enabled": False}, new=False)[0].enabled
    assert svc.import_providers(
        {"providers": [RUNPOD]}, replace=False, overwrite=True
    ).imported == ["runpod-1"]
    assert svc.registry.get_secret("runpod-1", "api_key") == KEY
    assert svc.remove_provider("runpod-1").id == "runpod-1"
    registry = json.loads(svc.home.registry_file.read_text("utf-8"))
    assert [p["id"] for p in registry["providers"]] == ["local", "azure-1"]


# -- the pure rule ------------------------------------------------------------------------------


def test_every_location_name_is_a_setting_of_some_profile() -> None:
    """The one list of location settings names no setting the catalog does not have."""
    catalog = load_catalog()
    names = {f.name for p in catalog.profiles.values() for f in p.all_fields}
    assert provider_lock.LOCATION_OPTIONS <= names
    assert provider_lock.CONNECTION_OPTIONS <= names
    # region, zone, resource group and namespace are each some profile's setting
    assert {"region", "zone", "resource_group", "namespace"} <= provider_lock.LOCATION_OPTIONS


def test_the_rule_without_jobs_and_with_many() -> None:
    plan = ImportPlan(replace=True, overwrite=True, delete=["a"], update=["b"])
    provider_lock.check_import(plan, {"c": [1]})  # neither deleted nor overwritten
    provider_lock.check_import(plan, {"a": []})  # no jobs: no lock
    provider_lock.check_remove("a", {"b": [1]})
    provider_lock.check_remove_all({"local": [1, 2]})
    with pytest.raises(ConflictError) as info:
        provider_lock.check_remove("a", {"a": list(range(20, 7, -1))})
    assert "(jobs 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 and 3 more)" in info.value.message
    assert "`comfyvn-gui jobs cancel 8`" in info.value.message


@pytest.mark.parametrize(
    ("template_id", "config", "change", "aspect"),
    [
        ("gcp", {"project_id": "vn", "region": "europe-west4", "zone": "europe-west4-a"},
         {"zone": "europe-west4-b"}, "location"),
        ("gcp", {"project_id": "vn", "region": "europe-west4"}, {"region": "us-central1"},
         "location"),
        ("aws", {"region": "eu-west-1", "bucket": "vn-in"}, {"bucket": "vn-out"}, "location"),
        ("coreweave", {"organization_id": "acme"}, {"namespace": "tenant-other"}, "location"),
        ("coreweave", {"organization_id": "acme"}, {"organization_id": "other"}, "credentials"),
        ("ssh", {"hostname": "a.example", "username": "vn"}, {"hostname": "b.example"},
         "credentials"),
        ("ssh", {"hostname": "a.example", "username": "vn"}, {"comfyui_port": "8189"},
         "location"),
        ("lan", {"endpoint": "https://nas.local:2376"}, {"client_key": "/k.pem"}, "credentials"),
        ("aws", {"region": "eu-west-1"}, {"instance_type": "g5.xlarge"}, None),
        ("gcp", {"project_id": "vn"}, {"machine_type": "g2-standard-8"}, None),
    ],
)  # fmt: skip
def test_the_rule_sorts_every_kind_of_setting(
    template_id: str, config: dict[str, str], change: dict[str, str], aspect: str | None
) -> None:
    profile = load_catalog().profile(template_id)
    old = ProviderEntry(id="p", template_id=template_id, name="P", config=config)
    new = old.model_copy(update={"config": {**config, **change}})
    locked = provider_lock.locked_change(profile, old, new, writes={}, clears=(), stored={})
    [name] = change
    if aspect is None:
        assert not locked and locked.fields == []
    else:
        assert getattr(locked, aspect) == (name,) and locked.fields == [name]
