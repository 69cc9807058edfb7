"""Vast.ai: the account behind the API key, its credit, and its instances.

What is sent (docs/providers.md; docs.vast.ai API reference "show user" and "show instances"):

* validate — ``GET {api}/users/current`` with ``Authorization: Bearer KEY``. No trailing slash,
  as the official client sends it (the docs add one; the API accepts both), and never the
  legacy ``?api_key=`` query parameter. The answer holds ``id``, ``email``, ``username``,
  ``credit`` and ``balance`` — and also the account's ``api_key`` itself, so only the named
  fields below are ever copied into a result, never the body.
* health — the same call plus ``GET {api}/instances/`` (``{"instances": [...]}``), counting the
  instances whose ``actual_status`` is ``running``.

The available funds are ``credit`` (the prepaid credit the console shows), else ``balance``.
Zero or less: validation still passes (the key works) but says so, and health is ``degraded``
with ``quota_exhausted`` — nothing can be rented until credit is added.
"""

from __future__ import annotations

from typing import Any

from comfyvn_gui.core import wording

from .base import CheckContext, CheckFailure, Outcome
from .http_client import HttpClient
from .registry import register


@register("vast")
class VastAdapter:
    """Validation and health of a Vast.ai account."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        (key,) = ctx.require("api_key")
        async with ctx.http(auth_fields=["api_key"]) as http:
            detail = await _current_user(ctx, http, key)
        funds = detail.get("credit")
        msg = f"Vast.ai accepted the API key (account {detail['identity']}"
        if funds is not None:
            msg += f", credit {wording.usd(funds)}"
        msg += ")"
        if funds is not None and funds <= 0:
            msg += "; add credit in the Vast.ai console (Billing) before renting machines"
        return Outcome(msg, detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        (key,) = ctx.require("api_key")
        async with ctx.http(auth_fields=["api_key"]) as http:
            detail = await _current_user(ctx, http, key)
            total, running = await _instances(ctx, http, key)
        detail["instances"] = total
        detail["instances_running"] = running
        funds = detail.get("credit")
        running_text = f"{running} of {total} instance{'s' if total != 1 else ''} running"
        if funds is not None and funds <= 0:
            return Outcome(
                f"Vast.ai: no credit left on account {detail['identity']} ({wording.usd(funds)}); "
                f"add credit in the Vast.ai console (Billing) before renting machines "
                f"({running_text})",
                detail=detail,
                health="degraded",
                code="quota_exhausted",
            )
        credit = f", credit {wording.usd(funds)}" if funds is not None else ""
        return Outcome(
            f"Vast.ai answers for account {detail['identity']}{credit}; {running_text}",
            detail=detail,
        )


def _api(ctx: CheckContext) -> str:
    url = ctx.endpoint("api")
    if url is None:
        raise CheckFailure(
            "misconfigured",
            "Vast.ai: the API address is not set; set the base URL",
            fields=["base_url"],
        )
    return url


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


async def _current_user(ctx: CheckContext, http: HttpClient, key: str) -> dict[str, Any]:
    resp = await http.get(f"{_api(ctx)}/users/current", headers=_bearer(key))
    body = http.json(resp)
    if not isinstance(body, dict) or (body.get("id") is None and not body.get("email")):
        raise CheckFailure(
            "error",
            "Vast.ai answered without the account it belongs to; is the base URL "
            "https://console.vast.ai/api/v0?",
            fields=["base_url"],
        )
    email = body.get("email") if isinstance(body.get("email"), str) else None
    username = body.get("username") if isinstance(body.get("username"), str) else None
    user_id = body.get("id")
    who = email or username or f"user {user_id}"
    identity = f"{who}, id {user_id}" if user_id is not None and who != f"user {user_id}" else who
    credit, balance = _number(body.get("credit")), _number(body.get("balance"))
    return {
        "identity": identity,
        "user_id": user_id,
        "email": email,
        "username": username,
        "credit": credit if credit is not None else balance,
        "balance": balance,
    }


async def _instances(ctx: CheckContext, http: HttpClient, key: str) -> tuple[int, int]:
    resp = await http.get(f"{_api(ctx)}/instances/", headers=_bearer(key))
    body = http.json(resp)
    items = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise CheckFailure(
            "error",
            "Vast.ai's instance list came back in an unexpected form; try again later",
        )
    running = sum(1 for i in items if isinstance(i, dict) and i.get("actual_status") == "running")
    return len(items), running
