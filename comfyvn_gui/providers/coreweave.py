"""CoreWeave (CKS): the cluster's Kubernetes API server with the stored API access token.

What is sent (docs/providers.md; the official ``kubernetes`` Python client):

* validate — ``GET {kubernetes}/api/v1/namespaces/{ns}/pods?limit=1`` with
  ``Authorization: Bearer TOKEN`` (``CoreV1Api.list_namespaced_pod``): a real, authorized list
  in the namespace jobs will run in, stronger than ``/version`` (which clusters may serve to
  anonymous callers). Then what dispatch needs: ``POST /apis/authorization.k8s.io/v1/
  selfsubjectaccessreviews`` (``AuthorizationV1Api.create_self_subject_access_review``) for
  ``create`` and ``delete`` on ``jobs`` (group ``batch``) and ``create`` on ``pods`` subresource
  ``portforward`` in the namespace: a denied one is ``permission_denied`` naming the missing
  RBAC verb and resource; a cluster that refuses access reviews is noted in the result
  (``dispatch_permissions`` false), not failed. Then, for the identity, ``POST
  /apis/authentication.k8s.io/v1/selfsubjectreviews`` (who the token is); a cluster that
  refuses it is not an error.
* health — the same list, plus ``GET /api/v1/nodes`` for the cluster's GPU capacity
  (``nvidia.com/gpu``) where the token may read nodes; a namespace-scoped token (what CoreWeave
  recommends) may not: that is skipped with a note and the check stays healthy.

The namespace is the ``namespace`` option, else ``tenant-<organization_id>``.

The client is configured explicitly from the provider's own settings (host, token, the app's
CA bundle) — never ``load_kube_config()``, ``load_incluster_config()``, ``~/.kube/config`` or
``KUBECONFIG``. Its blocking calls run in the executor (:meth:`CheckContext.run_blocking`)
with urllib3 ``(connect, read)`` timeouts cut to the check's deadline and no retries, so a
black-holed API server lets go of its worker by the deadline.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import TYPE_CHECKING, Any

from .base import CheckContext, CheckFailure, Outcome
from .http_client import HTTP_MARGIN_S
from .lazy import LazyImport
from .registry import register

if TYPE_CHECKING:
    import kubernetes.client
    import kubernetes.client.exceptions
    import urllib3
    import urllib3.exceptions
else:
    kubernetes = LazyImport("kubernetes")
    urllib3 = LazyImport("urllib3")

NAME = "CoreWeave"
GPU_RESOURCE = "nvidia.com/gpu"


@register("coreweave")
class CoreWeaveAdapter:
    """Validation and health of a CoreWeave Kubernetes namespace."""

    async def validate(self, ctx: CheckContext) -> Outcome:
        host, token, ns = _settings(ctx)
        api = _api_client(ctx, host, token)
        try:
            await _list_pods(ctx, api, host, ns)
            reviewed = await _may_dispatch(ctx, api, host, ns)
            username = await _whoami(ctx, api, host)
        finally:
            api.close()
        identity = f"{username} in namespace {ns}" if username else f"namespace {ns}"
        detail: dict[str, Any] = {
            "identity": identity,
            "namespace": ns,
            "username": username,
            "cluster": host,
            "dispatch_permissions": reviewed,
        }
        msg = f"{NAME} accepted the API access token; it can list pods in namespace {ns}"
        if reviewed:
            msg += ", create and delete Jobs and port-forward to pods"
        else:
            detail["note"] = (
                "the cluster did not answer access reviews, so the rights to create Jobs and "
                "port-forward were not checked"
            )
            msg += "; its rights to run jobs could not be checked (no access reviews)"
        return Outcome(msg + (f" (as {username})" if username else ""), detail=detail)

    async def health(self, ctx: CheckContext) -> Outcome:
        host, token, ns = _settings(ctx)
        api = _api_client(ctx, host, token)
        try:
            await _list_pods(ctx, api, host, ns)
            gpus = await _gpu_capacity(ctx, api, host)
        finally:
            api.close()
        detail: dict[str, Any] = {"namespace": ns, "cluster": host}
        msg = f"{NAME}: the cluster answers and namespace {ns} is readable"
        if gpus is None:
            detail["gpu_capacity"] = None
            detail["note"] = (
                "the token may not read the cluster's nodes (a namespace-scoped token), so GPU "
                "capacity is not shown"
            )
            msg += "; GPU capacity not readable with a namespace-scoped token"
        else:
            detail.update(gpus)
            msg += (
                f"; {gpus['gpu_allocatable']} of {gpus['gpu_capacity']} GPUs allocatable on "
                f"{gpus['gpu_nodes']} GPU node{'s' if gpus['gpu_nodes'] != 1 else ''}"
            )
        return Outcome(msg, detail=detail)


def _settings(ctx: CheckContext) -> tuple[str, str, str]:
    (token,) = ctx.require("api_key")
    host = ctx.endpoint("kubernetes")
    if host is None:
        raise CheckFailure(
            "misconfigured",
            f"{NAME}: the cluster address is not set; enter your cluster's API server address "
            "as the base URL (the server: line of the cluster's kubeconfig in the CoreWeave "
            "Cloud console)",
            fields=["base_url"],
        )
    if not host.lower().startswith(("https://", "http://")):
        raise CheckFailure(
            "misconfigured",
            f"{NAME}: the cluster address {host} must start with https://; enter your "
            "cluster's API server address as the base URL",
            fields=["base_url"],
        )
    ns = ctx.value("namespace")
    if ns is None:
        org = ctx.value("organization_id")
        if org is None:
            raise CheckFailure(
                "misconfigured",
                f"{NAME}: the Organization ID is not set (it names your namespace, "
                "tenant-<organization ID>); enter it, or set the namespace",
                fields=["organization_id", "namespace"],
            )
        ns = f"tenant-{org}"
    return host, token, ns


def _api_client(ctx: CheckContext, host: str, token: str) -> Any:
    """A client built only from this provider's settings: no kubeconfig, no in-cluster files."""
    client = kubernetes.client
    conf = client.Configuration()  # a fresh one, never the (kubeconfig-loaded) default
    conf.host = host
    conf.api_key = {"authorization": f"Bearer {token}"}
    conf.verify_ssl = True
    conf.ssl_ca_cert = ctx.network.ca_bundle or None
    conf.retries = urllib3.Retry(total=0, redirect=0, raise_on_redirect=False)
    conf.connection_pool_maxsize = 2
    conf.debug = False
    return client.ApiClient(conf)


def _timeouts(ctx: CheckContext) -> tuple[float, float]:
    """urllib3 (connect, read) timeouts that end just before the check's deadline."""
    remaining = ctx.remaining()
    if remaining <= 0:
        raise TimeoutError
    budget = max(0.05, remaining - HTTP_MARGIN_S)
    return (min(budget, 10.0), budget)


async def _call(ctx: CheckContext, host: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one client call in the executor, with its timeouts; map transport failures."""
    kwargs["_request_timeout"] = _timeouts(ctx)

    def blocking() -> Any:
        return fn(*args, **kwargs)

    try:
        return await ctx.run_blocking(blocking)
    except CheckFailure:
        raise
    except TimeoutError:
        raise
    except Exception as exc:  # mapped below; anything unknown is re-raised
        failure = _transport_failure(exc, host)
        if failure is None:
            raise
        raise failure from None


def _transport_failure(exc: BaseException, host: str) -> CheckFailure | None:
    u3 = urllib3.exceptions
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        if isinstance(cur, u3.MaxRetryError) and cur.reason is not None:
            cur = cur.reason
        else:
            cur = cur.__cause__ or cur.__context__
    for e in chain:
        if isinstance(e, u3.SSLError | ssl.SSLError):
            return CheckFailure(
                "misconfigured",
                f"the TLS certificate of {NAME}'s API server {host} could not be verified "
                f"({_short(e)}). If the address is right and you are behind a proxy that "
                "inspects TLS, or the cluster uses its own CA, give its CA bundle in the "
                "network settings",
                fields=["base_url"],
            )
    for e in chain:
        if isinstance(e, u3.NewConnectionError | u3.NameResolutionError | ConnectionError):
            return CheckFailure(
                "unreachable",
                f"cannot connect to {NAME}'s API server at {host}; check the cluster address "
                "and your network",
                fields=["base_url"],
            )
    for e in chain:
        if isinstance(e, u3.TimeoutError | socket.timeout):
            return CheckFailure(
                "timeout",
                f"{NAME}'s API server at {host} did not answer in time; check the cluster "
                "address and your network, or try again later",
            )
    for e in chain:
        if isinstance(e, u3.HTTPError | OSError):
            return CheckFailure(
                "unreachable",
                f"the connection to {NAME}'s API server at {host} failed ({_short(e)}); check "
                "the cluster address and your network",
                fields=["base_url"],
            )
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:160] + "…"


def _status_message(exc: Any) -> str:
    """The API server's own message from a Status body (never the request)."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return ""
    msg = body.get("message") if isinstance(body, dict) else None
    return _short(Exception(msg)) if isinstance(msg, str) else ""


def _status_details_kind(exc: Any) -> str | None:
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return None
    details = body.get("details") if isinstance(body, dict) else None
    kind = details.get("kind") if isinstance(details, dict) else None
    return kind if isinstance(kind, str) else None


async def _list_pods(ctx: CheckContext, api: Any, host: str, ns: str) -> None:
    try:
        await _call(ctx, host, kubernetes.client.CoreV1Api(api).list_namespaced_pod, ns, limit=1)
    except kubernetes.client.exceptions.ApiException as exc:
        raise _api_failure(exc, host, ns) from None


def _api_failure(exc: Any, host: str, ns: str) -> CheckFailure:
    code = exc.status
    server = _status_message(exc)
    said = f" (the cluster said: {server})" if server else ""
    if code == 401:
        return CheckFailure(
            "invalid_credentials",
            f"{NAME}'s cluster rejected the API access token (401 Unauthorized); paste the "
            "token again (the token itself, not the whole kubeconfig) or create a new one in "
            "the CoreWeave Cloud console",
            fields=["api_key"],
        )
    if code == 403:
        return CheckFailure(
            "permission_denied",
            f"{NAME}: the API access token lacks rights in namespace {ns} (403 Forbidden){said}. "
            "Check the namespace, or create a token for it — CoreWeave recommends "
            "namespace-scoped credentials",
            fields=["api_key", "namespace"],
            detail={"namespace": ns},
        )
    if code == 404:
        if _status_details_kind(exc) == "namespaces" or f'namespaces "{ns}"' in server:
            return CheckFailure(
                "misconfigured",
                f"{NAME}: namespace {ns} does not exist on this cluster; check the namespace "
                "option or the Organization ID (the default namespace is tenant-<organization "
                "ID>)",
                fields=["namespace", "organization_id"],
                detail={"namespace": ns},
            )
        return CheckFailure(
            "misconfigured",
            f"{NAME}: {host} answered 404 for the pod list; is it your cluster's Kubernetes API "
            "server address?",
            fields=["base_url"],
        )
    if code == 429:
        return CheckFailure(
            "rate_limited", f"{NAME}'s cluster is rate-limiting requests (429); try again shortly"
        )
    if code in (502, 503, 504):
        return CheckFailure(
            "unreachable",
            f"{NAME}'s cluster API server is unavailable right now ({code}); try again later",
        )
    return CheckFailure(
        "error", f"{NAME}'s cluster answered {code} unexpectedly{said}; try again later"
    )


#: What dispatch does in the namespace: (verb, API group, resource, subresource).
DISPATCH_RIGHTS = (
    ("create", "batch", "jobs", ""),
    ("delete", "batch", "jobs", ""),
    ("create", "", "pods", "portforward"),
)


def _rbac_name(group: str, resource: str, subresource: str) -> str:
    name = f"{resource}.{group}" if group else resource
    return f"{name}/{subresource}" if subresource else name


async def _may_dispatch(ctx: CheckContext, api: Any, host: str, ns: str) -> bool:
    """Whether the token may create and delete Jobs and port-forward in ``ns``
    (``SelfSubjectAccessReview`` for each of :data:`DISPATCH_RIGHTS`). A denied one is
    ``permission_denied`` naming the RBAC verb and resource; False where the cluster refuses
    access reviews (noted, not a failure)."""
    client = kubernetes.client
    authz = client.AuthorizationV1Api(api)
    for verb, group, resource, sub in DISPATCH_RIGHTS:
        review = client.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace=ns,
                    verb=verb,
                    group=group,
                    resource=resource,
                    subresource=sub or None,
                )
            ),
        )
        try:
            answer = await _call(ctx, host, authz.create_self_subject_access_review, review)
        except client.exceptions.ApiException as exc:
            if exc.status == 401:
                raise _api_failure(exc, host, ns) from None
            return False
        status = getattr(answer, "status", None)
        if status is None:
            return False
        if not status.allowed:
            what = _rbac_name(group, resource, sub)
            why = f" ({_short(Exception(status.reason))})" if status.reason else ""
            raise CheckFailure(
                "permission_denied",
                f"{NAME}: the API access token may list pods in namespace {ns} but may not "
                f"{verb} {what}{why}, which jobs need; grant its role the RBAC verb {verb!r} "
                f"on {what} in namespace {ns}, or use a token that has it",
                fields=["api_key", "namespace"],
                detail={"namespace": ns, "missing": f"{verb} {what}"},
            )
    return True


async def _whoami(ctx: CheckContext, api: Any, host: str) -> str | None:
    """The token's username from a SelfSubjectReview; None where the cluster refuses it."""
    try:
        review = await _call(
            ctx,
            host,
            kubernetes.client.AuthenticationV1Api(api).create_self_subject_review,
            kubernetes.client.V1SelfSubjectReview(),
        )
    except (kubernetes.client.exceptions.ApiException, CheckFailure):
        return None
    user = getattr(getattr(review, "status", None), "user_info", None)
    name = getattr(user, "username", None)
    return name if isinstance(name, str) and name else None


async def _gpu_capacity(ctx: CheckContext, api: Any, host: str) -> dict[str, int] | None:
    """GPUs over the cluster's nodes; None where the token may not list nodes."""
    try:
        nodes = await _call(ctx, host, kubernetes.client.CoreV1Api(api).list_node, limit=500)
    except (kubernetes.client.exceptions.ApiException, CheckFailure):
        return None
    capacity = allocatable = gpu_nodes = 0
    for node in nodes.items or []:
        cap = _count((node.status.capacity or {}).get(GPU_RESOURCE) if node.status else None)
        alloc = _count((node.status.allocatable or {}).get(GPU_RESOURCE) if node.status else None)
        if cap:
            gpu_nodes += 1
            capacity += cap
            allocatable += alloc
    return {"gpu_capacity": capacity, "gpu_allocatable": allocatable, "gpu_nodes": gpu_nodes}


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0
