"""Custom ComfyUI endpoint: any ComfyUI server the user registers with their own price, billing,
VRAM and residency zones (the ``custom`` template).

What it sends (ComfyUI's own HTTP API, server.py):

* validate and health: ``GET {comfyui}/system_stats`` — ComfyUI answers ``system`` (versions)
  and ``devices`` (per torch device its name and ``vram_total`` / ``vram_free`` in bytes).
  ``detail["gpus"]`` (name, VRAM in GB as vendors state it, :func:`.local.vram_gb`) and
  ``detail["reported_vram_gb"]`` (the largest) are what the advisor reads for this provider,
  with the VRAM the entry states (``vram_gb``) first. Validation also checks the terms the entry
  states (price, billing, VRAM, zones: :mod:`comfyvn_gui.core.custom_terms`) and needs the price
  and the zones. A ComfyUI that sees no GPU (it runs on CPU) passes validation with a note and is
  ``degraded`` / ``misconfigured`` in a health check.

``{comfyui}`` is ``config.endpoints.comfyui``, else the provider's ``base_url``, else the
``endpoint`` field (the profile's ``comfyui`` default is empty: every server has its own); a
failure names the setting that gave the address.

Credentials: the optional ``api_token`` as ``Authorization: Bearer`` (a reverse proxy or a
hosted ComfyUI in front of the server), sent only over ``https://`` or to this computer
(:func:`.comfyui_access.access_for`, the rule the LAN adapter applies to its ComfyUI): a token
with a plain ``http://`` address of another machine is ``misconfigured`` and nothing is sent.
The server's certificate is checked against ``ca_bundle`` when given, else the system's CAs
(and ``network.ca_bundle``). 401 -> ``invalid_credentials`` and 403 -> ``permission_denied``,
both naming ``api_token``; a certificate that cannot be verified -> ``misconfigured`` naming
``ca_bundle``; no connection -> ``unreachable`` naming the address field; an answer that is not
ComfyUI's ``/system_stats`` (404, a redirect to a login page, HTML) -> ``misconfigured`` naming
the address field.

:func:`comfyui_access` gives dispatch the same address, TLS settings and token rule.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from comfyvn_gui.core import wording
from comfyvn_gui.core.addresses import in_clear
from comfyvn_gui.core.custom_terms import CustomTerms, custom_terms

from .base import CheckContext, CheckFailure, Outcome
from .comfyui_access import ComfyUIAccess, access_for, display_url
from .local import comfyui_devices, comfyui_summary
from .registry import register

if TYPE_CHECKING:
    import httpx

__all__ = ["CustomAdapter", "comfyui_access", "comfyui_address"]

_REDIRECTS = (301, 302, 303, 307, 308)


def comfyui_address(ctx: CheckContext) -> tuple[str, str]:
    """(the server's ComfyUI base URL, the setting it came from: ``endpoints`` | ``base_url`` |
    ``endpoint``); ``misconfigured`` naming that setting when it is missing or not a URL."""
    overrides = ctx.provider.config.get("endpoints") or {}
    url = ctx.endpoint("comfyui")
    if url is not None:
        field = "endpoints" if overrides.get("comfyui") else "base_url"
    else:
        url = ctx.require("endpoint")[0].strip().rstrip("/")
        field = "endpoint"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: the ComfyUI address must look like https://comfy.example.net or "
            "http://192.168.1.20:8188",
            fields=[field],
        )
    return url, field


def comfyui_access(ctx: CheckContext) -> ComfyUIAccess:
    """How the provider's ComfyUI is reached: the address (:func:`comfyui_address`), TLS with
    ``ca_bundle``, and the ``api_token`` header — sent only over https:// or to this computer.

    ``misconfigured`` (nothing sent) for an address that is not a URL, or a token set with a
    plain http:// address of another machine (the token would travel in clear text)."""
    url, field = comfyui_address(ctx)
    token = ctx.value("api_token")
    if token and in_clear(url):
        raise CheckFailure(
            "misconfigured",
            f"{display_url(url)} is plain http:// to another machine, and the API token would "
            "travel in clear text: use the server's https:// address (or an SSH / VPN tunnel "
            "that ends on this computer, http://127.0.0.1:PORT), or clear the token",
            fields=[field, "api_token"],
        )
    return access_for(url, token=token, ca=ctx.value("ca_bundle"))


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    host = f"[{host}]" if ":" in host else host
    return host + (f":{parts.port}" if parts.port else "")


def _status_failure(
    url: str, field: str, access: ComfyUIAccess, resp: httpx.Response
) -> CheckFailure | None:
    """401 / 403 / 404 / redirects in this provider's words (``None`` for anything else)."""
    code, host = resp.status_code, _host(url)
    if code == 401:
        msg = (
            f"{host} rejected the API token (401 Unauthorized): paste the token the server (or "
            "the proxy in front of it) expects again"
            if access.send_token
            else f"{host} asks for credentials (401 Unauthorized): set the API token the server "
            "(or the proxy in front of it) expects"
        )
        return CheckFailure("invalid_credentials", msg, fields=["api_token"])
    if code == 403:
        what = "API token" if access.send_token else "request"
        return CheckFailure(
            "permission_denied",
            f"{host} refused the {what} access to /system_stats (403 Forbidden): allow it in the "
            "server's (or its proxy's) rules, or set the token it expects",
            fields=["api_token"],
        )
    if code in _REDIRECTS or code == 404:
        what = (
            "redirects /system_stats to another page, as a login page does"
            if code != 404
            else ("has no /system_stats (404)")
        )
        return CheckFailure(
            "misconfigured",
            f"{host} {what}: this address does not look like ComfyUI. Give the address ComfyUI "
            "itself is served at (e.g. https://comfy.example.net or http://192.168.1.20:8188)",
            fields=[field],
        )
    return None


async def _system_stats(ctx: CheckContext) -> tuple[str, str, ComfyUIAccess, dict[str, Any]]:
    """(url, address field, access, the answer's ``detail`` form) of ``GET /system_stats``."""
    access = comfyui_access(ctx)
    url, field = comfyui_address(ctx)
    try:
        async with ctx.http(
            auth_fields=["api_token"] if access.send_token else [],
            verify=access.verify,
            verify_field="ca_bundle",
            address_field=field,
        ) as http:
            try:
                resp = await http.get(
                    f"{url}/system_stats",
                    ok=(200, 401, 403, 404, *_REDIRECTS),
                    headers=access.headers,
                )
            except ssl.SSLError as exc:  # a TLS failure after the handshake, unwrapped by httpx
                raise CheckFailure(
                    "misconfigured",
                    f"the TLS connection to ComfyUI at {display_url(url)} failed "
                    f"({exc.reason or exc}); check the address and the CA certificate",
                    fields=["ca_bundle"],
                ) from None
            refused = _status_failure(url, field, access, resp)
            if refused is not None:
                raise refused
            try:
                stats = resp.json()
            except ValueError:
                stats = None
    except CheckFailure as failure:
        if failure.code != "unreachable" or not failure.fields:
            raise
        raise CheckFailure(
            "unreachable",
            f"ComfyUI at {display_url(url)} does not answer: {failure.message}",
            fields=failure.fields,
            detail=failure.detail,
        ) from None
    gpus, ok = comfyui_devices(stats)
    if not ok:
        raise CheckFailure(
            "misconfigured",
            f"{display_url(url)}/system_stats is not ComfyUI's (no device list): give the address "
            "ComfyUI itself is served at",
            fields=[field],
        )
    system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
    detail: dict[str, Any] = {
        "address": _host(url),
        "auth": "API token" if access.send_token else "no token",
        "comfyui_version": system.get("comfyui_version"),
        "gpus": gpus,
    }
    if gpus:
        detail["reported_vram_gb"] = max(g["vram_total_gb"] for g in gpus)
    return url, field, access, detail


def _gpu_words(detail: dict[str, Any]) -> str:
    gpus = detail["gpus"]
    return comfyui_summary(gpus) if gpus else "ComfyUI sees no GPU (it runs on CPU)"


def _terms(ctx: CheckContext) -> CustomTerms:
    """The terms the entry states; ``misconfigured`` naming each missing or broken one."""
    ctx.require("hourly_usd", "zones")
    terms = custom_terms(ctx.profile, ctx.provider.config)
    if terms is None:  # a profile of another kind: a catalog mistake, not the user's
        raise CheckFailure("error", f"{ctx.name}: the template is not a custom one")
    if terms.problems:
        fields = [name for name, _ in terms.problems]
        raise CheckFailure(
            "misconfigured",
            f"{ctx.name}: " + "; ".join(reason for _, reason in terms.problems),
            fields=fields,
        )
    return terms


def _terms_words(terms: CustomTerms) -> str:
    price = wording.hourly_price(terms.hourly_usd) if terms.hourly_usd is not None else "no price"
    return (
        f"{price} billed {wording.billing_step(terms.billing.increment_minutes)}, "
        f"zones {', '.join(terms.zones)}"
    )


@register("custom")
class CustomAdapter:
    """A ComfyUI server the user registered: its ``/system_stats``, and the terms it states."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        terms = _terms(ctx)
        url, _, _, detail = await _system_stats(ctx)
        version = detail.get("comfyui_version")
        name = f"ComfyUI {version}" if version else "ComfyUI"
        detail["identity"] = f"{name} at {detail['address']}"
        detail["stated"] = {
            "hourly_usd": terms.hourly_usd,
            "billing_increment_minutes": terms.billing.increment_minutes,
            "billing_minimum_minutes": terms.billing.minimum_minutes,
            "vram_gb": terms.vram_gb,
            "gpu_name": terms.gpu_name,
            "zones": list(terms.zones),
        }
        message = f"{name} at {display_url(url)} ({detail['auth']}): {_gpu_words(detail)}"
        reported = detail.get("reported_vram_gb")
        if terms.vram_gb is not None and reported is not None and reported < terms.vram_gb:
            note = (
                f"you stated {wording.number(terms.vram_gb)} GB of VRAM but ComfyUI reports "
                f"{wording.number(reported)} GB: the advisor counts {wording.number(reported)} GB"
            )
            detail["vram_note"] = note
            message += f"; {note}"
        message += f"; {_terms_words(terms)}"
        return Outcome(message=message, detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        url, _, _, detail = await _system_stats(ctx)
        message = f"ComfyUI at {display_url(url)} answers: {_gpu_words(detail)}"
        if not detail["gpus"]:
            return Outcome(message=message, detail=detail, health="degraded", code="misconfigured")
        return Outcome(message=message, detail=detail)
