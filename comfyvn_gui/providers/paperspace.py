"""Paperspace: the API key, the team and user behind it, and the configured project.

What is sent (docs/providers.md; the API reference at docs.digitalocean.com/reference/paperspace/
api-reference, base ``https://api.paperspace.com/v1``, ``Authorization: Bearer KEY``):

* ``GET {api}/machines`` — the proof. Its lists are paged, ``{"hasMore": bool, "items": [...],
  "nextPage": cursor|null}``; the first page is enough. A 200 is never trusted without that
  body: an empty body, ``null`` or any other shape is ``invalid_credentials`` naming
  ``api_key`` (the key looks not accepted), as this API can answer a bad key with a body-less
  200. A body that is not JSON at all is an ``error`` (likely a wrong address).
* ``GET {api}/auth/session`` — documented to return ``null`` when nobody is signed in and
  otherwise ``{"team": {"id", "namespace", ...}, "user": {"email", "id", ...}}``; used only for
  the identity, so a ``null`` or failed session does not fail a check the machines list passed.
* ``GET {api}/projects?limit=120`` (paged like machines, ``after=nextPage``; items have ``id``
  and ``name``) — only when ``project`` is set: a project found by ID or name goes into the
  detail; none in the team is ``misconfigured`` naming ``project``. At most five pages are
  read; a listing that cannot be read (e.g. a key scoped away from it) leaves the project
  unchecked, said in the detail.

Health is the same calls.
"""

from __future__ import annotations

from typing import Any

from .base import CheckContext, CheckFailure, Outcome
from .http_client import HttpClient
from .registry import register

_MAX_PROJECT_PAGES = 5


@register("paperspace")
class PaperspaceAdapter:
    """Validation and health of a Paperspace team's API key."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        detail = await _check(ctx)
        return Outcome(_summary("Paperspace accepted the API key", detail), detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        detail = await _check(ctx)
        return Outcome(_summary("Paperspace answers", detail), detail=detail)


def _summary(lead: str, detail: dict[str, Any]) -> str:
    email, team = detail.get("email"), detail.get("team")
    who = ", ".join([*([email] if email else []), *([f"team {team}"] if team else [])])
    parts = [f"{lead} ({who})" if who else lead]
    n = detail["machines"]
    parts.append(
        f"{n}{'+' if detail.get('machines_more') else ''} machine{'s' if n != 1 else ''}, "
        f"{detail['machines_running']} running"
    )
    project = detail.get("project")
    if project is None:
        parts.append("Project is not set: set it before running jobs here")
    elif detail.get("project_checked"):
        parts.append(f"project {project['name']} found")
    else:
        parts.append(f"project {project['name']} not checked ({detail.get('project_note')})")
    return "; ".join(parts)


def _not_accepted(what: str) -> CheckFailure:
    return CheckFailure(
        "invalid_credentials",
        f"Paperspace answered the machines list with {what}: it looks like the API key was not "
        "accepted. Paste the key again, or create a new one under your team's Settings → API "
        "Keys",
        fields=["api_key"],
    )


async def _check(ctx: CheckContext) -> dict[str, Any]:
    (key,) = ctx.require("api_key")
    api = ctx.endpoint("api")
    if api is None:
        raise CheckFailure(
            "misconfigured",
            "Paperspace: the API address is not set; set the base URL",
            fields=["base_url"],
        )
    headers = {"Authorization": f"Bearer {key}"}
    async with ctx.http(auth_fields=["api_key"]) as http:
        resp = await http.get(f"{api}/machines", headers=headers)
        if not resp.content.strip():
            raise _not_accepted("an empty body")
        page = http.json(resp)
        if page is None:
            raise _not_accepted("null")
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list) or not isinstance(page.get("hasMore"), bool):
            raise _not_accepted("a body without the machine list")
        detail: dict[str, Any] = {
            "identity": None,
            "machines": len(items),
            "machines_more": page["hasMore"],
            "machines_running": sum(
                1 for m in items if isinstance(m, dict) and m.get("state") == "ready"
            ),
        }
        detail.update(await _session(http, f"{api}/auth/session", headers))
        project = ctx.value("project")
        if project is None:
            detail["project"] = None
        else:
            try:
                detail.update(await _project(http, f"{api}/projects", headers, project))
            except CheckFailure as failure:
                failure.detail = {**detail, **failure.detail}
                raise
    return detail


async def _session(http: HttpClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        resp = await http.get(url, headers=headers)
        body = resp.json() if resp.content.strip() else None
    except (CheckFailure, ValueError):
        return {}
    if not isinstance(body, dict):
        return {}
    user: dict[str, Any] = body["user"] if isinstance(body.get("user"), dict) else {}
    team: dict[str, Any] = body["team"] if isinstance(body.get("team"), dict) else {}
    email = user.get("email") if isinstance(user.get("email"), str) else None
    team_name = team.get("namespace") or team.get("id")
    out: dict[str, Any] = {"email": email, "user_id": user.get("id"), "team": team_name}
    if email or team_name:
        out["identity"] = email or f"team {team_name}"
    return out


async def _project(
    http: HttpClient, url: str, headers: dict[str, str], wanted: str
) -> dict[str, Any]:
    after: str | None = None
    for _ in range(_MAX_PROJECT_PAGES):
        params: dict[str, Any] = {"limit": 120}
        if after:
            params["after"] = after
        try:
            resp = await http.get(url, headers=headers, params=params)
            page = resp.json()
        except CheckFailure as failure:
            return _unchecked(wanted, f"the project list could not be read: {failure.code}")
        except ValueError:
            return _unchecked(wanted, "the project list was not JSON")
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list):
            return _unchecked(wanted, "the project list came back in an unexpected form")
        for item in items:
            if not isinstance(item, dict):
                continue
            pid, name = item.get("id"), item.get("name")
            if wanted == pid or (isinstance(name, str) and name.casefold() == wanted.casefold()):
                return {
                    "project": {"id": pid, "name": name},
                    "project_checked": True,
                }
        next_page = page.get("nextPage")
        if not page.get("hasMore") or not isinstance(next_page, str) or not next_page:
            raise CheckFailure(
                "misconfigured",
                f"Paperspace: the API key works, but its team has no project with the name or "
                f"ID {wanted!r}; check Project (console → Projects) or create the project",
                fields=["project"],
            )
        after = next_page
    return _unchecked(wanted, f"not among the first {_MAX_PROJECT_PAGES} pages of projects")


def _unchecked(wanted: str, why: str) -> dict[str, Any]:
    return {
        "project": {"id": None, "name": wanted},
        "project_checked": False,
        "project_note": why,
    }
