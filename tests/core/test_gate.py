"""The consent gate: the acknowledgement covers THIS advice's consent warnings for THIS
provider, and a re-advice voids it (advice made by the real advisor)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from comfyvn_gui.core.errors import ConflictError, InputError
from comfyvn_gui.core.gate import CONSENT_CODES, check_consent, consent_items
from comfyvn_gui.core.jobs import Job
from comfyvn_gui.core.workload import Workload
from tests.core.test_advisor import NO_GPU, p, run

DECIDED = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def job(advice: Any, *, status: str = "queued", provider: str | None = "runpod-eu") -> Job:
    w = Workload(kind="cg_super_res", items=4, residency=["eu"], licenses={"non_open_source": True})
    return Job(
        id=3,
        title="Moonlit — CG super-res",
        kind="cg_super_res",
        status=status,  # type: ignore[arg-type]
        workload=w,
        meta={
            "compute": {
                "provider": provider,
                "advice": advice.model_dump(mode="json"),
                "decided_at": DECIDED.isoformat(),
                "decided_by": "advisor",
            }
        },
        created_at=DECIDED,
        updated_at=DECIDED,
    )


def eu_advice() -> Any:
    return run(
        [p("runpod-eu", "runpod", meta={"hourly_usd": 0.4})],
        local=NO_GPU,
        health={"runpod-eu": "healthy"},
        residency=["eu"],
        licenses={"non_open_source": True},
    )


def test_the_consent_warnings_are_the_advices_own() -> None:
    advice = eu_advice()
    assert advice.choice == "runpod-eu"
    items = consent_items(advice.model_dump(mode="json"))
    codes = [i.code for i in items]
    assert "data_leaves_machine" in codes and "non_open_source_assets" in codes
    assert set(codes) <= set(CONSENT_CODES)
    assert all(i.message for i in items)
    informational = {w.code for w in advice.warnings} - set(CONSENT_CODES)
    assert not informational & set(codes)


def test_acknowledging_every_consent_code_lets_the_job_through() -> None:
    advice = eu_advice()
    codes = [i.code for i in consent_items(advice.model_dump(mode="json"))]
    ack = check_consent(
        job(advice),
        provider="runpod-eu",
        decided_at=DECIDED.isoformat(),
        acknowledge=codes,
        interface="cli",
    )
    assert ack.provider == "runpod-eu" and ack.codes == tuple(codes)
    assert ack.as_json() == {
        "provider": "runpod-eu",
        "decided_at": DECIDED.isoformat(),
        "codes": codes,
        "interface": "cli",
    }
    # the provider may be left out: the job's own
    assert (
        check_consent(
            job(advice), provider=None, decided_at=DECIDED, acknowledge=codes, interface="api"
        ).provider
        == "runpod-eu"
    )


def test_a_missing_acknowledgement_is_listed_with_the_advices_words() -> None:
    advice = eu_advice()
    items = consent_items(advice.model_dump(mode="json"))
    given = [i.code for i in items if i.code != "non_open_source_assets"]
    with pytest.raises(ConflictError) as info:
        check_consent(
            job(advice),
            provider="runpod-eu",
            decided_at=DECIDED,
            acknowledge=given,
            interface="cli",
        )
    words = next(i.message for i in items if i.code == "non_open_source_assets")
    assert info.value.message == (
        "job 3 sends data to runpod-eu only once you acknowledge 1 warning: "
        f"non_open_source_assets: {words}"
    )
    assert info.value.fields == ["acknowledge"]


def test_a_re_advice_or_another_provider_voids_the_acknowledgement() -> None:
    advice = eu_advice()
    codes = list(CONSENT_CODES)
    later = DECIDED + timedelta(seconds=1)
    with pytest.raises(ConflictError, match="changed since its warnings were shown") as info:
        check_consent(
            job(advice), provider="runpod-eu", decided_at=later, acknowledge=codes, interface="cli"
        )
    assert info.value.fields == ["decided_at"]
    with pytest.raises(
        ConflictError, match="is to run on runpod-eu, not vast-1: pick vast-1 first"
    ):
        check_consent(
            job(advice), provider="vast-1", decided_at=DECIDED, acknowledge=codes, interface="cli"
        )
    with pytest.raises(ConflictError, match="changed since"):
        check_consent(
            job(advice), provider="runpod-eu", decided_at=None, acknowledge=codes, interface="cli"
        )


def test_only_a_queued_job_with_a_provider_passes() -> None:
    advice = eu_advice()
    codes = list(CONSENT_CODES)
    with pytest.raises(ConflictError, match="is running, not queued"):
        check_consent(
            job(advice, status="running"),
            provider=None,
            decided_at=DECIDED,
            acknowledge=codes,
            interface="cli",
        )
    with pytest.raises(ConflictError, match="has no provider that can run it now"):
        check_consent(
            job(advice, provider=None),
            provider=None,
            decided_at=DECIDED,
            acknowledge=codes,
            interface="cli",
        )


def test_a_decision_whose_provider_is_no_longer_eligible_is_refused() -> None:
    # outside the zones: the advisor excludes it (a hand-edited queue kept it as the choice)
    advice = run(
        [p("aws-us", "aws", config={"region": "us-east-1"})],
        local=NO_GPU,
        health={"aws-us": "healthy"},
        residency=["eu"],
    )
    assert advice.choice is None
    alt = next(a for a in advice.alternatives if a.provider == "aws-us")
    forced = advice.model_copy(update={"choice": "aws-us", "chosen": alt})
    with pytest.raises(
        ConflictError, match=r"aws-us cannot run job 3: outside the allowed residency \(eu\)"
    ):
        check_consent(
            job(forced, provider="aws-us"),
            provider=None,
            decided_at=DECIDED,
            acknowledge=list(CONSENT_CODES),
            interface="cli",
        )


def test_an_unknown_code_is_bad_input() -> None:
    with pytest.raises(InputError, match="unknown consent code health_unknown; the codes"):
        check_consent(
            job(eu_advice()),
            provider=None,
            decided_at=DECIDED,
            acknowledge=["health_unknown"],
            interface="cli",
        )
