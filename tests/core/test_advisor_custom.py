"""The advisor and a custom ComfyUI endpoint: priced by its own hourly price and billing
increment, sized by its own VRAM, placed in its own residency zones (docs/advisor.md).

The random properties (test_advisor_properties.py) cover custom endpoints too; here each rule by
example, with the arithmetic written out.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from comfyvn_gui.core.advisor import AdviceProvider, AdvisorSettings, advise, parse_request
from comfyvn_gui.core.catalog import load_catalog
from comfyvn_gui.core.checks import LocalSnapshot
from comfyvn_gui.core.workload import Requirements, Workload

CATALOG = load_catalog()
NO_GPU = LocalSnapshot(source="none", note="no NVIDIA driver found: jobs run on remote providers")


def custom(pid: str, **config: Any) -> AdviceProvider:
    extra = {k: config.pop(k) for k in ("reported_vram_gb", "reported_gpu", "meta") if k in config}
    terms = {
        "endpoint": "https://comfy.example.net",
        "hourly_usd": "0.40",
        "zones": "eu",
        "vram_gb": "24",
    }
    return AdviceProvider(
        id=pid,
        template_id="custom",
        name=pid,
        active=True,
        config={k: v for k, v in {**terms, **config}.items() if v is not None},
        **extra,
    )


def runpod(pid: str = "rp") -> AdviceProvider:
    return AdviceProvider(id=pid, template_id="runpod", name=pid, active=True)


def run(providers: list[AdviceProvider], *, vram: float = 12, hours: float = 1.0, **w: Any) -> Any:
    workload = Workload(**{"kind": "cg_super_res", **w})
    req = Requirements(vram_gb=vram, gpu_hours=hours, source="explicit")
    return advise(workload, req, providers, {}, NO_GPU, AdvisorSettings(), CATALOG)


def alt(advice: Any, pid: str) -> Any:
    if advice.chosen is not None and advice.chosen.provider == pid:
        return advice.chosen
    [found] = [a for a in advice.alternatives if a.provider == pid]
    return found


def codes(advice: Any, pid: str) -> set[str]:
    return {w.code for w in advice.warnings if w.provider == pid}


def test_priced_by_its_own_hourly_price_and_billing_increment() -> None:
    # 0.5 reference GPU-hours on an unknown GPU (throughput 1): 30 minutes. Billed per started
    # hour with no minimum: 60 min at $0.40/hr = $0.40.
    box = custom("box", hourly_usd="0.40", billing_increment_minutes="60")
    advice = run([box], hours=0.5)
    assert advice.choice == "box"
    chosen = advice.chosen
    assert chosen is not None and chosen.kind == "custom"
    assert (chosen.hourly_usd, chosen.price_source) == (0.40, "config")
    assert (chosen.billing_increment_minutes, chosen.billing_minimum_minutes) == (60, 0)
    assert (chosen.estimated_minutes, chosen.billed_minutes) == (30, 60)
    assert math.isclose(advice.estimated_cost_usd, 0.40, rel_tol=1e-12)
    assert "$0.40/hr billed per hour" in advice.reason


def test_its_minimum_charge_and_per_minute_default() -> None:
    # 6 minutes: per minute by default (6 billed), with a 15 minute minimum (15 billed).
    plain = custom("plain", hourly_usd="1.2")
    floor = custom("floor", hourly_usd="1.2", billing_minimum_minutes="15")
    advice = run([plain, floor], hours=0.1)
    assert advice.choice == "plain"
    assert math.isclose(advice.estimated_cost_usd, 1.2 * 6 / 60, rel_tol=1e-12)
    other = alt(advice, "floor")
    assert other.billed_minutes == 15
    assert math.isclose(other.estimated_cost_usd, 1.2 * 15 / 60, rel_tol=1e-12)


def test_the_cheapest_wins_against_the_catalog_providers() -> None:
    # RunPod: $0.46/hr per second; the custom box $0.20/hr per minute.
    advice = run([runpod(), custom("box", hourly_usd="0.2")], hours=1.0)
    assert advice.choice == "box" and advice.decided_by == "cheapest"
    assert alt(advice, "rp").note is not None and "more than box" in alt(advice, "rp").note
    pricey = run([runpod(), custom("box", hourly_usd="5")], hours=1.0)
    assert pricey.choice == "rp"


def test_a_meta_price_overrides_the_stated_one_and_a_ceiling_caps_it() -> None:
    live = run([custom("box", meta={"hourly_usd": 0.9})], hours=1.0)
    assert (live.chosen.hourly_usd, live.chosen.price_source) == (0.9, "meta")
    capped = run([custom("box", meta={"price_ceiling_usd": 0.1})], hours=1.0)
    assert (capped.chosen.hourly_usd, capped.chosen.price_source) == (0.1, "price_ceiling")


def test_no_stated_price_ranks_last_is_over_any_budget_and_says_how_to_fix() -> None:
    unpriced = custom("box", hourly_usd=None)
    advice = run([unpriced, runpod()], hours=1.0)
    assert advice.choice == "rp"
    assert alt(advice, "box").hourly_usd is None and alt(advice, "box").eligible
    alone = run([unpriced], hours=1.0)
    [warning] = [w for w in alone.warnings if w.code == "price_unknown"]
    assert "set its Price per hour (config.hourly_usd)" in warning.message
    budget = run([unpriced], hours=1.0, budget_usd=100)
    assert budget.choice is None
    assert "no known price" in (alt(budget, "box").excluded_because or "")


def test_over_budget_is_skipped() -> None:
    advice = run([custom("box", hourly_usd="3")], hours=1.0, budget_usd=1.0)
    assert advice.choice is None
    assert alt(advice, "box").excluded_because == "over budget ($3.00 > $1.00)"
    assert "over_budget_skipped" in codes(advice, "box")


def test_filtered_by_its_stated_vram() -> None:
    small = custom("small", vram_gb="8")
    big = custom("big", vram_gb="24", hourly_usd="0.9")
    advice = run([small, big], vram=12)
    assert advice.choice == "big"
    assert alt(advice, "small").excluded_because == (
        "insufficient VRAM (8GB as you stated it < 12GB required for CG super-res)"
    )
    assert alt(advice, "big").vram_gb == 24


def test_the_reported_vram_counts_when_lower_or_nothing_is_stated() -> None:
    overstated = custom("box", vram_gb="48", reported_vram_gb=12.0)
    advice = run([overstated], vram=16)
    assert advice.choice is None
    assert alt(advice, "box").excluded_because == (
        "insufficient VRAM (12GB reported by its last health check, although you stated 48GB "
        "< 16GB required for CG super-res)"
    )
    reported = run(
        [custom("box", vram_gb=None, reported_vram_gb=24.0, reported_gpu="RTX 4090")], vram=16
    )
    assert reported.choice == "box"
    assert (reported.chosen.vram_gb, reported.chosen.gpu) == (24, "RTX 4090")
    floor = run([custom("box", vram_gb=None)], vram=16)
    assert "the profile's floor" in (alt(floor, "box").excluded_because or "")


def test_a_named_gpu_sets_its_speed() -> None:
    # The RTX 4090 is faster than the A10G reference: fewer minutes than an unnamed GPU.
    named = run([custom("box", gpu_name="RTX 4090")], hours=1.0)
    unnamed = run([custom("box")], hours=1.0)
    spec = CATALOG.gpu("RTX 4090")
    assert spec is not None and spec.relative_throughput > 1
    assert named.chosen.gpu == "RTX 4090"
    assert named.chosen.estimated_minutes == pytest.approx(60 / spec.relative_throughput, abs=0.05)
    assert unnamed.chosen.estimated_minutes == 60


def test_a_job_requiring_eu_residency_excludes_a_us_endpoint_with_a_clear_reason() -> None:
    us = custom("us-box", zones="us", hourly_usd="0.1")
    eu = custom("eu-box", zones="eu", hourly_usd="0.5")
    advice = run([us, eu], residency=["eu"])
    assert advice.choice == "eu-box"
    assert alt(advice, "us-box").excluded_because == (
        "outside the allowed residency (eu): you stated it runs in us"
    )
    assert alt(advice, "us-box").zones == ["us"]
    nothing = run([us], residency=["eu"])
    assert nothing.choice is None
    assert "us-box: outside the allowed residency (eu)" in nothing.reason


def test_no_stated_zones_cannot_satisfy_a_residency_rule() -> None:
    box = custom("box", zones=None)
    assert run([box]).choice == "box"  # no rule: fine
    advice = run([box], residency=["eu"])
    assert advice.choice is None
    assert alt(advice, "box").excluded_because == (
        "residency cannot be confirmed: it states no residency zones (set its Residency zones, "
        "config.zones)"
    )


def test_a_remote_endpoint_warns_that_data_leaves_the_machine() -> None:
    box = custom("box", zones="eu, us")
    advice = run([box], residency=["eu"], licenses={"non_open_source": True})
    assert advice.choice == "box"
    assert {"data_leaves_machine", "residency", "non_open_source_assets"} <= codes(advice, "box")
    [leaves] = [w for w in advice.warnings if w.code == "data_leaves_machine"]
    assert "processed in the zones you stated for it (eu, us)" in leaves.message
    [residency] = [w for w in advice.warnings if w.code == "residency"]
    assert "also outside eu (us)" in residency.message
    voice = run([box], kind="voice_synthesis")
    assert "dpia" in codes(voice, "box")


def test_an_on_prem_endpoint_keeps_data_on_the_premises() -> None:
    box = custom("box", zones="on_prem", hourly_usd="0")
    advice = run([box, runpod()], residency=["eu"], licenses={"non_open_source": True})
    assert advice.choice == "box"
    assert advice.decided_by == "cost_free_on_prem"
    assert "runs it on-prem at no cost" in advice.reason
    mine = codes(advice, "box")
    assert not mine & {"data_leaves_machine", "residency", "non_open_source_assets", "dpia"}
    assert alt(advice, "rp").note == "the on-prem node box runs it at no cost"


def test_a_priced_on_prem_endpoint_is_ranked_by_cost_without_egress_warnings() -> None:
    box = custom("box", zones="on_prem", hourly_usd="0.9")
    advice = run([box, runpod()], hours=1.0, residency=["eu"])
    assert advice.choice == "rp"  # cheaper: $0.46/hr
    assert alt(advice, "box").eligible  # on-prem satisfies any residency
    alone = run([box], hours=1.0, residency=["eu"])
    assert alone.choice == "box" and alone.decided_by == "cheapest"
    assert "data_leaves_machine" not in codes(alone, "box")


def test_a_free_remote_endpoint_still_warns() -> None:
    box = custom("box", zones="us", hourly_usd="0")
    advice = run([box, runpod()])
    assert advice.choice == "box" and advice.decided_by == "cheapest"
    assert advice.estimated_cost_usd == 0
    assert "data_leaves_machine" in codes(advice, "box")


def test_a_what_if_request_with_a_custom_entry() -> None:
    request = parse_request(
        {
            "workload": {"kind": "comfyui_workflow", "vram_gb": 10, "gpu_hours": 2},
            "local": {"gpus": []},
            "providers": [
                {
                    "id": "friend",
                    "template_id": "custom",
                    "name": "Friend's box",
                    "active": True,
                    "config": {"hourly_usd": "0.25", "zones": "uk", "vram_gb": "16"},
                }
            ],
        },
        CATALOG,
    )
    assert request.providers is not None
    req = Requirements(vram_gb=10, gpu_hours=2, source="explicit")
    providers, local = request.providers, request.local or NO_GPU
    advice = advise(request.workload, req, providers, {}, local, AdvisorSettings(), CATALOG)
    assert advice.choice == "friend"
    assert math.isclose(advice.estimated_cost_usd, 0.25 * 120 / 60, rel_tol=1e-12)
