"""A contract fake of a Kubernetes API server (CoreWeave CKS), as far as the checks use it.

Written from the Kubernetes API conventions (kubernetes.io "API Concepts", the Status kind)
and docs/providers.md, not from the adapter:

* ``GET /api/v1/namespaces/{ns}/pods`` (``?limit=N``) — a ``PodList``. The bearer token must
  be ``token``, else 401 with a ``Status`` (reason ``Unauthorized``); a namespace the token
  may not read (``forbidden``) is 403 (reason ``Forbidden``, the API server's message); a
  namespace that does not exist (``missing``) is 404 (reason ``NotFound``,
  ``details.kind = "namespaces"``). Any other namespace is readable by the token only if it is
  in ``namespaces``.
* ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews`` — who the token is
  (``status.userInfo.username``); 401 for a wrong token.
* ``GET /api/v1/nodes`` — a ``NodeList`` with GPU capacity, or 403 when ``nodes_forbidden``
  (a namespace-scoped token, as CoreWeave recommends).
* Every other path: 404 ``Status`` (as an API server answers an unknown path); every request
  is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json


def status(code: int, reason: str, message: str, **details: Any) -> Reply:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return reply_json(code, body)


@dataclass
class KubernetesFake(ResettableFake):
    token: str = "cw-GOODTOKEN-0123456789abcdef0123456789"
    username: str = "system:serviceaccount:tenant-cw1a2b:comfyvn"
    namespaces: list[str] = field(default_factory=lambda: ["tenant-cw1a2b", "renders"])
    forbidden: list[str] = field(default_factory=lambda: ["tenant-other"])
    nodes_forbidden: bool = True
    nodes: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"name": "g1", "gpus": "8", "allocatable": "8", "product": "A40"},
            {"name": "g2", "gpus": "8", "allocatable": "6", "product": "A40"},
            {"name": "cpu1", "gpus": None, "allocatable": None, "product": None},
        ]
    )
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self.server.default = self._route

    @property
    def base(self) -> str:
        return self.server.base

    def pod_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/pods")]

    def _route(self, req: Request) -> Reply:
        if req.bearer != self.token:
            return status(401, "Unauthorized", "Unauthorized")
        parts = req.path.strip("/").split("/")
        if req.method == "GET" and len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"]:
            if parts[4] == "pods":
                return self._pods(parts[3], req)
        if req.method == "POST" and req.path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":
            return reply_json(
                201,
                {
                    "kind": "SelfSubjectReview",
                    "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": None},
                    "status": {
                        "userInfo": {
                            "username": self.username,
                            "groups": ["system:serviceaccounts", "system:authenticated"],
                        }
                    },
                },
            )
        if req.method == "GET" and req.path == "/api/v1/nodes":
            return self._nodes()
        return status(404, "NotFound", "the server could not find the requested resource")

    def _pods(self, ns: str, req: Request) -> Reply:
        if ns in self.forbidden:
            user = self.username
            return status(
                403,
                "Forbidden",
                f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" '
                f'in the namespace "{ns}"',
                kind="pods",
            )
        if ns not in self.namespaces:
            return status(
                404, "NotFound", f'namespaces "{ns}" not found', name=ns, kind="namespaces"
            )
        return reply_json(
            200,
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": [],
            },
        )

    def _nodes(self) -> Reply:
        if self.nodes_forbidden:
            return status(
                403,
                "Forbidden",
                f'nodes is forbidden: User "{self.username}" cannot list resource "nodes" in API '
                'group "" at the cluster scope',
                kind="nodes",
            )
        items = []
        for n in self.nodes:
            capacity = {"cpu": "64", "memory": "512Gi"}
            allocatable = dict(capacity)
            labels = {"kubernetes.io/hostname": n["name"]}
            if n["gpus"] is not None:
                capacity["nvidia.com/gpu"] = n["gpus"]
                allocatable["nvidia.com/gpu"] = n["allocatable"]
                labels["gpu.nvidia.com/class"] = n["product"]
            items.append(
                {
                    "metadata": {"name": n["name"], "labels": labels},
                    "status": {"capacity": capacity, "allocatable": allocatable},
                }
            )
        return reply_json(
            200,
            {
                "kind": "NodeList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": items,
            },
        )
