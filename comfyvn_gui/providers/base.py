"""The adapter framework: one async protocol and the machinery every adapter shares.

:class:`Adapter` is the protocol every provider module implements, and the one place its
contract is written down (docs/providers.md): what a check gets (:class:`CheckContext`), what
it returns (:class:`Outcome`) or raises (:class:`CheckFailure`), and by when. Everything else is
written once, for every adapter:

* :class:`~.http_client.HttpClient` (:mod:`.http_client`, made by :meth:`CheckContext.http`) —
  httpx with timeouts cut to the check's deadline, the system proxy settings, an optional custom
  CA bundle or client certificate, bounded retries that honour ``Retry-After`` on 429/503, and
  the mapping of transport and HTTP failures into the result vocabulary;
* :class:`BlockingExecutor` — a bounded thread pool for blocking work (keyring reads, SDKs)
  whose waits count against the check's deadline, queueing included;
* :func:`run_check` — deadline, timing, cancellation and the guarantee that a check never
  raises to its caller and that no secret value appears in its message or detail;
* :mod:`.registry` (``@register``) and :mod:`.lazy` (``LazyImport``) — how an adapter is
  found, and how it imports its SDK only when a check needs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from comfyvn_gui.core.catalog import ProviderProfile
from comfyvn_gui.core.checks import HEALTH_OF_CODE, CheckKind, CheckResult, now
from comfyvn_gui.core.hostkeys import PinnedKey
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.redaction import redact

if TYPE_CHECKING:
    import httpx

    from .http_client import HttpClient

T = TypeVar("T")


class CheckFailure(Exception):
    """Raised by an adapter: the check failed with ``code`` (a validation status).

    ``code`` is a failure code of the result vocabulary (``FailureCode`` in core/checks.py:
    ``invalid_credentials``, ``permission_denied``, ``misconfigured``, ``untrusted_host``,
    ``host_key_mismatch``, ``unreachable``, ``timeout``, ``rate_limited``, ``quota_exhausted``,
    ``error``); ``message`` says what happened and what to do, in the user's words; ``fields``
    name the provider's settings to fix; ``detail`` is shown with it.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fields: Iterable[str] = (),
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.detail = dict(detail or {})


@dataclass
class Outcome:
    """What a successful check found. ``health`` lets a health check say ``degraded``."""

    message: str
    detail: dict[str, Any] = field(default_factory=dict)
    health: str = "healthy"
    code: str | None = None


class Adapter(Protocol):
    """One provider's checks (later: submit, status, cancel).

    The contract of every method, written once here (docs/providers.md); an adapter's own
    docstrings say only what it sends and how it reads the answers.

    **Registration.** A module under ``comfyvn_gui.providers`` decorates its class with
    ``@register("<template id>")`` (:mod:`.registry`); the class is instantiated once, without
    arguments, and that one instance serves every provider of the template — concurrently, on
    the service's event loop. Keep what one check learns in locals, never on ``self``.

    **Imports.** Importing the module imports no SDK: the SDK modules it uses are
    :class:`~.lazy.LazyImport` stand-ins, imported by the first check that touches them.

    **Arguments.** ``ctx`` (:class:`CheckContext`) is everything a check may use: the
    provider's entry and its catalog profile; its secrets, already read from the keyring
    (:meth:`~CheckContext.require` / :meth:`~CheckContext.value` / :meth:`~CheckContext.setting`;
    :meth:`~CheckContext.endpoint` for a base URL); the deadline; :meth:`~CheckContext.http` for
    HTTP and :meth:`~CheckContext.run_blocking` for blocking calls (an SDK, file or socket I/O).
    Credentials and settings come from ``ctx`` only: never from environment variables, the
    SDK's config files (``~/.aws``, ``~/.kube/config``, gcloud's, ...), an agent or instance
    metadata.

    **Returns.** An :class:`Outcome` when the check passed: its ``message`` (what was found,
    naming the identity the credentials belong to where the provider says it) and ``detail``
    (JSON values) become the result's. For ``validate`` the status is ``valid`` (``health`` and
    ``code`` are not read: a warning goes into the message and ``detail``). For
    ``health``, ``Outcome.health`` is the status — ``healthy``, or ``degraded`` /
    ``unhealthy`` with a failure ``code`` saying why (``quota_exhausted``, ``misconfigured``,
    ``rate_limited`` ...) for a provider that answers but cannot run a job as configured.

    **Raises.** :class:`CheckFailure` for every failure the user can act on; its ``code`` is the
    validation status, and for ``health`` maps to ``unhealthy`` (``rate_limited``:
    ``degraded``). :class:`TimeoutError` (from the deadline) becomes ``timeout``. Any other
    exception becomes ``error`` ("the check failed unexpectedly"): a bug, never a way to report.
    Cancellation propagates.

    **Deadline.** ``ctx.deadline`` (event-loop time): :func:`run_check` cancels the coroutine
    when it passes. Requests through ``ctx.http`` time out themselves just before it;
    ``ctx.run_blocking`` calls give up waiting then, but a running call cannot be interrupted,
    so give each SDK call its own timeouts from :meth:`~CheckContext.remaining` (and no
    retries that outlast them).

    **Secrets.** Neither ``message`` nor ``detail`` may carry a secret or a provider's text
    that could echo one: :func:`run_check` scrubs the known secret values, but not a secret
    the provider reformats (a key's parts, a token it returns).
    """

    async def validate(self, ctx: CheckContext) -> Outcome:
        """Do the settings and credentials work: may a job be launched as configured?"""
        ...

    async def health(self, ctx: CheckContext) -> Outcome:
        """Is the provider answering, and able to take a job now (capacity, quota)?"""
        ...


class BlockingExecutor:
    """A bounded pool for blocking calls; every wait is bounded by the caller's deadline.

    Calls may name a ``lane`` (the service uses the provider's template id): one lane never
    holds more than ``lane_limit`` workers, so a black-holed cloud cannot starve the others.
    """

    def __init__(self, max_workers: int = 8, lane_limit: int | None = None) -> None:
        self.max_workers = max_workers
        self.lane_limit = lane_limit or max(1, max_workers // 2)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="comfyvn-check"
        )
        self._lanes: dict[tuple[int, str], asyncio.Semaphore] = {}

    async def run(
        self, deadline: float, fn: Callable[..., T], *args: Any, lane: str | None = None
    ) -> T:
        """Run ``fn(*args)`` in the pool; TimeoutError once the deadline (loop time) passes.

        A call still waiting (for its lane or a worker) when the deadline passes never
        starts. A call already running cannot be interrupted: the SDKs get their own timeouts
        (docs/architecture.md) for that.
        """
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        if lane is None:
            return await self._submit(loop, deadline, fn, *args)
        sem = self._lanes.setdefault((id(loop), lane), asyncio.Semaphore(self.lane_limit))
        await asyncio.wait_for(sem.acquire(), remaining)
        try:
            return await self._submit(loop, deadline, fn, *args)
        finally:
            sem.release()

    async def _submit(
        self, loop: asyncio.AbstractEventLoop, deadline: float, fn: Callable[..., T], *args: Any
    ) -> T:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        future = self._pool.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), remaining)
        finally:
            future.cancel()  # no-op once started; drops it from the queue otherwise

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class NetworkOptions:
    """Application-wide network settings."""

    ca_bundle: str | None = None  # a PEM file of extra trusted CAs (a TLS-inspecting proxy)


class PinnedKeys(Protocol):
    """Where a check finds the SSH host key the user pinned for a provider (the service passes
    the home's store; providers never open it themselves)."""

    def get(self, provider_id: str) -> PinnedKey | None: ...


@dataclass
class CheckContext:
    """Everything one check may use. Built by the service; secrets were read beforehand."""

    provider: ProviderEntry
    profile: ProviderProfile
    secrets: dict[str, str]
    deadline: float
    executor: BlockingExecutor
    network: NetworkOptions = field(default_factory=NetworkOptions)
    transport: httpx.AsyncBaseTransport | None = None  # tests may route httpx elsewhere
    host_keys: PinnedKeys | None = None  # pinned SSH host keys of the home

    @property
    def name(self) -> str:
        return self.profile.name

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    async def run_blocking(
        self, fn: Callable[..., T], *args: Any, destination: str | None = None
    ) -> T:
        """Run a blocking call (an SDK) in the executor by the deadline. Give the SDK its own
        timeouts from :meth:`remaining` as well.

        Calls share a lane per provider kind and destination (``destination``, else the
        primary endpoint, else the region): a dead endpoint can tie up at most a lane's
        workers, and only checks bound for that same endpoint wait behind it.
        """
        if destination is None:
            primary = self.profile.primary_endpoint
            destination = (self.endpoint(primary) if primary else None) or self.setting("region")
        lane = f"{self.profile.id}|{destination or ''}"
        return await self.executor.run(self.deadline, fn, *args, lane=lane)

    def value(self, name: str) -> str | None:
        """A field's value: a secret from the keyring or a setting from ``config``."""
        if name in self.secrets:
            return self.secrets[name]
        v = self.provider.config.get(name)
        return None if v is None or v == "" else str(v)

    def setting(self, name: str) -> str | None:
        """A field's value, or the profile's default for it (e.g. the default region)."""
        value = self.value(name)
        if value is not None:
            return value
        try:
            return self.profile.field(name).default
        except KeyError:
            return None

    def require(self, *names: str) -> list[str]:
        """The values of ``names``; ``misconfigured`` naming every missing one otherwise."""
        missing = [n for n in names if self.value(n) is None]
        if missing:
            labels = ", ".join(self.profile.field(n).label for n in missing)
            raise CheckFailure(
                "misconfigured",
                f"{self.name}: {labels} {'is' if len(missing) == 1 else 'are'} not set; "
                "enter it in the provider's settings",
                fields=missing,
            )
        return [v for v in (self.value(n) for n in names) if v is not None]

    def endpoint(self, name: str) -> str | None:
        """A base URL: ``config.endpoints`` > ``base_url`` (primary) > the profile's default."""
        overrides = self.provider.config.get("endpoints") or {}
        url = overrides.get(name)
        if url is None and name == self.profile.primary_endpoint:
            url = self.provider.base_url
        if url is None:
            url = self.profile.endpoints.get(name)
        return url.rstrip("/") if isinstance(url, str) and url else None

    def http(
        self,
        *,
        auth_fields: Iterable[str] = (),
        verify: str | bool | None = None,
        cert: tuple[str, str] | str | None = None,
        verify_field: str | None = None,
        address_field: str = "base_url",
    ) -> HttpClient:
        """An httpx client for this check. ``auth_fields`` are blamed on 401/403,
        ``verify_field`` on a TLS failure, ``address_field`` on a wrong or dead address."""
        from .http_client import HttpClient

        return HttpClient(
            self,
            auth_fields=list(auth_fields),
            verify=verify,
            cert=cert,
            verify_field=verify_field,
            address_field=address_field,
        )


def _scrub(value: Any, secrets: Iterable[str]) -> Any:
    """Redact known secret values and secret-looking keys from a message or a detail."""
    value = redact(value)
    values = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)
    if not values:
        return value
    if isinstance(value, str):
        for s in values:
            value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, values) for v in value]
    return value


async def run_check(adapter: Adapter, ctx: CheckContext, kind: CheckKind) -> CheckResult:
    """Run one check to completion or its deadline. Never raises (cancellation excepted)."""
    started = time.perf_counter()
    status: str
    code: str | None = None
    fields: list[str] = []
    detail: dict[str, Any] = {}
    try:
        async with asyncio.timeout_at(ctx.deadline):
            outcome = await (adapter.validate(ctx) if kind == "validate" else adapter.health(ctx))
        message, detail = outcome.message, outcome.detail
        if kind == "validate":
            status = "valid"
        else:
            status, code = outcome.health, outcome.code
    except CheckFailure as failure:
        code, message, fields, detail = (
            failure.code,
            failure.message,
            failure.fields,
            failure.detail,
        )
        status = code if kind == "validate" else HEALTH_OF_CODE.get(code, "unhealthy")
    except TimeoutError:
        code = "timeout"
        status = code if kind == "validate" else "unhealthy"
        message = (
            f"{ctx.name} did not answer within the check's deadline; check your network or try "
            "again later"
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a check never raises to its caller
        code = "error"
        status = code if kind == "validate" else "unhealthy"
        message = f"{ctx.name}: the check failed unexpectedly ({type(exc).__name__}: {exc})"
    elapsed = (time.perf_counter() - started) * 1000
    secrets = list(ctx.secrets.values())
    return CheckResult(
        provider=ctx.provider.id,
        check=kind,
        status=status,
        code=code,
        message=_scrub(message, secrets),
        fields=fields,
        detail=_scrub(detail, secrets),
        latency_ms=round(elapsed, 1),
        checked_at=now(),
    )
