"""The compute advisor: the seed's example end to end, its rules by example, and bad requests.

The properties over random inputs are in test_advisor_properties.py; the estimator's figures
in test_estimator.py. Here: `comfyvn-gui advise` and `gpus` as a user runs them, the live
registry (a RunPod account validated against the RunPod contract fake, a LAN node whose VRAM
its health check reported from a ComfyUI fake), and each documented preference and warning.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.advisor import (
    AdviceProvider,
    AdvisorSettings,
    advise,
    parse_request,
)
from comfyvn_gui.core.catalog import load_catalog, resources_dir
from comfyvn_gui.core.checks import LocalSnapshot
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.workload import Requirements, Workload
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.cli.test_cli import cli
from tests.fakes.comfyui import RTX_4090, comfyui_server
from tests.fakes.docker import DockerFake, Pki, make_pki
from tests.fakes.http import arun
from tests.fakes.runpod import RunPodFake

CATALOG = load_catalog()

#: The request of docs/architecture.md, "Advice request and response", with RunPod registered as
#: runpod-demo.
SEED_REQUEST: dict[str, Any] = {
    "workload": {
        "kind": "cg_super_res",
        "asset_type": "cg",
        "items": 40,
        "width": 2048,
        "height": 2048,
        "workflow": None,
        "vram_gb": None,
        "gpu_hours": None,
        "latency": "batch",
        "budget_usd": 2.0,
        "residency": ["eu"],
        "licenses": {"non_open_source": True},
    },
    "local": {
        "gpus": [{"name": "RTX 2060", "vram_total_gb": 6, "vram_free_gb": 5.5, "utilization": 0.05}]
    },
    "health": {"runpod-demo": "healthy"},
    "providers": [
        {"id": "runpod-demo", "template_id": "runpod", "name": "RunPod Demo", "active": True}
    ],
}

LOCAL_6GB = LocalSnapshot.model_validate(SEED_REQUEST["local"])
NO_GPU = LocalSnapshot(source="none", note="no NVIDIA driver found: jobs run on remote providers")


def billed_cost(template: str, hourly: float, minutes: float) -> float:
    """Independent arithmetic: hourly x max(minimum, ceil(minutes / increment) x increment)."""
    b = CATALOG.profile(template).billing
    steps = math.ceil(round(minutes / b.increment_minutes, 9))
    return hourly * max(b.minimum_minutes, steps * b.increment_minutes) / 60


def p(pid: str, template: str, **kw: Any) -> AdviceProvider:
    kw.setdefault("active", True)
    return AdviceProvider(id=pid, template_id=template, name=kw.pop("name", pid), **kw)


def run(
    providers: list[AdviceProvider],
    *,
    local: LocalSnapshot = NO_GPU,
    health: dict[str, Any] | None = None,
    vram: float = 12,
    hours: float = 1.0,
    settings: AdvisorSettings | None = None,
    user_pick: str | None = None,
    prices: dict[str, Any] | None = None,
    **workload: Any,
) -> Any:
    w = Workload(**{"kind": "cg_super_res", **workload})
    req = Requirements(vram_gb=vram, gpu_hours=hours, source="explicit")
    return advise(
        w,
        req,
        providers,
        health or {},
        local,
        settings or AdvisorSettings(),
        CATALOG,
        user_pick=user_pick,
        prices=prices,
    )


def codes(advice: Any) -> list[str]:
    return [w.code for w in advice.warnings]


# --------------------------------------------------------------------------- the seed example


def test_seed_example_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "advise", "--request", "-", stdin=json.dumps(SEED_REQUEST))
    assert code == 0, err
    advice = json.loads(out)
    assert advice["choice"] == "runpod-demo"
    req = advice["requirements"]
    assert req["vram_gb"] == 12 and req["source"] == "estimate" and req["assumptions"]
    # The seed's sentence, with both figures.
    assert advice["reason"].startswith(
        "Local GPU has insufficient VRAM (5.5GB free < 12GB required for CG super-res)."
    )
    # Cost: RunPod's list price x the minutes billed in RunPod's published increment.
    minutes = req["gpu_hours"] * 60 / 1.0 + CATALOG.profile("runpod").startup_minutes
    expected = billed_cost("runpod", 0.46, minutes)
    assert advice["estimated_cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert advice["estimated_cost"] == f"${expected:.2f}"
    assert advice["estimated_minutes"] == pytest.approx(minutes, abs=0.05)
    assert f"${expected:.2f}" in advice["reason"] and "$0.46/hr" in advice["reason"]
    # What the user must see before anything is uploaded.
    assert {"data_leaves_machine", "residency", "non_open_source_assets"} <= set(
        w["code"] for w in advice["warnings"]
    )
    assert advice["policy_hint"] == CATALOG.profile("runpod").policy_hints["cg_super_res"]
    [local] = advice["alternatives"]
    assert local["provider"] == "local" and not local["eligible"]
    assert "5.5GB free < 12GB" in local["excluded_because"]


@pytest.mark.usefixtures("secret_service")
def test_seed_example_against_the_live_registry(
    capsys: pytest.CaptureFixture[str], app_home: Path
) -> None:
    """The seed's create payload, validated against RunPod's API (a contract fake)."""
    svc = Service(resolve_home())
    with RunPodFake() as runpod:
        svc.create_provider(
            "runpod",
            runpod.provider("runpod-demo", name="RunPod Demo", meta={"notes": "Demo project"}),
        )
        request = {k: v for k, v in SEED_REQUEST.items() if k not in ("providers", "health")}
        before = json.loads(cli(capsys, "advise", "--request", "-", stdin=json.dumps(request))[1])
        [valid] = arun(svc.check("validate", ["runpod-demo"], timeout_s=10))
    assert valid.status == "valid", valid.message
    # Not validated yet: nothing can run it, and the reason says why for each provider.
    assert before["choice"] is None
    assert "runpod-demo: not validated" in before["reason"]
    assert "5.5GB free < 12GB" in before["reason"]
    registry = (app_home / "config" / "providers.json").read_text()
    checks = (app_home / "data" / "checks.json").read_text()
    code, out, err = cli(capsys, "advise", "--request", "-", stdin=json.dumps(request))
    assert code == 0, err
    advice = json.loads(out)
    assert advice["choice"] == "runpod-demo"
    assert "health_unknown" in codes_of(advice)  # validated, never health-checked
    # A what-if advice records nothing.
    assert (app_home / "config" / "providers.json").read_text() == registry
    assert (app_home / "data" / "checks.json").read_text() == checks
    log = app_home / "logs" / "compute_advisor.log"
    assert "advice" not in (log.read_text() if log.exists() else "")


def codes_of(advice: dict[str, Any]) -> set[str]:
    return {w["code"] for w in advice["warnings"]}


def test_text_summary_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, "advise", "--text", "--request", "-", stdin=json.dumps(SEED_REQUEST)
    )
    assert code == 0, err
    assert "choice:    runpod-demo" in out
    assert "[data_leaves_machine]" in out and "ALTERNATIVE" in out and "5.5GB free" in out


# --------------------------------------------------------------------------- the live inputs


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.usefixtures("secret_service")
def test_lan_node_uses_the_vram_its_health_check_reported(
    capsys: pytest.CaptureFixture[str], pki: Pki
) -> None:
    """A LAN node is advised on the VRAM its ComfyUI reported, not the profile's 8 GB floor."""
    svc = Service(resolve_home())
    token = "lan-token-for-advice-0001"
    request = {
        "workload": {"kind": "cg_super_res", "items": 4, "width": 2048, "height": 2048},
        "local": {"gpus": []},
    }
    with DockerFake(pki, token=token) as docker, comfyui_server([RTX_4090]) as comfy:
        svc.create_provider(
            "lan",
            {
                "id": "nas",
                "config": {
                    "endpoint": docker.base,
                    "api_token": token,
                    "ca_bundle": str(pki.ca_file),
                    "endpoints": {"comfyui": comfy.base},
                },
            },
        )
        [valid] = arun(svc.check("validate", ["nas"], timeout_s=10))
        assert valid.status == "valid", valid.message
        before = json.loads(cli(capsys, "advise", "--request", "-", stdin=json.dumps(request))[1])
        [health] = arun(svc.check("health", ["nas"], timeout_s=10))
    assert health.status == "healthy" and health.detail["reported_vram_gb"] == 24.0
    after = json.loads(cli(capsys, "advise", "--request", "-", stdin=json.dumps(request))[1])
    assert before["choice"] is None
    assert "8GB the profile's floor" in before["reason"]
    assert after["choice"] == "nas" and after["decided_by"] == "cost_free_on_prem"
    assert after["estimated_cost_usd"] == 0
    assert after["chosen"]["vram_gb"] == 24.0 and after["chosen"]["gpu"] == RTX_4090.name
    assert "data_leaves_machine" not in codes_of(after)


def test_settings_are_the_defaults_a_workload_can_override(
    capsys: pytest.CaptureFixture[str],
) -> None:
    providers = [
        {
            "id": "aws-eu",
            "template_id": "aws",
            "name": "AWS",
            "active": True,
            "config": {"region": "eu-west-1"},
        },
        {"id": "runpod", "template_id": "runpod", "name": "RunPod", "active": True},
    ]
    request = {
        "workload": {"kind": "cg_remix", "gpu_hours": 1, "vram_gb": 10},
        "local": {"gpus": []},
        "providers": providers,
    }

    def choice() -> Any:
        code, out, err = cli(capsys, "advise", "--request", "-", stdin=json.dumps(request))
        assert code == 0, err
        return json.loads(out)

    assert choice()["choice"] == "runpod"
    assert cli(capsys, "settings", "set", "advisor.residency", "uk")[0] == 0
    uk = choice()
    assert uk["choice"] is None and uk["settings"]["residency"] == ["uk"]
    assert "outside the allowed residency (uk)" in uk["reason"]
    request["workload"]["residency"] = []  # this job: any zone
    assert choice()["choice"] == "runpod"
    del request["workload"]["residency"]
    assert cli(capsys, "settings", "set", "advisor.residency", "eu,us")[0] == 0
    assert cli(capsys, "settings", "set", "advisor.budget_usd", "0.40")[0] == 0
    capped = choice()
    assert capped["choice"] is None
    assert {"over_budget_skipped"} <= codes_of(capped)
    request["workload"]["budget_usd"] = 2
    assert choice()["choice"] == "runpod"
    assert cli(capsys, "settings", "set", "advisor.latency", "interactive")[0] == 0
    assert choice()["settings"] == {
        "budget_usd": 2.0,
        "latency": "interactive",
        "residency": ["eu", "us"],
    }


def test_gpus_without_a_gpu_is_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "gpus", "--json")
    assert (code, json.loads(out)) == (0, []), err
    code, out, err = cli(capsys, "gpus")
    assert code == 0 and out.startswith("No local GPU (") and "NVIDIA" in out


# --------------------------------------------------------------------------- the rules


def test_local_gpu_with_enough_free_vram_wins_over_everything() -> None:
    local = LocalSnapshot.model_validate(
        {
            "gpus": [
                {
                    "name": "NVIDIA GeForce RTX 4090",
                    "vram_total_gb": 24,
                    "vram_free_gb": 20,
                    "utilization": 0.2,
                }
            ]
        }
    )
    a = run([p("runpod", "runpod"), p("nas", "lan", reported_vram_gb=48)], local=local)
    assert a.choice == "local" and a.decided_by == "local_gpu" and a.estimated_cost == "$0.00"
    assert a.reason.startswith("Local GPU NVIDIA GeForce RTX 4090 has enough free VRAM (20GB free")
    assert "data_leaves_machine" not in codes(a)
    # The 4090 is ~2x the A10G: the minutes say so.
    assert a.estimated_minutes == pytest.approx(
        60 / CATALOG.gpu("RTX 4090").relative_throughput, abs=0.05
    )


def test_a_coreweave_gpu_class_naming_the_default_gpu_keeps_its_price() -> None:
    """CoreWeave's machine option is a GPU class: "A40" is the default GPU the headline prices
    ($0.95/hr); an H100 class that no table lists stays unpriced, never priced as an A40."""
    cw = {"config": {"organization_id": "org1"}}
    default = run([p("cw", "coreweave", **cw)])
    a40 = run([p("cw", "coreweave", config={"organization_id": "org1", "gpu_class": "A40"})])
    h100 = run([p("cw", "coreweave", config={"organization_id": "org1", "gpu_class": "H100"})])
    assert default.chosen.hourly_usd == a40.chosen.hourly_usd == 0.95
    assert a40.chosen.price_source == "catalog"
    [unpriced] = [a for a in [h100.chosen, *h100.alternatives] if a and a.provider == "cw"]
    assert unpriced.hourly_usd is None and "price_unknown" in codes(h100)


def test_prefer_remote_keeps_the_local_gpu_free_while_another_can_run_it() -> None:
    """ComfyVN's prefer_remote: a remote (LAN, SSH, cloud) GPU goes first even where this
    computer's could run the job; with none eligible, the local GPU still runs it."""
    local = LocalSnapshot.model_validate(
        {"gpus": [{"name": "NVIDIA GeForce RTX 4090", "vram_total_gb": 24, "vram_free_gb": 20}]}
    )
    a = run(
        [p("runpod", "runpod"), p("nas", "lan", reported_vram_gb=48)],
        local=local,
        prefer_remote=True,
    )
    assert a.choice == "nas" and a.decided_by == "cost_free_on_prem"
    assert a.reason.startswith("You prefer a remote GPU (prefer_remote), so this computer's GPU")
    [kept] = [x for x in a.alternatives if x.provider == "local"]
    assert (
        kept.eligible
        and kept.note == "kept free: the workload prefers a remote GPU (prefer_remote)"
    )
    cloud = run([p("runpod", "runpod")], local=local, prefer_remote=True)
    assert cloud.choice == "runpod" and "data_leaves_machine" in codes(cloud)
    alone = run([], local=local, prefer_remote=True)
    assert alone.choice == "local" and alone.reason.endswith("but none can run it.")


def test_a_busy_local_gpu_is_skipped_for_a_lan_node() -> None:
    busy = LocalSnapshot.model_validate(
        {
            "gpus": [
                {"name": "RTX 4090", "vram_total_gb": 24, "vram_free_gb": 20, "utilization": 0.95}
            ]
        }
    )
    a = run([p("runpod", "runpod"), p("nas", "lan", reported_vram_gb=16)], local=busy)
    assert a.choice == "nas" and a.decided_by == "cost_free_on_prem"
    assert a.reason.startswith("Local GPU is busy (95% utilised). Nas (nas) has 16GB")
    by_id = {x.provider: x for x in a.alternatives}
    assert by_id["runpod"].eligible and "on-prem node nas" in by_id["runpod"].note


def test_free_vram_not_total_vram_decides() -> None:
    local = LocalSnapshot.model_validate(
        {
            "gpus": [
                {"name": "RTX 3090", "vram_total_gb": 24, "vram_free_gb": 10, "utilization": 0.1}
            ]
        }
    )
    a = run([p("runpod", "runpod")], local=local, vram=12)
    assert a.choice == "runpod"
    assert a.reason.startswith("Local GPU has insufficient VRAM (10GB free < 12GB")


def test_cheapest_remote_wins_with_billing_minimums() -> None:
    """A 3-minute job: Azure bills 5 minutes at least, AWS 1; per-second RunPod bills 3."""
    providers = [p("azure", "azure"), p("aws", "aws"), p("runpod", "runpod"), p("lambda", "lambda")]
    a = run(providers, vram=12, hours=0.01)
    by_id = {x.provider: x for x in [a.chosen, *a.alternatives]}
    for template in ("azure", "aws", "runpod", "lambda"):
        profile = CATALOG.profile(template)
        # the default machine's GPU and catalog price (issue 21), or the profile's listed
        # price for its default GPU where its default machine is not in the table (RunPod)
        option = profile.machine_option
        machine = profile.machine(profile.field(option).default) if option else None
        spec = CATALOG.gpu(machine.gpu if machine else profile.default_gpu)
        hourly = machine.price(None) if machine else profile.pricing.hourly_usd
        minutes = 0.01 * 60 / spec.relative_throughput + profile.startup_minutes
        x = by_id[template]
        assert x.machine == (machine.id if machine else x.machine), template
        assert x.estimated_cost_usd == pytest.approx(
            billed_cost(template, hourly, minutes), rel=1e-12
        ), template
    assert by_id["azure"].billed_minutes >= 5
    assert a.choice == "runpod" and a.decided_by == "cheapest"
    costs = [x.estimated_cost_usd for x in [a.chosen, *a.alternatives] if x.eligible]
    assert costs == sorted(costs)
    assert all(x.note for x in a.alternatives if x.eligible)


def test_interactive_latency_favours_a_fast_start_and_says_so() -> None:
    providers = [p("vast", "vast", meta={"price_ceiling_usd": 0.2}), p("runpod", "runpod")]
    batch = run(providers, hours=0.5, latency="batch")
    inter = run(providers, hours=0.5, latency="interactive")
    assert batch.choice == "vast" and batch.decided_by == "cheapest"
    assert inter.choice == "runpod" and inter.decided_by == "interactive_latency"
    assert inter.reason.startswith("No local GPU")
    assert "Interactive latency preferred: runpod starts in ~0.5 min" in inter.reason
    assert "cheapest: vast" in inter.reason


def test_cached_graphs_favour_a_persistent_cache() -> None:
    providers = [p("paperspace", "paperspace"), p("runpod", "runpod")]
    plain = run(providers, vram=8, hours=1, kind="comfyui_workflow")
    cached = run(providers, vram=8, hours=1, kind="comfyui_workflow", cached_graphs=True)
    assert plain.choice == "runpod"
    assert cached.choice == "paperspace" and cached.decided_by == "cached_graphs"
    assert "Cached ComfyUI graphs preferred" in cached.reason
    assert (
        cached.alternatives[0].note
        == "paperspace keeps cached ComfyUI graphs on a persistent volume"
    )


def test_price_ceiling_caps_a_marketplace_estimate_and_no_price_ranks_last() -> None:
    unpriced = run([p("vast", "vast"), p("lambda", "lambda")], vram=20)
    assert unpriced.choice == "lambda"
    [vast] = [x for x in unpriced.alternatives if x.provider == "vast"]
    assert vast.eligible and vast.hourly_usd is None and vast.estimated_cost_usd is None
    assert vast.note == "no known price: priced providers rank first"
    ceiling = run(
        [p("vast", "vast", meta={"price_ceiling_usd": 0.35}), p("lambda", "lambda")], vram=20
    )
    assert ceiling.choice == "vast" and ceiling.chosen.price_source == "price_ceiling"
    assert "upper bound" in next(w.message for w in ceiling.warnings if w.code == "price_unknown")
    live = run([p("vast", "vast", meta={"hourly_usd": 0.5, "price_ceiling_usd": 0.35})], vram=20)
    assert live.chosen.hourly_usd == 0.35  # the ceiling caps a live offer too
    alone = run([p("vast", "vast")], vram=20)
    assert alone.choice == "vast" and "price_unknown" in codes(alone)
    budget = run([p("vast", "vast")], vram=20, budget_usd=100)
    assert budget.choice is None and "no known price" in budget.reason


def test_exclusions_each_say_why() -> None:
    providers = [
        p("off", "runpod", enabled=False),
        p("unchecked", "runpod", active=False),
        p("sick", "runpod"),
        p("small", "azure"),  # T4, 16 GB
        p("lapsed", "lambda", health_code="quota_exhausted"),
        p("lapsed-meta", "coreweave", meta={"quota_lapsed": True}),
        p("us-only", "coreweave"),
    ]
    a = run(providers, health={"sick": "unhealthy"}, vram=20, residency=["eu"])
    assert a.choice is None and a.decided_by is None
    why = {x.provider: x.excluded_because for x in a.alternatives}
    assert why["off"] == "switched off (disabled)"
    assert why["unchecked"].startswith("not validated")
    assert why["sick"] == "unhealthy at its last health check"
    assert why["small"] == "insufficient VRAM (T4 has 16GB < 20GB required for CG super-res)"
    assert why["lapsed"].startswith("its quota has lapsed")
    assert why["lapsed-meta"].startswith("its quota has lapsed")
    assert why["us-only"] == "outside the allowed residency (eu): it runs in us"
    assert why["local"].startswith("no local GPU (no NVIDIA driver found")
    assert a.reason.startswith("No provider can run CG super-res (20GB VRAM): ")
    for pid in why:
        assert pid in a.reason or pid == "local"
    skipped = [(w.code, w.provider) for w in a.warnings]
    assert ("provider_unhealthy_skipped", "sick") in skipped
    assert ("quota_lapsed_skipped", "lapsed") in skipped


def test_configured_region_decides_residency() -> None:
    eu = p("aws-eu", "aws", config={"region": "eu-central-1"})
    us = p("aws-us", "aws", config={"region": "us-east-1"})
    a = run([eu, us], residency=["eu"])
    assert a.choice == "aws-eu" and a.chosen.zones == ["eu"]
    assert "residency" not in codes(a)  # pinned to the EU: nothing to warn about
    [leaves] = [w for w in a.warnings if w.code == "data_leaves_machine"]
    assert "(eu-central-1)" in leaves.message
    [us_alt] = [x for x in a.alternatives if x.provider == "aws-us"]
    assert us_alt.excluded_because == "outside the allowed residency (eu): it runs in us"
    unknown = run([p("aws-x", "aws", config={"region": "mars-north-1"})], residency=["eu"])
    [x] = [x for x in unknown.alternatives if x.provider == "aws-x"]
    assert x.excluded_because == (
        "residency cannot be confirmed: its region 'mars-north-1' is not in the catalog, "
        "so its zone is unknown"
    )
    anywhere = run([p("aws-x", "aws", config={"region": "mars-north-1"})])
    assert anywhere.choice == "aws-x"  # no residency rule: nothing to confirm


def test_dpia_notes_come_from_the_profiles() -> None:
    voice = run([p("runpod", "runpod")], kind="voice_synthesis", vram=6)
    [dpia] = [w for w in voice.warnings if w.code == "dpia"]
    assert dpia.message == CATALOG.profile("runpod").legal.dpia_notes["voice_synthesis"]
    for template in ("aws", "azure", "gcp"):
        text = run([p(template, template)], kind="translation", vram=8)
        notes = [w.message for w in text.warnings if w.code == "dpia"]
        assert notes == [CATALOG.profile(template).legal.dpia_notes["translation"]], template
    sprite = run([p("runpod", "runpod")], kind="sprite_generation", vram=8)
    assert "dpia" not in codes(sprite)


def test_user_pick_wins_while_eligible() -> None:
    providers = [p("runpod", "runpod"), p("lambda", "lambda")]
    a = run(providers, user_pick="lambda", vram=20)
    assert a.choice == "lambda" and a.decided_by == "user_pick"
    assert a.alternatives[0].note == "you picked lambda"
    gone = run(providers, user_pick="lambda", vram=20, health={"lambda": "unhealthy"})
    assert gone.choice == "runpod"
    assert "user_pick_ineligible" in codes(gone)


def test_degraded_and_unknown_health_are_eligible_with_a_warning() -> None:
    a = run([p("runpod", "runpod")], health={"runpod": "degraded"})
    assert a.choice == "runpod" and "provider_degraded" in codes(a)
    b = run([p("runpod", "runpod")])
    assert b.choice == "runpod" and "health_unknown" in codes(b)


# --------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda r: r.pop("workload"), "workload", "required field is missing"),
        (
            lambda r: [r["workload"].pop(k, None) for k in ("kind", "asset_type")],
            "workload.kind",
            "required field is missing",
        ),
        (lambda r: r["workload"].update(kind="render_movie"), "workload.kind", "Input should be"),
        (lambda r: r["workload"].update(items=-3), "workload.items", "greater than or equal to 1"),
        (lambda r: r["workload"].update(width=-1), "workload.width", "greater than or equal"),
        (lambda r: r["workload"].update(items=10**30), "workload.items", "less than or equal"),
        (
            lambda r: r["workload"].update(audio_seconds=float("inf")),
            "workload.audio_seconds",
            "Infinity is not a finite number",
        ),
        (lambda r: r["workload"].update(budget_usd=-1), "workload.budget_usd", "greater than"),
        (lambda r: r["workload"].update(asset_type="audio"), "workload", "does not fit kind"),
        (lambda r: r["workload"].update(height=None), "workload", "both width and height"),
        (
            lambda r: r["workload"].update(residency=["EU west!"]),
            "workload.residency",
            "not a residency zone",
        ),
        (lambda r: r["workload"].update(colour="blue"), "workload.colour", "unknown field"),
        (
            lambda r: r["health"].update({"runpod-demo": "great"}),
            "health.runpod-demo",
            "Input should be",
        ),
        (
            lambda r: r["providers"][0].update(template_id="nimbus"),
            "providers.0.template_id",
            "unknown template",
        ),
        (
            lambda r: r["local"]["gpus"][0].update(utilization=1.5),
            "local.gpus.0.utilization",
            "less than or equal to 1",
        ),
        (
            lambda r: r["workload"].update(workflow={"nodes": [], "links": []}),
            "workload.workflow",
            "API Format",
        ),
    ],
)
def test_bad_requests_name_the_field(
    capsys: pytest.CaptureFixture[str], change: Any, field: str, words: str
) -> None:
    request = copy.deepcopy(SEED_REQUEST)
    change(request)
    code, out, err = cli(capsys, "advise", "--json", "--request", "-", stdin=json.dumps(request))
    assert code == 2, (out, err)
    error = json.loads(out)["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"], error
    assert words in error["message"] and field in error["message"]
    assert "Traceback" not in err and err.startswith("comfyvn-gui: ")


def test_broken_json_and_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "advise", "--request", "-", stdin='{"workload": {"kind": ')
    assert code == 2 and "not valid JSON" in err
    code, _, err = cli(capsys, "advise", "--request", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read advice request" in err
    code, _, err = cli(capsys, "advise", "--request", "-", stdin="[1, 2]")
    assert code == 2 and "JSON object with a 'workload'" in err


def test_parse_request_rejects_duplicate_provider_ids() -> None:
    request = copy.deepcopy(SEED_REQUEST)
    request["providers"].append(dict(request["providers"][0]))
    with pytest.raises(InputError) as exc:
        parse_request(request, CATALOG)
    assert exc.value.fields == ["providers.1.id"]


def test_same_request_same_advice(capsys: pytest.CaptureFixture[str]) -> None:
    outs = {
        cli(capsys, "advise", "--request", "-", stdin=json.dumps(SEED_REQUEST))[1] for _ in range(3)
    }
    assert len(outs) == 1


EXAMPLES = resources_dir() / "examples" / "advice"


@pytest.mark.parametrize(
    ("name", "choice", "decided_by", "warning"),
    [
        ("seed-cg-super-res.json", "runpod-demo", "cheapest", "residency"),
        ("voice-eu-what-if.json", "runpod", "cheapest", "dpia"),
        ("comfyui-sdxl-upscale.json", "paperspace", "cached_graphs", "data_leaves_machine"),
    ],
)
def test_shipped_example_requests(
    capsys: pytest.CaptureFixture[str], name: str, choice: str, decided_by: str, warning: str
) -> None:
    code, out, err = cli(capsys, "advise", "--request", str(EXAMPLES / name))
    assert code == 0, err
    advice = json.loads(out)
    assert (advice["choice"], advice["decided_by"]) == (choice, decided_by)
    assert warning in codes_of(advice)


def test_the_seed_example_file_is_the_design_request() -> None:
    assert json.loads((EXAMPLES / "seed-cg-super-res.json").read_text()) == SEED_REQUEST


# -- Spot offers (issue 21) ----------------------------------------------------------------------


def _spot_prices(
    provider: str,
    template: str,
    machine: str,
    gpu: str,
    region: str,
    on_demand: float,
    spot: float,
    *,
    fresh: bool = True,
) -> dict[str, Any]:
    """A provider's kept live prices: one on-demand and one Spot offer for ``machine``."""
    from datetime import UTC, datetime

    from comfyvn_gui.core.prices import LivePrices, Offer

    taken = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    offers = [
        Offer(
            provider=provider,
            template_id=template,
            machine=machine,
            gpu=gpu,
            vram_gb=24,
            region=region,
            zone="us",
            hourly_usd=price,
            spot=is_spot,
            source="live",
            source_name="the provider's spot prices" if is_spot else "the provider's price list",
            taken_at=taken,
        )
        for price, is_spot in ((on_demand, False), (spot, True))
    ]
    return {provider: LivePrices(provider=provider, taken_at=taken, offers=offers, fresh=fresh)}


def _aws_prices(on_demand: float, spot: float, *, fresh: bool = True) -> dict[str, Any]:
    return _spot_prices(
        "aws-1", "aws", "g5.xlarge", "A10G", "us-east-1", on_demand, spot, fresh=fresh
    )


def test_a_google_spot_vm_is_weighed_like_aws_spot_when_the_provider_allows_it() -> None:
    """Google Cloud's "Allow Spot VMs" (meta.spot) makes its live Spot price an alternative;
    dispatch then launches a Spot VM only for that choice (tests/providers/test_gcp_machines)."""
    prices = _spot_prices("gcp-1", "gcp", "g2-standard-4", "L4", "us-central1", 0.71, 0.28)
    allowed = run([p("gcp-1", "gcp", meta={"spot": True})], prices=prices)
    assert (allowed.chosen.offer, allowed.chosen.hourly_usd) == ("spot", 0.28)
    assert "spot_interruption" in codes(allowed)
    plain = run([p("gcp-1", "gcp")], prices=prices)
    assert (plain.chosen.offer, plain.chosen.hourly_usd) == (None, 0.71)
    assert "spot_interruption" not in codes(plain)


def test_a_spot_offer_is_a_separate_alternative_where_the_provider_allows_spot() -> None:
    from comfyvn_gui.core.gate import consent_items

    aws = {"config": {"region": "us-east-1", "instance_type": "g5.xlarge"}}
    allowed = p("aws-1", "aws", meta={"spot": True}, **aws)
    advice = run([allowed], prices=_aws_prices(1.05, 0.40))
    chosen = advice.chosen
    assert advice.choice == "aws-1"  # the choice stays a provider id
    assert (chosen.offer, chosen.hourly_usd, chosen.price_source) == ("spot", 0.40, "live")
    [on_demand] = [a for a in advice.alternatives if a.provider == "aws-1"]
    assert on_demand.offer is None and on_demand.hourly_usd == 1.05 and on_demand.eligible
    assert (
        on_demand.note.startswith("on demand: $") and "more than its Spot offer" in on_demand.note
    )
    assert "spot_interruption" in codes(advice)
    assert "Spot capacity" in advice.reason
    assert "spot_interruption" in {i.code for i in consent_items(advice.model_dump())}

    # not allowed, stale, or above the ceiling (the bid): no Spot alternative
    plain = run([p("aws-1", "aws", **aws)], prices=_aws_prices(1.05, 0.40))
    assert plain.chosen.offer is None and plain.chosen.hourly_usd == 1.05
    assert all(a.provider != "aws-1" for a in plain.alternatives)
    assert "spot_interruption" not in codes(plain)
    stale = run([allowed], prices=_aws_prices(1.05, 0.40, fresh=False))
    assert stale.chosen.offer is None and stale.chosen.price_source == "catalog"
    capped = p("aws-1", "aws", meta={"spot": True, "price_ceiling_usd": 0.3}, **aws)
    under = run([capped], prices=_aws_prices(1.05, 0.40))
    assert under.chosen.offer is None and under.chosen.price_source == "price_ceiling"
    # the workload may say so instead of the provider
    job_allows = run([p("aws-1", "aws", **aws)], prices=_aws_prices(1.05, 0.40), interruptible=True)
    assert job_allows.chosen.offer == "spot"
    # a Spot price above on demand: on demand is chosen, Spot stays an alternative
    dear = run([allowed], prices=_aws_prices(1.05, 1.20))
    assert dear.chosen.offer is None
    [spot_alt] = [a for a in dear.alternatives if a.provider == "aws-1"]
    assert spot_alt.offer == "spot" and spot_alt.note.startswith("Spot: $")
