"""ComfyVN compatibility: the routes ComfyVN's own clients call, in its wire format.

A thin skin over the same service as every other route (the same advisor, registry, local
snapshot, token and Host guard); the translation is :mod:`comfyvn_gui.core.comfyvn_wire`.
The seed's routes keep the seed's shapes (docs/api.md, "ComfyVN compatibility").
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query
from pydantic import BaseModel, Field, ValidationError

from comfyvn_gui.core import comfyvn_wire as wire
from comfyvn_gui.core.advisor import Advice, AdviceRequest
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.input_errors import input_error
from comfyvn_gui.service import Service

__all__ = ["HealthListing", "ProvidersListing", "comfyvn_routes", "providers_listing"]

TAGS: list[str | Enum] = ["comfyvn"]


class ComfyAdvice(BaseModel):
    """``GET /compute/advise`` in ComfyVN's words."""

    ok: bool
    task: str
    size_mb: float | None
    choice: wire.Target = Field(description="gpu (this computer's) | remote | cpu")
    target: wire.Target = Field(description="The same as choice (ComfyVN reads either)")
    provider: str | None = Field(description="The provider id the advisor chose ('local' ...)")
    rationale: str
    estimated_cost: str | None
    override: str | None = Field(description="'cpu' when hardware_override asked for it")
    advice: Advice | None = Field(description="The whole advice (POST /compute/advise's)")


class GpuList(BaseModel):
    """``GET /api/gpu/list``: memory in MiB, utilisation in percent, as ComfyVN reads them."""

    ok: bool
    devices: list[dict[str, Any]]
    local: list[dict[str, Any]]
    policy: dict[str, Any]
    modes: list[str]
    driver_version: str | None
    note: str | None


class GpuPolicy(BaseModel):
    ok: bool
    policy: dict[str, Any]


class GpuAdviceRequest(BaseModel):
    """ComfyVN's ``POST /api/gpu/advise`` body (``workload`` in ComfyVN's words)."""

    prefer_remote: bool = False
    hardware_override: bool = False
    workload: dict[str, Any] | None = None


class GpuAdvice(BaseModel):
    ok: bool
    advice: dict[str, Any]


class GpuSelectRequest(BaseModel):
    """ComfyVN's ``POST /api/gpu/select`` body."""

    prefer: str | None = Field(None, description="A device id of gpu/list (cuda:0, cpu)")
    requirements: dict[str, Any] | None = Field(
        None, description="min_vram_gb (GB) or memory_min_mb (MiB) of free VRAM"
    )


class GpuSelection(BaseModel):
    ok: bool
    choice: dict[str, Any]
    policy: dict[str, Any]


class ProvidersListing(BaseModel):
    """``GET /api/providers``: ComfyVN's envelope around this app's provider entries."""

    ok: bool
    providers: list[dict[str, Any]] = Field(
        description="Provider entries (never their secrets), each with ComfyVN's kind (local "
        "| remote), service, priority and last_health; `active` keeps this app's meaning "
        "(validated here)"
    )
    templates: list[dict[str, Any]] = Field(description="The curated templates, in brief")


class HealthListing(BaseModel):
    """``GET /api/providers/health``: every result, and ``status`` for a single ``id``."""

    ok: bool = Field(description="Every check passed (valid or healthy)")
    results: list[dict[str, Any]] = Field(
        description="Check results, each with ComfyVN's ok, provider_id and ts (ms)"
    )
    status: dict[str, Any] | None = Field(
        None, description="The one provider's result, when one id was asked for"
    )


def _workload(build: Any) -> Any:
    try:
        return build()
    except ValidationError as exc:
        raise input_error(exc, "workload.") from None


def providers_listing(svc: Service) -> dict[str, Any]:
    """The registry in ComfyVN's listing shape (blocking: the registry and checks files)."""
    last = svc.last_results()
    rows = []
    for position, entry in enumerate(svc.list_providers()):
        try:
            profile = svc.template(entry.template_id)
        except InputError:
            profile = None
        results = last.get(entry.id, {})
        result = results.get("health") or results.get("validate")
        rows.append(wire.provider_row(entry.model_dump(mode="json"), profile, result, position))
    rows.sort(key=lambda r: (r["priority"], r["id"]))
    return {
        "ok": True,
        "providers": rows,
        "templates": [wire.template_row(t) for t in svc.templates()],
    }


def comfyvn_routes(app: FastAPI, svc: Service) -> None:
    loop = asyncio.get_running_loop

    @app.get("/compute/advise", tags=TAGS, response_model=ComfyAdvice)
    async def advise_query(
        task: Annotated[
            str,
            Query(
                max_length=64,
                description="img (image generation) | tts (voice synthesis) | export (no "
                "GPU), or one of this app's workload kinds",
            ),
        ] = "img",
        size: Annotated[
            str | None,
            Query(max_length=32, description="Input size: MB, or with gb / mb / kb (1024mb)"),
        ] = None,
        prefer_remote: Annotated[
            bool, Query(description="Use a LAN, SSH or cloud GPU when one can run it")
        ] = False,
        hardware_override: Annotated[
            bool, Query(description="Answer cpu; the advice still says what would have run")
        ] = False,
    ) -> Any:
        """ComfyVN's advice query: the same advisor as `POST /compute/advise` (which keeps the
        seed's shape), answered as `{ok, target: gpu|remote|cpu, choice, rationale, ...}`."""
        size_mb = wire.parse_size_mb(size)
        if task in wire.CPU_TASKS:
            return wire.advice_answer(task, size_mb, None, override=hardware_override)
        workload = _workload(
            lambda: wire.workload_from_query(task, size_mb, prefer_remote=prefer_remote)
        )
        advice = await loop().run_in_executor(
            svc.io_pool, svc.advise, AdviceRequest(workload=workload)
        )
        return wire.advice_answer(task, size_mb, advice, override=hardware_override)

    @app.get("/api/gpu/list", tags=TAGS, response_model=GpuList)
    async def gpu_list(
        refresh: Annotated[bool, Query(description="Read NVML now (default)")] = True,
    ) -> Any:
        """This computer's GPUs as ComfyVN lists them (`GET /api/gpu/local` has this app's
        own shape)."""
        snapshot = await loop().run_in_executor(
            svc.io_pool, lambda: svc.local_snapshot(fresh=refresh)
        )
        return wire.gpu_list(snapshot)

    @app.get("/api/gpu/policy", tags=TAGS, response_model=GpuPolicy)
    def gpu_policy() -> Any:
        """ComfyVN's GPU policy: always `auto` here (the advisor picks per job)."""
        return {"ok": True, "policy": wire.gpu_policy()}

    @app.post("/api/gpu/advise", tags=TAGS, response_model=GpuAdvice)
    async def gpu_advise(body: Annotated[GpuAdviceRequest, Body()]) -> Any:
        """ComfyVN's recommendation for a workload in its words: `choice` gpu | remote | cpu,
        `reason`, `local_candidate`, `remote_candidate`, `override` ..."""
        workload, read = _workload(
            lambda: wire.workload_from_comfyvn(body.workload, prefer_remote=body.prefer_remote)
        )

        def advise() -> dict[str, Any]:
            snapshot = svc.local_snapshot()
            advice = svc.advise(AdviceRequest(workload=workload, local=snapshot))
            rows = {r["id"]: r for r in providers_listing(svc)["providers"]}
            return wire.gpu_advice_answer(
                advice,
                snapshot,
                body.workload or {},
                read,
                rows,
                override=body.hardware_override,
            )

        return await loop().run_in_executor(svc.io_pool, advise)

    @app.post("/api/gpu/select", tags=TAGS, response_model=GpuSelection)
    async def gpu_select(body: Annotated[GpuSelectRequest, Body()]) -> Any:
        """The local device a ComfyVN job would use now (records nothing)."""
        req = body.requirements or {}
        need = req.get("min_vram_gb")
        if need is None and req.get("memory_min_mb") is not None:
            need = wire.mib_to_gb(req["memory_min_mb"], "requirements.memory_min_mb")
        elif need is not None:
            need = wire.checked_gb(need, "requirements.min_vram_gb")
        snapshot = await loop().run_in_executor(svc.io_pool, svc.local_snapshot)
        choice = wire.select_device(snapshot, prefer=body.prefer, min_vram_gb=need)
        return {"ok": True, "choice": choice, "policy": wire.gpu_policy()}

    @app.get("/api/providers/list", tags=TAGS, response_model=ProvidersListing)
    async def providers_list() -> Any:
        """The same as `GET /api/providers` (ComfyVN's editor asks here)."""
        return await loop().run_in_executor(svc.io_pool, providers_listing, svc)
