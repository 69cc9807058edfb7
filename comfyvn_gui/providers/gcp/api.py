"""Authorised calls to Google's APIs, the https rule for every endpoint, and what a Google
API error body (``{"error": {...}}``) means."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from comfyvn_gui.core.addresses import in_clear
from comfyvn_gui.providers.base import CheckContext, CheckFailure

from .settings import _Session

if TYPE_CHECKING:
    import httpx


def _check_address(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and not in_clear(url):
        return
    raise CheckFailure(
        "misconfigured",
        f"Google Cloud: the {name} endpoint {parts.scheme}://{parts.hostname} is not https; "
        "credentials are only sent over https (plain http only to this computer)",
        fields=["base_url"] if name == "compute" else [],
    )


def _endpoint(ctx: CheckContext, name: str) -> str:
    url = ctx.endpoint(name)
    if url is None:
        raise CheckFailure(
            "misconfigured",
            f"Google Cloud: the {name} endpoint is not set; remove the empty override from the "
            "provider's settings",
            fields=["base_url"] if name == "compute" else [],
        )
    _check_address(url, name)
    return url


async def _call(
    session: _Session,
    method: str,
    url: str,
    endpoint: str,
    *,
    ok: Iterable[int] = (200,),
    **kwargs: Any,
) -> httpx.Response:
    """An authorised API call; address problems blame ``base_url`` only for ``compute``."""
    headers = {"Authorization": f"Bearer {session.token}", "Accept": "application/json"}
    try:
        return await session.http.request(method, url, ok=ok, headers=headers, **kwargs)
    except CheckFailure as failure:
        if endpoint != "compute" and failure.fields == ["base_url"]:
            failure.fields = []
        raise


@dataclass
class _GoogleError:
    status: str | None = None
    reasons: list[str] = field(default_factory=list)
    service: str | None = None
    activation_url: str | None = None
    message: str = ""


def _google_error(resp: httpx.Response) -> _GoogleError:
    """The parts of a Google API error body (``{"error": {...}}``) that decide what it means."""
    out = _GoogleError()
    try:
        body = resp.json()
    except ValueError:
        return out
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return out
    if isinstance(err.get("status"), str):
        out.status = err["status"]
    if isinstance(err.get("message"), str):
        out.message = err["message"]
    for item in err.get("errors") or []:
        if isinstance(item, dict) and isinstance(item.get("reason"), str):
            out.reasons.append(item["reason"])
    for item in err.get("details") or []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("reason"), str):
            out.reasons.append(item["reason"])
        meta = item.get("metadata")
        if isinstance(meta, dict):
            if isinstance(meta.get("service"), str):
                out.service = meta["service"]
            url = meta.get("activationUrl")
            if isinstance(url, str) and urlsplit(url).hostname in (
                "console.developers.google.com",
                "console.cloud.google.com",
            ):
                out.activation_url = url
    return out


def _api_disabled(err: _GoogleError) -> bool:
    return any(r in ("SERVICE_DISABLED", "accessNotConfigured") for r in err.reasons)


API_NAMES = {
    "compute.googleapis.com": "Compute Engine API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "storage.googleapis.com": "Cloud Storage API",
    "storage-api.googleapis.com": "Cloud Storage API",
}


def _disabled_failure(session: _Session, err: _GoogleError, default_service: str) -> CheckFailure:
    service = err.service if err.service in API_NAMES else default_service
    api = API_NAMES[service]
    project = session.settings.project
    url = err.activation_url or (
        f"https://console.cloud.google.com/apis/library/{service}?project={project}"
    )
    return CheckFailure(
        "misconfigured",
        f"Google Cloud: the {api} is not enabled for project {project}; enable the {api} "
        f"({url}), wait a few minutes, then check again",
        fields=["project_id"],
        detail={**session.detail, "api_disabled": service, "activation_url": url},
    )


def _json(session: _Session, resp: httpx.Response) -> dict[str, Any]:
    body = session.http.json(resp)
    if not isinstance(body, dict):
        raise CheckFailure(
            "error", "Google Cloud answered with something other than a JSON object; try again"
        )
    return body
