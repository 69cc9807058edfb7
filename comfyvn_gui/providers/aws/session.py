"""The one botocore session of the process (isolated from the environment and ~/.aws), and
what the blocking part of one check needs (:class:`_Job`), with its deadline."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from comfyvn_gui.providers.base import CheckContext
from comfyvn_gui.providers.lazy import LazyImport

if TYPE_CHECKING:
    import botocore.configprovider
    import botocore.credentials
    import botocore.loaders
    import botocore.session
    from botocore.session import Session
else:
    botocore = LazyImport("botocore")

#: The instance type when neither the provider nor the profile names one.
DEFAULT_INSTANCE_TYPE = "g5.xlarge"
DEFAULT_REGION = "us-east-1"
#: Attempts per SDK call, the first included (botocore's ``total_max_attempts``).
TOTAL_MAX_ATTEMPTS = 2
#: Below this much time left, a call gets one attempt with all of it.
RETRY_MIN_BUDGET_S = 4.0
#: Kept back for botocore's retry backoff (standard mode sleeps up to 1 s before attempt 2).
BACKOFF_ALLOWANCE_S = 1.0
CONNECT_TIMEOUT_MAX_S = 5.0
#: The most one attempt may take (connect + read). AWS's describe calls answer in well under a
#: second; a cap keeps a black-holed endpoint from holding an executor worker (and its lane
#: slot) for the whole deadline: with the default 20 s deadline it lets go after at most
#: 2 x 6 s + 1 s, so AWS checks queued behind it still have time to run.
PER_ATTEMPT_MAX_S = 6.0
#: The most the optional Service Quotas lookup of a health check may take.
QUOTA_BUDGET_S = 5.0
#: Too little time left to start another call.
MIN_CALL_BUDGET_S = 0.05

_LOCK = threading.Lock()
_SESSION: Session | None = None
_KNOWN_REGIONS: frozenset[str] | None = None


# --------------------------------------------------------------------------- the shared session


class _NoToken:
    """A bearer-token provider that has none (no ``AWS_BEARER_TOKEN_*``, no SSO cache)."""

    def load_token(self, **kwargs: Any) -> None:
        return None


def isolated_session() -> Session:
    """A botocore session that reads nothing from the environment or ~/.aws."""
    # (config-file name, env var names, default, converter): keep only the defaults.
    variables = {
        name: (None, None, spec[2], spec[3])
        for name, spec in botocore.configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
    }
    variables["config_file"] = (None, None, os.devnull, None)
    variables["credentials_file"] = (None, None, os.devnull, None)
    variables["ignore_configured_endpoint_urls"] = (None, None, True, None)
    variables["metadata_service_num_attempts"] = (None, None, 0, None)
    session = botocore.session.Session(session_vars=variables)
    loader = botocore.loaders.Loader(
        extra_search_paths=[botocore.loaders.Loader.BUILTIN_DATA_PATH],
        include_default_search_paths=False,
    )
    session.register_component("data_loader", loader)
    session.register_component(
        "credential_provider", botocore.credentials.CredentialResolver(providers=[])
    )
    session.register_component("token_provider", _NoToken())
    return session


def shared_session() -> Session:
    """The module's one botocore session (made on first use, never at import)."""
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = isolated_session()
        return _SESSION


def known_regions() -> frozenset[str]:
    """Every region in botocore's bundled endpoint data, all partitions."""
    global _KNOWN_REGIONS
    if _KNOWN_REGIONS is None:
        session = shared_session()
        with _LOCK:
            data = session.get_component("data_loader").load_data("endpoints")
        _KNOWN_REGIONS = frozenset(
            region for partition in data.get("partitions", []) for region in partition["regions"]
        )
    return _KNOWN_REGIONS


# --------------------------------------------------------------------------- one check's settings


@dataclass
class _Job:
    """What the blocking part of a check needs; built on the event loop."""

    name: str
    access_key: str
    secret_key: str
    region: str
    instance_type: str
    bucket: str | None
    endpoint: str | None
    endpoint_fields: list[str]
    verify: str | None
    deadline: float  # time.monotonic()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def scrub(self, text: str) -> str:
        for secret in (self.secret_key, self.access_key):
            if secret:
                text = text.replace(secret, "***")
        return text


def _job(ctx: CheckContext) -> _Job:
    access_key, secret_key = ctx.require("access_key", "secret_key")
    region = (ctx.value("region") or _default(ctx, "region") or DEFAULT_REGION).strip()
    instance_type = (
        ctx.value("instance_type") or _default(ctx, "instance_type") or DEFAULT_INSTANCE_TYPE
    ).strip()
    overrides = ctx.provider.config.get("endpoints") or {}
    endpoint = ctx.endpoint("aws")
    if endpoint is None:
        fields: list[str] = []
    elif overrides.get("aws"):
        fields = ["endpoints"]
    else:
        fields = ["base_url"]
    return _Job(
        name=ctx.name,
        access_key=access_key.strip(),
        secret_key=secret_key.strip(),
        region=region,
        instance_type=instance_type,
        bucket=(ctx.value("bucket") or "").strip() or None,
        endpoint=endpoint,
        endpoint_fields=fields,
        verify=ctx.network.ca_bundle,
        deadline=time.monotonic() + ctx.remaining(),
    )


def _default(ctx: CheckContext, name: str) -> str | None:
    try:
        return ctx.profile.field(name).default
    except KeyError:
        return None
