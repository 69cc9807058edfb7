"""The local HTTP API (docs/architecture.md, "HTTP API"): a thin FastAPI skin over :class:`Service`.

Every rule lives in the service and ``core``; a route only moves JSON in and out. Bodies that
the service parses itself (provider entries, workloads, advice requests, importer summaries)
reach it as the client sent them, so the API and the command line give the same errors, and the
OpenAPI document describes them with the same pydantic models as ``docs/schemas``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from enum import Enum
from typing import Annotated, Any

from fastapi import Body, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from comfyvn_gui import __version__
from comfyvn_gui.core import comfyvn_wire as wire
from comfyvn_gui.core.advisor import Advice, AdviceRequest, input_error_from
from comfyvn_gui.core.catalog import RESIDENCY_ZONES, ProviderProfile
from comfyvn_gui.core.checks import CheckResult, LocalSnapshot
from comfyvn_gui.core.errors import (
    ComfyVNError,
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
)
from comfyvn_gui.core.jobs import MAX_JOB_ID, Job
from comfyvn_gui.core.models import ExportDocument, ProviderEntry, ProviderInput
from comfyvn_gui.core.summary import ImportSummary
from comfyvn_gui.core.workload import Workload
from comfyvn_gui.service import Service

from .comfyvn import HealthListing, ProvidersListing, comfyvn_routes, providers_listing
from .guard import Guard, error_object, is_loopback_ip
from .models import (
    ConsentWarning,
    DispatchRequest,
    ErrorResponse,
    ImportOutcome,
    ImportRequest,
    JobDetail,
    JobOutputs,
    JobRemoved,
    OffersListing,
    PickRequest,
    PricesRefreshed,
    Removed,
    RunningListing,
    RunningStopped,
    SettingRequest,
)

#: Set to 1 to honour ``include_secrets=true`` for clients on other machines (the seed's rule).
ALLOW_SECRET_EXPORT_ENV = "COMFYVN_ALLOW_SECRET_EXPORT"


#: Errors any route may answer (documented on each, so clients and schemathesis know them).
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": why}
    for status, why in (
        (400, "Malformed request (not JSON, no Host header ...)"),
        (401, "Missing or wrong bearer token"),
        (403, "Host not allowed, or a secret export from another machine"),
        (404, "No such provider, job or setting"),
        (405, "Method not allowed"),
        (
            409,
            "Conflict (the id is taken; the job is not in a status that allows it or its "
            "consent warnings were not all acknowledged; the provider has work in flight)",
        ),
        (413, "Request body too large"),
        (422, "A field is invalid: `fields` names it"),
        (503, "The operation could not be carried out (keyring locked, disk full ...)"),
    )
}

#: Raw bodies the service parses, and the models that document them.
_BODY_MODELS: dict[str, type[BaseModel]] = {}
_IN = "{model}In"


def _body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """``openapi_extra`` describing a raw JSON body with ``model``'s schema."""
    _BODY_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{_IN.format(model=model.__name__)}"}
                }
            },
        }
    }


def _status_of(exc: ComfyVNError, request: Request) -> int:
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, NotFoundError):
        # A path's own id not found is 404; a body naming something unknown is a bad field.
        return 404 if request.path_params else 422
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, InputError):
        return 422 if exc.fields else 400
    return 503


def _error(status: int, code: str, message: str, fields: list[str] | None = None) -> JSONResponse:
    """The error object. Messages are written never to hold a secret (core's rule, checked by
    canary tests), so they are not passed through ``redact``, which would also mask words
    such as "unknown field" after a field named ``api_key``; the guard redacts the text of
    unexpected exceptions, whose origin is unknown."""
    return JSONResponse(error_object(code, message, fields), status_code=status)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            where = err.get("ctx", {}).get("error") or err.get("msg", "")
            return _error(
                400, "invalid_input", f"the request body is not valid JSON ({where}); send JSON"
            )
    cleaned = []
    for err in errors:
        loc = tuple(err.get("loc") or ())
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        if not loc and err.get("type") == "missing":
            cleaned.append({**err, "loc": ("body",), "msg": "the request needs a JSON body"})
            continue
        cleaned.append({**err, "loc": loc})
    problem = input_error_from(cleaned)
    return _error(422, problem.code, problem.message, problem.fields)


def create_app(
    service: Service,
    *,
    token: str,
    bind_host: str = "127.0.0.1",
    monitor: bool = False,
) -> FastAPI:
    """The API of ``service``'s home. ``monitor`` runs the periodic health monitor while the
    app runs (``comfyvn-gui serve`` does; it skips what other processes checked recently)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(service.monitor.run_forever(stop)) if monitor else None
        if monitor:  # (`serve`: jobs left in flight by a restart are driven again)
            await asyncio.get_running_loop().run_in_executor(None, service.resume_dispatch)
            orphans = asyncio.get_running_loop().run_in_executor(None, _warn_orphans, service)
        try:
            yield
        finally:
            stop.set()
            if monitor:
                with contextlib.suppress(Exception):
                    await orphans
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await asyncio.get_running_loop().run_in_executor(None, service.close)

    app = FastAPI(
        title="comfyvn-gui",
        version=__version__,
        summary="Remote GPU providers, compute advice and importer jobs of one ComfyVN home.",
        description=(
            "Every route needs `Authorization: Bearer TOKEN` (the token is kept in the home's "
            '`config/api-token`). Errors are `{"error": {"code", "message", "fields"}}`.'
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.add_middleware(
        Guard,
        token=token,
        token_file=str(service.home.api_token_file),
        bind_host=bind_host,
    )

    @app.exception_handler(ComfyVNError)
    async def domain_error(request: Request, exc: ComfyVNError) -> JSONResponse:
        return _error(_status_of(exc, request), exc.code, exc.message, exc.fields)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "invalid_input")
        message = {
            404: f"no route {request.url.path!r}; the routes are listed in /openapi.json",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        response = _error(exc.status_code, code, message)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return response

    comfyvn_routes(app, service)  # (first: /api/providers/list before /api/providers/{id})
    _provider_routes(app, service)
    _advice_routes(app, service)
    _job_routes(app, service)
    _settings_routes(app, service)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method this path's routes take (Starlette names only the first route's). A literal
    path (``/api/providers/create``) is its own resource, even where a templated route
    (``/api/providers/{provider_id}``) would also match it."""
    from starlette.routing import Match, Route

    literal: set[str] = set()
    templated: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": next(iter(route.methods))})
            if match == Match.FULL:
                (templated if route.param_convertors else literal).update(route.methods)
    return sorted(literal or templated)


def _openapi(app: FastAPI) -> Any:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        models = components.setdefault("schemas", {})
        for name, model in _BODY_MODELS.items():
            doc = model.model_json_schema(ref_template=f"#/components/schemas/{_IN}")
            for def_name, definition in doc.pop("$defs", {}).items():
                models.setdefault(_IN.format(model=def_name), definition)
            models.setdefault(_IN.format(model=name), doc)
        components["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "The token in the home's config/api-token",
            }
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    return openapi


# -- providers ---------------------------------------------------------------------------------


def _provider_routes(app: FastAPI, svc: Service) -> None:
    tags: list[str | Enum] = ["providers"]

    @app.get("/api/providers/templates", tags=tags, response_model=list[ProviderProfile])
    def templates() -> Any:
        """The curated provider catalog: auth fields, GPU, price, policy, zones."""
        return svc.templates()

    @app.get("/api/providers", tags=tags, response_model=ProvidersListing)
    def providers() -> Any:
        """The registered providers (never their secrets: `secrets_set` names them), in
        ComfyVN's envelope `{ok, providers, templates}` (docs/api.md, "ComfyVN
        compatibility")."""
        return providers_listing(svc)

    @app.get("/api/providers/health", tags=tags, response_model=HealthListing)
    async def health(
        id: Annotated[
            list[str] | None, Query(description="Providers to check (default: every enabled one)")
        ] = None,
        cached: Annotated[
            bool, Query(description="Only the last recorded results; contacts no provider")
        ] = False,
    ) -> Any:
        """Health-check providers now (as `comfyvn-gui providers health`), or their last
        results: `{ok, results}`, and `status` (that provider's result) when one `id` is
        asked for, as ComfyVN reads it."""
        one = id[0] if id and len(set(id)) == 1 else None
        if cached:
            last = await asyncio.get_running_loop().run_in_executor(svc.io_pool, svc.last_results)
            wanted = set(id or [])
            results = [
                r["health"]
                for pid, r in last.items()
                if "health" in r and (not wanted or pid in wanted)
            ]
        else:
            results = await svc.check("health", id or None)
        return wire.health_answer(results, one)

    @app.get(
        "/api/providers/export",
        tags=tags,
        response_class=JSONResponse,
        responses={200: {"model": ExportDocument, "description": "The export document"}},
    )
    def export(
        request: Request,
        include_secrets: Annotated[
            bool,
            Query(
                description="Include credentials in `secrets` (only for a client on this "
                f"machine, or with {ALLOW_SECRET_EXPORT_ENV}=1 set for the server)"
            ),
        ] = False,
    ) -> Any:
        """The registry as an export document; secrets stripped unless asked for."""
        if (
            include_secrets
            and not is_loopback_ip(request.client.host if request.client else "")
            and os.environ.get(ALLOW_SECRET_EXPORT_ENV) != "1"
        ):
            raise ForbiddenError(
                "include_secrets=true is honoured only for a client on this machine, or when "
                f"the server was started with {ALLOW_SECRET_EXPORT_ENV}=1; nothing was exported",
                fields=["include_secrets"],
            )
        # As the CLI writes it: without include_secrets no entry has a `secrets` key at all.
        return JSONResponse(svc.export_providers(include_secrets=include_secrets))

    @app.post(
        "/api/providers/create",
        tags=tags,
        status_code=201,
        response_model=ProviderEntry,
        openapi_extra=_body(
            ProviderInput,
            "A provider from a curated template: `template_id`, and optionally `id`, `name`, "
            "`base_url`, `gpu`, `config` (secret fields may come here, as the seed's example "
            "sends `config.api_key`, or in `secrets`; they go to the OS keyring), `meta`.",
        ),
    )
    def create(payload: Annotated[Any, Body()]) -> Any:
        """Instantiate a provider from a template (the seed's `create`)."""
        if not isinstance(payload, Mapping):
            raise InputError("the body must be a JSON object (a provider entry)", fields=["body"])
        template_id = payload.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            raise InputError(
                "template_id: required: name a template of GET /api/providers/templates",
                fields=["template_id"],
            )
        return svc.create_provider(template_id, payload)

    @app.post(
        "/api/providers/register",
        tags=tags,
        response_model=ProviderEntry,
        responses={201: {"model": ProviderEntry, "description": "Created"}},
        openapi_extra=_body(
            ProviderInput,
            "Create or update a provider entry. A secret field set to null is cleared; an "
            "absent one is kept.",
        ),
    )
    def register(payload: Annotated[Any, Body()], response: Response) -> Any:
        """Create (201) or update (200) a provider from a whole entry. A provider definition
        in ComfyVN's shape (`kind`, `service`, `endpoint`, `priority` ..., no `template_id`)
        is mapped onto a template and answered as ComfyVN reads it: 200 `{ok, provider}`."""
        if isinstance(payload, Mapping) and wire.is_comfyvn_provider(payload):
            profile = svc.template(wire.template_of(payload))
            entry, _created = svc.register_provider(wire.provider_input(payload, profile))
            rows = providers_listing(svc)["providers"]
            row = next(r for r in rows if r["id"] == entry.id)
            return JSONResponse({"ok": True, "provider": row})
        entry, created = svc.register_provider(payload)
        response.status_code = 201 if created else 200
        return entry

    @app.delete("/api/providers/remove/{provider_id}", tags=tags, response_model=Removed)
    def remove(provider_id: str) -> Any:
        """Remove a provider and its stored secrets (the local provider cannot be removed)."""
        return Removed(removed=[svc.remove_provider(provider_id).id])

    @app.post("/api/providers/import", tags=tags, response_model=ImportOutcome)
    def import_(
        body: ImportRequest,
        replace: Annotated[bool | None, Query(description="As the body's `replace`")] = None,
        overwrite: Annotated[bool | None, Query(description="As the body's `overwrite`")] = None,
        dry_run: Annotated[bool | None, Query(description="As the body's `dry_run`")] = None,
    ) -> Any:
        """Import an export (all or nothing). Imported providers are not active until
        validated on this machine. `replace`, `overwrite` and `dry_run` may be given in the
        body or as query parameters (`?overwrite=false`); given in both, they must agree."""
        flags = {"replace": replace, "overwrite": overwrite, "dry_run": dry_run}
        sent = body.model_fields_set
        for name, value in flags.items():
            if value is None:
                continue
            if name in sent and getattr(body, name) != value:
                raise InputError(
                    f"{name} is {str(getattr(body, name)).lower()} in the body but "
                    f"{str(value).lower()} in the query; give it once",
                    fields=[name],
                )
            setattr(body, name, value)
        if body.export is not None:
            data: Any = body.export
        else:
            data = {
                k: v
                for k, v in body.model_dump(exclude_unset=True).items()
                if k not in ("replace", "overwrite", "dry_run", "export")
            }
            if "providers" not in data:
                raise InputError(
                    "the body needs `providers` (a list of provider entries) or `export` "
                    "(an export document)",
                    fields=["providers"],
                )
        if body.dry_run:
            plan = svc.plan_import(data, replace=body.replace, overwrite=body.overwrite)
            return ImportOutcome(dry_run=True, imported=[], plan=plan)
        report = svc.import_providers(data, replace=body.replace, overwrite=body.overwrite)
        return ImportOutcome(dry_run=False, imported=list(report.imported), plan=report.plan)

    @app.post("/api/providers/{provider_id}/validate", tags=tags, response_model=CheckResult)
    async def validate(provider_id: str) -> Any:
        """Validate a provider's credentials against its real API now (`valid` activates it)."""
        [result] = await svc.check("validate", [provider_id])
        return result

    @app.get("/api/providers/{provider_id}", tags=tags, response_model=ProviderEntry)
    def provider(provider_id: str) -> Any:
        """One provider (secrets never: `secrets_set` names the stored ones)."""
        return svc.get_provider(provider_id)


# -- advice ------------------------------------------------------------------------------------


def _advice_routes(app: FastAPI, svc: Service) -> None:
    @app.post(
        "/compute/advise",
        tags=["advice"],
        response_model=Advice,
        openapi_extra=_body(
            AdviceRequest,
            "The same request as `comfyvn-gui advise --request`: a `workload`, and optionally "
            "`local`, `health` and `providers` to replace the live ones (a what-if).",
        ),
    )
    def advise(payload: Annotated[Any, Body()]) -> Any:
        """Where a workload should run, at what cost, and why (records nothing)."""
        return svc.advise(payload)

    @app.get("/api/offers", tags=["advice"], response_model=OffersListing)
    def offers(
        vram: Annotated[
            float | None, Query(ge=0, le=4096, description="At least this VRAM per GPU (GB)")
        ] = None,
        gpu: Annotated[
            str | None, Query(max_length=100, description="This GPU (A100 matches 40 and 80 GB)")
        ] = None,
        zone: Annotated[
            str | None, Query(max_length=20, description="In this residency zone")
        ] = None,
        max_price: Annotated[float | None, Query(ge=0, description="At most this $/hr")] = None,
        spot: Annotated[bool, Query(description="Include interruptible offers")] = False,
    ) -> Any:
        """Every offer across your providers (live where kept, else the catalog's) and the
        templates not added yet (`configured` false), cheapest first; answered from the home
        and the catalog (`POST /api/offers/refresh` fetches live prices)."""
        if zone is not None and zone not in RESIDENCY_ZONES:
            raise InputError(
                f"zone {zone!r} is not a residency zone; use one of "
                + ", ".join(sorted(RESIDENCY_ZONES)),
                fields=["zone"],
            )
        found = svc.offers(vram_gb=vram, gpu=gpu, zone=zone, max_price=max_price, spot=spot)
        return {"offers": [o.model_dump(mode="json") for o in found]}

    @app.post("/api/offers/refresh", tags=["advice"], response_model=PricesRefreshed)
    async def refresh_offers(
        ids: Annotated[
            list[str] | None,
            Query(
                alias="id",
                description="Providers to refresh (default: every one with a live price source)",
            ),
        ] = None,
    ) -> Any:
        """Fetch live prices from the providers now (with the stored credentials) and keep
        them; the queue is re-advised with them."""
        records = await svc.refresh_prices(ids)
        return {
            "refreshed": [
                {
                    "provider": r.provider,
                    "ok": r.taken_at is not None,
                    "offers": len(r.offers),
                    "error": r.error,
                }
                for r in records
            ]
        }

    @app.get("/api/gpu/local", tags=["advice"], response_model=LocalSnapshot)
    def local_gpu() -> Any:
        """This machine's GPUs (NVML); no GPU is an empty `gpus` list with a `note`."""
        return svc.local_snapshot(fresh=True)


# -- jobs --------------------------------------------------------------------------------------


JobId = Annotated[int, Path(ge=1, le=MAX_JOB_ID, description="The job's id")]


def _job_routes(app: FastAPI, svc: Service) -> None:
    tags: list[str | Enum] = ["jobs"]

    @app.get("/api/jobs", tags=tags, response_model=list[Job])
    def jobs(
        status: Annotated[
            list[str] | None, Query(description="Only jobs with these statuses")
        ] = None,
    ) -> Any:
        """The job queue, each job with its decision and advice in `meta.compute`."""
        return svc.list_jobs(status or None)

    @app.post(
        "/api/jobs",
        tags=tags,
        status_code=201,
        response_model=Job,
        openapi_extra=_body(
            Workload, "A workload (optionally with `title`), as `comfyvn-gui jobs add`."
        ),
    )
    def add_job(payload: Annotated[Any, Body()]) -> Any:
        """Queue one workload, advised and logged."""
        return svc.add_job(payload)

    @app.post(
        "/api/jobs/import-summary",
        tags=tags,
        status_code=201,
        response_model=list[Job],
        openapi_extra=_body(ImportSummary, "An importer summary (docs/import-summary.md)."),
    )
    def import_summary(
        payload: Annotated[Any, Body()],
        project_dir: Annotated[
            str | None,
            Query(
                description="The absolute folder the summary's asset paths are relative to "
                "(looked up when a job is dispatched)"
            ),
        ] = None,
    ) -> Any:
        """One advised job per unit of work of an importer summary; all or nothing."""
        return svc.import_summary(payload, project_dir)

    @app.get("/api/jobs/{job_id}", tags=tags, response_model=JobDetail)
    def job(job_id: JobId) -> Any:
        """One job with its advice and its audit trail."""
        found = svc.get_job(job_id)
        return JobDetail(**found.model_dump(), events=svc.job_events(job_id))

    @app.post("/api/jobs/{job_id}/pick", tags=tags, response_model=Job)
    def pick(job_id: JobId, body: PickRequest) -> Any:
        """Run a queued job on the provider you pick (null: back to the advisor's choice)."""
        return svc.pick_provider(job_id, body.provider)

    @app.post("/api/jobs/{job_id}/cancel", tags=tags, response_model=Job)
    def cancel(job_id: JobId) -> Any:
        """Cancel a job: a queued one at once (nothing was sent for it), one in flight by the
        dispatch driver (asked now: `meta.dispatch.cancel_requested`; the job ends
        `cancelled` with what finished kept); 409 for a job that has ended."""
        return svc.cancel_job(job_id, interface="HTTP API")

    @app.get("/api/jobs/{job_id}/consent", tags=tags, response_model=list[ConsentWarning])
    def consent(job_id: JobId) -> Any:
        """The warnings of the job's current advice that a dispatch must acknowledge."""
        return [{"code": i.code, "message": i.message} for i in svc.job_consent(job_id)]

    @app.post("/api/jobs/{job_id}/dispatch", tags=tags, response_model=Job)
    def dispatch(job_id: JobId, body: DispatchRequest, request: Request) -> Any:
        """Run a queued job on its provider: every check, then the consent gate (`provider`
        and `decided_at` as the job shows them, every consent code in `acknowledge`, else
        409 listing them), then the dispatch driver sends it. Only for a client on this
        machine (403 otherwise, whatever the server's settings). `dry_run`: check only."""
        if not is_loopback_ip(request.client.host if request.client else ""):
            raise ForbiddenError(
                "jobs are dispatched only from this machine (a loopback client): nothing was sent",
                fields=["client"],
            )
        return svc.dispatch_job(
            job_id,
            provider=body.provider,
            decided_at=body.decided_at,
            acknowledge=body.acknowledge,
            project_dir=body.project_dir,
            interface="HTTP API",
            dry_run=body.dry_run,
        )

    @app.get("/api/jobs/{job_id}/outputs", tags=tags, response_model=JobOutputs)
    def outputs(job_id: JobId) -> Any:
        """A dispatched job's output folder and files (its `outputs.json` list); 409 for a
        job that has not run."""
        return svc.job_outputs(job_id)

    @app.delete("/api/jobs/{job_id}", tags=tags, response_model=JobRemoved)
    def remove_job(job_id: JobId) -> Any:
        """Delete a queued or ended job (its outputs stay on disk, its trail is kept); 409
        for a job in flight (cancel it first)."""
        return {"removed": svc.remove_job(job_id).id}

    @app.post("/api/jobs/{job_id}/retry", tags=tags, response_model=Job)
    def retry(job_id: JobId) -> Any:
        """Put a failed or cancelled job back in the queue, advised afresh; 409 otherwise."""
        return svc.retry_job(job_id)

    @app.get("/api/running", tags=tags, response_model=RunningListing)
    async def running() -> Any:
        """Every resource this home holds at a machine provider (machines, pods, one-time
        keys, start-up scripts, a cache volume, serverless requests in flight) with its job,
        age and cost so far; orphans and leaked ones marked; providers that could not be
        listed in `errors`."""
        return (await svc.running()).as_json()

    @app.post("/api/running/{ref:path}/stop", tags=tags, response_model=RunningStopped)
    async def stop_running(ref: Annotated[str, Path(max_length=300)]) -> Any:
        """Release one listed resource (`ref` = provider:id, which may hold `/`: an Azure
        resource's `Microsoft.Compute/virtualMachines/<name>`); `orphans` as the ref releases
        every orphan and leaked one. 409 for a resource a job in flight uses (cancel the job),
        404 for one not listed, 503 when the provider refused the release."""
        if ref == "orphans":
            stopped = await svc.stop_running(orphans=True)
        else:
            stopped = await svc.stop_running(ref)
        return {"stopped": [r.as_json() for r in stopped]}


def _warn_orphans(service: Service) -> None:
    """`serve` at start: a warning in the log when this home holds orphan resources."""
    import logging

    log = logging.getLogger("comfyvn_gui.api")
    try:
        warning = service.orphan_warning()
    except Exception as exc:  # noqa: BLE001 - a provider that cannot be listed now
        log.info("orphan check: %s", exc)
        return
    if warning:
        log.warning("%s", warning)


# -- settings ----------------------------------------------------------------------------------


def _settings_routes(app: FastAPI, svc: Service) -> None:
    tags: list[str | Enum] = ["settings"]

    def known(key: str) -> str:
        from comfyvn_gui.core.settings import SETTINGS

        if key not in SETTINGS:
            raise NotFoundError(
                f"unknown setting {key!r}; known settings: {', '.join(sorted(SETTINGS))}",
                fields=["key"],
            )
        return key

    @app.get("/api/settings", tags=tags, response_model=dict[str, Any])
    def settings() -> Any:
        """Every setting with its current value."""
        return svc.get_settings()

    @app.get("/api/settings/{key}", tags=tags, response_model=dict[str, Any])
    def setting(key: str) -> Any:
        """One setting: `{key: value}`."""
        return {key: svc.get_setting(known(key))}

    @app.put("/api/settings/{key}", tags=tags, response_model=dict[str, Any])
    def put_setting(key: str, body: SettingRequest) -> Any:
        """Set one setting (`{"value": ...}`); returns it typed. An `advisor.*` change
        re-advises the queued jobs."""
        return {key: svc.set_setting(known(key), body.value)}

    @app.post("/api/settings", tags=tags, response_model=dict[str, Any])
    def post_setting(body: SettingRequest) -> Any:
        """Set one setting (`{"key": ..., "value": ...}`); returns it typed."""
        if not body.key:
            raise InputError("key: required: name the setting to change", fields=["key"])
        return {body.key: svc.set_setting(body.key, body.value)}

    @app.delete("/api/settings/{key}", tags=tags, response_model=dict[str, Any])
    def reset_setting(key: str) -> Any:
        """Return a setting to its default; returns the default."""
        return {key: svc.unset_setting(known(key))}
