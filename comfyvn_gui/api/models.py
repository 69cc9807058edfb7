"""Bodies that exist only on the HTTP API (the shared objects come from ``core``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from comfyvn_gui.core.jobs import Job, JobEvent
from comfyvn_gui.core.models import ImportPlan
from comfyvn_gui.core.prices import Offer


class ErrorDetail(BaseModel):
    code: str = Field(
        description="invalid_input | not_found | conflict | unauthorized | forbidden | "
        "payload_too_large | method_not_allowed | operation_failed | internal_error"
    )
    message: str = Field(description="What went wrong, where, and how to fix it")
    fields: list[str] = Field(
        default_factory=list, description="The fields to fix, as dotted paths into the request"
    )


class ErrorResponse(BaseModel):
    """Every error of the API: ``{"error": {"code", "message", "fields"}}``."""

    error: ErrorDetail


class Removed(BaseModel):
    removed: list[str] = Field(description="Ids of the providers removed (with their secrets)")


class ImportRequest(BaseModel):
    """``POST /api/providers/import``: an export document (or ``{"providers": [...]}``), or
    ``{"export": {...}}``, with the merge flags beside it."""

    model_config = ConfigDict(extra="allow")

    providers: list[dict[str, Any]] | None = Field(
        None, description="Provider entries (secrets in `secrets` or `config`)"
    )
    export: dict[str, Any] | None = Field(
        None, description="A whole export document, instead of `providers`"
    )
    replace: bool = Field(
        False, description="Remove every provider not built in first (a backup is kept)"
    )
    overwrite: bool = Field(True, description="Update providers whose id exists (else skip them)")
    dry_run: bool = Field(False, description="Only say what the import would do")


class ImportOutcome(BaseModel):
    dry_run: bool
    imported: list[str] = Field(description="Ids added or updated (none on a dry run)")
    plan: ImportPlan


class JobDetail(Job):
    """One job with its audit trail."""

    events: list[JobEvent]


class PickRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(
        description="The provider to run the job on; null: back to the advisor's choice"
    )


class DispatchRequest(BaseModel):
    """``POST /api/jobs/{id}/dispatch``: the provider and advice the user reviewed, and the
    consent warnings they acknowledged (docs/architecture.md, "Dispatch")."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(description="The job's provider, as the job shows it")
    decided_at: datetime = Field(
        description="The advice's decision time (`meta.compute.decided_at`) as the job shows it"
    )
    acknowledge: list[str] = Field(
        default_factory=list,
        description="The consent codes acknowledged: every one of the advice's "
        "(`GET /api/jobs/{id}/consent`)",
    )
    project_dir: str | None = Field(
        None, description="The absolute folder the job's input files are under (default: import's)"
    )
    dry_run: bool = Field(
        False,
        description="Check everything (the gate included) but send nothing and change nothing",
    )


class ConsentWarning(BaseModel):
    code: str = Field(description="The consent code to acknowledge")
    message: str


class JobOutputs(BaseModel):
    job: int
    status: str
    folder: str | None = Field(description="Where the outputs are, with outputs.json")
    outputs: list[dict[str, Any]] = Field(
        description="Each output: file (in the folder), sha256, bytes, run, node"
    )


class RunningResource(BaseModel):
    provider: str
    ref: str = Field(description="provider:id, what POST /api/running/{ref}/stop takes")
    kind: str = Field(description="machine, pod, ssh_key, startup_script, volume, serverless_run")
    name: str
    job_id: int | None
    state: str = Field(
        description="in_use, orphan (no job owns it), leaked (its job ended "
        "but it was not released), standing (kept on purpose: a cache volume)"
    )
    status: str
    age_s: float | None
    hourly_usd: float | None
    cost_so_far_usd: float | None
    monthly_usd: float | None
    console_url: str | None


class RunningError(BaseModel):
    provider: str
    message: str = Field(description="Why the provider's resources could not be listed")


class RunningListing(BaseModel):
    resources: list[RunningResource]
    errors: list[RunningError] = Field(
        description="Providers that could not be listed (never shown as an empty list)"
    )
    orphans: int = Field(description="How many resources are orphans or leaked")


class OffersListing(BaseModel):
    offers: list[Offer] = Field(description="Cheapest first")


class PriceRefresh(BaseModel):
    provider: str
    ok: bool = Field(description="Live prices were fetched and kept")
    offers: int = Field(description="How many offers came back")
    error: str | None = Field(None, description="Why the refresh failed (the catalog is used)")


class PricesRefreshed(BaseModel):
    refreshed: list[PriceRefresh]


class RunningStopped(BaseModel):
    stopped: list[RunningResource]


class JobRemoved(BaseModel):
    removed: int = Field(description="The id of the job removed (its trail and outputs stay)")


class SettingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(None, description="Only on POST /api/settings: the setting's key")
    value: Any = Field(description="The new value (typed JSON, or a string as on the CLI)")
