"""The service-account key and the access token: parse the key (never quoting it), sign the
JWT-bearer grant with google-auth (imported on first use) and POST it to the token endpoint."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from comfyvn_gui.providers.base import CheckContext, CheckFailure
from comfyvn_gui.providers.lazy import LazyImport, import_now

from .api import _check_address
from .settings import KEY_FIELD, _Session, _Settings

if TYPE_CHECKING:
    from google.auth import jwt
    from google.oauth2 import service_account

    from comfyvn_gui.providers.http_client import HttpClient
else:
    jwt = LazyImport("google.auth.jwt")
    service_account = LazyImport("google.oauth2.service_account")

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The ``aud`` of every service-account grant: Google's token URL, whatever ``token_uri`` is.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600

KNOWN_CREDENTIAL_TYPES = (
    "authorized_user",
    "external_account",
    "external_account_authorized_user",
    "impersonated_service_account",
    "gdch_service_account",
)
_ERROR_CODE = re.compile(r"[A-Za-z_]{1,48}")


def _key_failure(code: str, what: str) -> CheckFailure:
    return CheckFailure(code, f"Google Cloud: {what}", fields=[KEY_FIELD])


def _parse_key(text: str) -> dict[str, Any]:
    """The key's fields, or ``misconfigured`` saying what is wrong — never quoting it."""
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _key_failure(
            "misconfigured",
            f"the service account key is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}); pick the downloaded .json key file again, or paste its whole "
            "content unchanged",
        ) from None
    if not isinstance(info, dict):
        raise _key_failure(
            "misconfigured",
            "the service account key is not a JSON object; pick the downloaded .json key file",
        )
    kind = info.get("type")
    if kind != "service_account":
        what = (
            (f"a {kind!r} credential" if kind in KNOWN_CREDENTIAL_TYPES else "not a credential")
            if kind is not None
            else 'missing its "type"'
        )
        raise _key_failure(
            "misconfigured",
            f"the JSON given is {what}, not a service account key; create one in the Google "
            "Cloud console (IAM & Admin → Service accounts → your account → Keys → Add key → "
            "JSON) and pick that file",
        )
    missing = [
        f
        for f in ("client_email", "private_key", "private_key_id")
        if not isinstance(info.get(f), str) or not info.get(f)
    ]
    if missing:
        raise _key_failure(
            "misconfigured",
            f"the service account key lacks {', '.join(missing)}; it was cut or edited — pick "
            "the downloaded .json key file again",
        )
    universe = info.get("universe_domain")
    if universe not in (None, "googleapis.com"):
        raise _key_failure(
            "misconfigured",
            "the service account key belongs to another Google Cloud universe than "
            "googleapis.com, which this app does not support",
        )
    return info


def _token_url(ctx: CheckContext, info: dict[str, Any]) -> str:
    configured = ctx.endpoint("token_uri")
    if configured is not None:
        return configured
    own = info.get("token_uri")
    if not isinstance(own, str) or not own:
        raise _key_failure(
            "misconfigured",
            "the service account key lacks token_uri; pick the downloaded .json key file again",
        )
    parts = urlsplit(own)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not (
        host == "accounts.google.com" or host.endswith(".googleapis.com")
    ):
        raise _key_failure(
            "misconfigured",
            "the service account key's token_uri is not a Google address, so its signed grant "
            "was not sent there; use the key file Google gave you (to go through a proxy, set "
            "the token_uri endpoint in the provider's settings instead)",
        )
    return own


def _sign_assertion(info: dict[str, Any], token_url: str) -> tuple[str, str | None]:
    """Blocking (runs in the executor): parse the key and sign the grant assertion.

    Returns (assertion, the key's project id). Any failure to read the private key is an
    ``invalid_credentials`` without the library's text (which could quote key material).
    """
    import_now(jwt, service_account)  # a missing google-auth is not a damaged key
    try:
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            {**info, "token_uri": token_url}, scopes=[SCOPE]
        )
        now = int(time.time())
        payload = {
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "iss": creds.service_account_email,
            "aud": GOOGLE_TOKEN_AUDIENCE,
            "scope": SCOPE,
        }
        assertion = jwt.encode(creds.signer, payload)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - never surface a text that may quote the key
        raise _key_failure(
            "invalid_credentials",
            "the private key in the service account key cannot be read (it is damaged or "
            "incomplete); download a new JSON key for the account and pick that file",
        ) from None
    text = assertion.decode("ascii") if isinstance(assertion, bytes) else str(assertion)
    return text, creds.project_id


async def _sign_in(ctx: CheckContext, http: HttpClient, s: _Settings) -> _Session:
    info = _parse_key(s.key_text)
    token_url = _token_url(ctx, info)
    _check_address(token_url, "token_uri")
    assertion, key_project = await ctx.run_blocking(_sign_assertion, info, token_url)
    email = str(info["client_email"])
    detail: dict[str, Any] = {
        "identity": email,
        "service_account": email,
        "key_id": str(info["private_key_id"]),
        "key_project": key_project,
        "project": s.project,
        "region": s.region,
        "zone": s.zone,
        "bucket": s.bucket,
        "machine_type": s.machine_type,
        "gpu": s.gpu,
        "accelerator": s.accelerator,
    }
    if key_project and key_project != s.project:
        s.warnings.append(
            f"The key was made in project {key_project} but this provider uses project "
            f"{s.project}; that works when the account holds roles in {s.project}."
        )
    try:
        resp = await http.request(
            "POST",
            token_url,
            ok=(200, 400, 401, 403),
            data={"grant_type": JWT_BEARER, "assertion": assertion},
            headers={"Accept": "application/json"},
        )
    except CheckFailure as failure:
        if failure.fields == ["base_url"]:
            failure.fields = []
        raise
    session = _Session(settings=s, http=http, token="", email=email, detail=detail)
    body: Any
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code == 200:
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise CheckFailure(
                "error",
                "Google's token service answered without an access token; is the token_uri "
                "endpoint right?",
                detail=detail,
            )
        session.token = token
        return session
    raise _token_failure(resp.status_code, body, email, detail)


def _token_failure(status: int, body: Any, email: str, detail: dict[str, Any]) -> CheckFailure:
    error = body.get("error") if isinstance(body, dict) else None
    desc = body.get("error_description") if isinstance(body, dict) else None
    code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
    text = desc.lower() if isinstance(desc, str) else ""
    detail = {**detail, "google_error": code, "http_status": status}
    if code == "invalid_grant" and ("timeframe" in text or " iat " in f" {text} "):
        return CheckFailure(
            "misconfigured",
            "Google Cloud refused the sign-in because this computer's clock is wrong (the "
            "signed grant looked expired or from the future); set the date and time to "
            "automatic, then check again",
            detail=detail,
        )
    if code == "invalid_grant" and "account not found" in text:
        return _key_failure_with(
            "the service account " + email + " no longer exists (it was deleted); create a "
            "service account and a JSON key for it, and pick that key",
            detail,
        )
    if code == "invalid_grant":
        return _key_failure_with(
            f"Google rejected the key of {email}: it was revoked or deleted (or its private "
            "key does not match its key id); create a new JSON key for the account (IAM & "
            "Admin → Service accounts → Keys → Add key) and pick that file",
            detail,
        )
    if code in ("invalid_client", "unauthorized_client", "disabled_client", "deleted_client") or (
        status == 401
    ):
        return _key_failure_with(
            f"Google rejected the key of {email}: the service account is disabled or was "
            "deleted; enable it (IAM & Admin → Service accounts) or use another account's key",
            detail,
        )
    return CheckFailure(
        "error",
        f"Google's token service refused the sign-in ({status}"
        + (f", {code}" if code else "")
        + "); try again later",
        detail=detail,
    )


def _key_failure_with(what: str, detail: dict[str, Any]) -> CheckFailure:
    return CheckFailure(
        "invalid_credentials", f"Google Cloud: {what}", fields=[KEY_FIELD], detail=detail
    )
