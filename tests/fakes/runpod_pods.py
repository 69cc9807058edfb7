"""A contract fake of RunPod's GraphQL API for pods (deploy, read, list, stop, terminate).

Written from RunPod's documentation and its own clients (runpod-python's
``api/mutations/pods.py`` and ``api/queries/pods.py``, runpodctl's ``api/pod.go``), not from the
adapter. ``POST /graphql`` only (other methods 405), ``Content-Type: application/json``, body
``{"query": "...", "variables": {...}}``:

* The query is parsed (one operation; fields, arguments, selection sets): an unknown field on a
  type, an object field without a selection, an alias or fragment, an undeclared or missing
  variable, a variable declared with another input type than the argument's, or an input object
  with an unknown or missing required field is a validation error (HTTP 400 with ``errors``).
  **Values must come in ``variables``**: a literal (a quoted string, a number, an enum) in an
  argument is refused the same way, so a client that pastes values into the query text fails.
* Root fields: ``myself { pods }``, ``pod(input: PodFilter)``,
  ``podFindAndDeployOnDemand(input: PodFindAndDeployOnDemandInput)``,
  ``podTerminate(input: PodTerminateInput)`` (returns null) and ``podStop(input: PodStopInput)``.
* Keys: the account key (``key``) may do everything. Each pod gets its own pod-scoped key
  (:meth:`pod_key`, what RunPod puts in the pod as ``RUNPOD_API_KEY``) that is accepted ONLY for
  ``podTerminate`` of that same pod. A bad key gets HTTP 200 with an ``errors`` array, as
  RunPod's GraphQL answers.
* Deploy: ``capacity`` False (or a ``dataCenterId`` outside ``data_centres``, or — with
  ``honour_deploy_cost`` — a ``deployCost`` under ``cost_per_hr``) answers RunPod's "There are
  no longer any instances available ..." error. Otherwise a pod is created RUNNING without a
  runtime; the fake decodes the ``COMFYVN_STARTUP`` environment variable (base64) and boots the
  machine (``hosts.boot``). Once that machine's sshd is up the pod has a runtime whose ports
  carry a private address and the public ``127.0.0.1:<sshd port>`` for private port 22.
* ``podStop`` keeps the pod as EXITED (a stopped pod still bills its disk; its container is
  down: ``hosts.stop``); ``podTerminate`` removes the pod and stops its machine; terminating a
  pod that is not there is an error ("pod not found"). ``pod`` of an unknown id is null.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json
from .machine_host import MachineHosts

BAD_KEY_MESSAGE = "Unauthorized request, please check your API key."
NO_CAPACITY_MESSAGE = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
STARTUP_ENV = "COMFYVN_STARTUP"

#: Object types and their fields (a subset of RunPod's schema): a field's type is a scalar name,
#: an object type, or ``[Type]``.
TYPES: dict[str, dict[str, str]] = {
    "Query": {"myself": "User", "pod": "Pod"},
    "Mutation": {
        "podFindAndDeployOnDemand": "Pod",
        "podTerminate": "Void",
        "podStop": "Pod",
    },
    "User": {"id": "String", "email": "String", "pods": "[Pod]"},
    "Pod": {
        "id": "String",
        "name": "String",
        "desiredStatus": "PodStatus",
        "costPerHr": "Float",
        "imageName": "String",
        "gpuCount": "Int",
        "containerDiskInGb": "Int",
        "volumeInGb": "Float",
        "dockerArgs": "String",
        "ports": "String",
        "env": "[String]",
        "machineId": "String",
        "lastStatusChange": "String",
        "uptimeSeconds": "Int",
        "machine": "Machine",
        "runtime": "PodRuntime",
    },
    "Machine": {"podHostId": "String", "gpuDisplayName": "String", "gpuTypeId": "String"},
    "PodRuntime": {"uptimeInSeconds": "Int", "ports": "[Port]"},
    "Port": {
        "ip": "String",
        "isIpPublic": "Boolean",
        "privatePort": "Int",
        "publicPort": "Int",
        "type": "String",
    },
}
#: Root fields that take ``input``, with the input type's name.
ARGUMENTS: dict[str, str] = {
    "pod": "PodFilter",
    "podFindAndDeployOnDemand": "PodFindAndDeployOnDemandInput",
    "podTerminate": "PodTerminateInput",
    "podStop": "PodStopInput",
}
#: Input types: field -> (python types, required).
_STR, _INT, _NUM, _BOOL = (str,), (int,), (int, float), (bool,)
INPUTS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "PodFilter": {"podId": (_STR, True)},
    "PodTerminateInput": {"podId": (_STR, True)},
    "PodStopInput": {"podId": (_STR, True), "incrementVersion": (_BOOL, False)},
    "PodFindAndDeployOnDemandInput": {
        "name": (_STR, True),
        "imageName": (_STR, True),
        "gpuTypeId": (_STR, True),
        "gpuCount": (_INT, True),
        "cloudType": (_STR, True),
        "containerDiskInGb": (_INT, True),
        "volumeInGb": (_INT, False),
        "ports": (_STR, False),
        "env": ((list,), False),
        "dockerArgs": (_STR, False),
        "deployCost": (_NUM, False),
        "supportPublicIp": (_BOOL, False),
        "startSsh": (_BOOL, False),
        "startJupyter": (_BOOL, False),
        "dataCenterId": (_STR, False),
        "countryCode": (_STR, False),
        "minVcpuCount": (_INT, False),
        "minMemoryInGb": (_INT, False),
        "volumeMountPath": (_STR, False),
        "templateId": (_STR, False),
        "networkVolumeId": (_STR, False),
        "allowedCudaVersions": ((list,), False),
        "minDownload": (_INT, False),
        "minUpload": (_INT, False),
    },
}
CLOUD_TYPES = ("ALL", "SECURE", "COMMUNITY")


class GraphQLError(Exception):
    """A request the server rejects before running it (HTTP 400)."""


# -- a small GraphQL reader ------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<skip>[\s,]+|\#[^\n]*)
      |(?P<str>"(?:[^"\\]|\\.)*")
      |(?P<punct>\.\.\.|[$!:(){}\[\]=@|])
      |(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      |(?P<name>[_A-Za-z]\w*)""",
    re.X,
)


@dataclass
class Var:
    name: str


@dataclass
class Literal:
    text: str


@dataclass
class Field:
    name: str
    args: dict[str, Any]
    selection: list[Field] | None


@dataclass
class Operation:
    kind: str  # "query" | "mutation"
    variables: dict[str, tuple[str, bool]]  # name -> (type name, non-null)
    selection: list[Field]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise GraphQLError(f"Syntax Error: Unexpected character {text[pos]!r}.")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "skip":
            out.append((kind, m.group()))
    return out


class _Reader:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise GraphQLError("Syntax Error: Unexpected <EOF>.")
        if expected is not None and tok[1] != expected:
            raise GraphQLError(f'Syntax Error: Expected "{expected}", found "{tok[1]}".')
        self.i += 1
        return tok

    def name(self) -> str:
        kind, text = self.take()
        if kind != "name":
            raise GraphQLError(f'Syntax Error: Expected Name, found "{text}".')
        return text

    def operation(self) -> Operation:
        kind = "query"
        tok = self.peek()
        if tok is not None and tok[1] in ("query", "mutation", "subscription"):
            kind = self.take()[1]
            if kind == "subscription":
                raise GraphQLError("This fake serves no subscriptions.")
            nxt = self.peek()
            if nxt is not None and nxt[0] == "name":
                self.take()
            variables: dict[str, tuple[str, bool]] = {}
            if self.peek() == ("punct", "("):
                self.take("(")
                while self.peek() != ("punct", ")"):
                    self.take("$")
                    var = self.name()
                    self.take(":")
                    type_name = self.name()
                    non_null = self.peek() == ("punct", "!")
                    if non_null:
                        self.take("!")
                    if self.peek() == ("punct", "="):
                        raise GraphQLError("This fake takes no variable defaults.")
                    variables[var] = (type_name, non_null)
                self.take(")")
        else:
            variables = {}
        selection = self.selection()
        if self.peek() is not None:
            raise GraphQLError("This fake serves one operation per request.")
        return Operation(kind, variables, selection)

    def selection(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while self.peek() != ("punct", "}"):
            if self.peek() == ("punct", "..."):
                raise GraphQLError("This fake serves no fragments.")
            name = self.name()
            if self.peek() == ("punct", ":"):
                raise GraphQLError("This fake serves no aliases.")
            args: dict[str, Any] = {}
            if self.peek() == ("punct", "("):
                self.take("(")
                while self.peek() != ("punct", ")"):
                    arg = self.name()
                    self.take(":")
                    args[arg] = self.value()
                self.take(")")
            sub = self.selection() if self.peek() == ("punct", "{") else None
            fields.append(Field(name, args, sub))
        self.take("}")
        if not fields:
            raise GraphQLError("Syntax Error: Expected Name, found }.")
        return fields

    def value(self) -> Any:
        kind, text = self.take()
        if text == "$":
            return Var(self.name())
        if text == "{":
            obj: dict[str, Any] = {}
            while self.peek() != ("punct", "}"):
                key = self.name()
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        if text == "[":
            items: list[Any] = []
            while self.peek() != ("punct", "]"):
                items.append(self.value())
            self.take("]")
            return items
        if kind in ("str", "num", "name"):
            return Literal(text)
        raise GraphQLError(f'Syntax Error: Unexpected "{text}".')


def parse(query: str) -> Operation:
    return _Reader(query).operation()


def _literals(value: Any) -> list[str]:
    if isinstance(value, Literal):
        return [value.text]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _literals(v)]
    if isinstance(value, list):
        return [t for v in value for t in _literals(v)]
    return []


def _bind(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, Var):
        return variables.get(value.name)
    if isinstance(value, dict):
        return {k: _bind(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_bind(v, variables) for v in value]
    return value


def _vars_used(value: Any) -> list[Var]:
    if isinstance(value, Var):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _vars_used(v)]
    if isinstance(value, list):
        return [x for v in value for x in _vars_used(v)]
    return []


def _check_selection(fields: list[Field], type_name: str) -> None:
    for f in fields:
        known = TYPES[type_name]
        if f.name not in known:
            raise GraphQLError(f'Cannot query field "{f.name}" on type "{type_name}".')
        ftype = known[f.name].strip("[]")
        if ftype in TYPES:
            if f.selection is None:
                raise GraphQLError(
                    f'Field "{f.name}" of type "{known[f.name]}" must have a selection of '
                    "subfields."
                )
            _check_selection(f.selection, ftype)
        elif f.selection is not None:
            raise GraphQLError(
                f'Field "{f.name}" must not have a selection since type "{ftype}" has no subfields.'
            )


def _check_input(type_name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise GraphQLError(f'Expected value of type "{type_name}!", found {json.dumps(value)}.')
    spec = INPUTS[type_name]
    for key in value:
        if key not in spec:
            raise GraphQLError(f'Field "{key}" is not defined by type "{type_name}".')
    for key, (types, required) in spec.items():
        item = value.get(key)
        if item is None:
            if required:
                raise GraphQLError(f'Field "{type_name}.{key}" of required type was not provided.')
            continue
        if isinstance(item, bool) and bool not in types:
            raise GraphQLError(f'Field "{type_name}.{key}" got a Boolean.')
        if not isinstance(item, types):
            raise GraphQLError(f'Field "{type_name}.{key}" got invalid value {json.dumps(item)}.')
    if type_name == "PodFindAndDeployOnDemandInput":
        if value["cloudType"] not in CLOUD_TYPES:
            raise GraphQLError(
                f'Value "{value["cloudType"]}" does not exist in "CloudTypeEnum" enum.'
            )
        for item in value.get("env") or []:
            if (
                not isinstance(item, dict)
                or set(item) != {"key", "value"}
                or not all(isinstance(v, str) for v in item.values())
            ):
                raise GraphQLError(
                    'Field "env" expects a list of EnvironmentVariableInput {key, value}.'
                )


# -- the fake ----------------------------------------------------------------------------------


@dataclass
class FakePod:
    id: str
    name: str
    input: dict[str, Any]
    cost_per_hr: float
    api_key: str  # the pod-scoped RUNPOD_API_KEY
    status: str = "RUNNING"
    created: float = field(default_factory=time.time)
    script: str | None = None  # the decoded start-up script

    @property
    def env(self) -> dict[str, str]:
        return {e["key"]: e["value"] for e in self.input.get("env") or []}


@dataclass
class Termination:
    pod_id: str
    by: str  # "account" or "pod" (the pod-scoped key)
    at: float


@dataclass
class RunPodPodsFake(ResettableFake):
    key: str = "rpa_PODSACCOUNT_0123456789abcdef"
    hosts: MachineHosts | None = None
    capacity: bool = True
    cost_per_hr: float = 0.44
    honour_deploy_cost: bool = True
    data_centres: list[str] | None = None  # where there is capacity (None: everywhere)
    pods: dict[str, FakePod] = field(default_factory=dict)
    terminations: list[Termination] = field(default_factory=list)
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._capture_defaults()
        self.server.route("POST", "/graphql")(self._graphql)

    @property
    def graphql_url(self) -> str:
        return f"{self.server.base}/graphql"

    def pod_key(self, pod_id: str) -> str:
        """The pod-scoped key RunPod puts in the pod's environment as ``RUNPOD_API_KEY``."""
        return self.pods[pod_id].api_key

    def add_pod(self, name: str, *, status: str = "RUNNING") -> FakePod:
        """A pod made elsewhere (the console, another app) without a machine behind it."""
        pod = self._new_pod(name, {"name": name, "imageName": "runpod/base:0.6.2"})
        pod.status = status
        return pod

    # -- HTTP ------------------------------------------------------------------------------

    def _graphql(self, req: Request) -> Reply:
        if not req.headers.get("content-type", "").lower().startswith("application/json"):
            return reply_json(400, {"errors": [{"message": "Must provide query string."}]})
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            return reply_json(400, {"errors": [{"message": "POST body sent invalid JSON."}]})
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return reply_json(400, {"errors": [{"message": "Must provide query string."}]})
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return reply_json(400, {"errors": [{"message": "Variables must be an object."}]})
        who = self._who(req.bearer)
        if who is None:
            return reply_json(200, {"errors": [{"message": BAD_KEY_MESSAGE}], "data": None})
        try:
            op = parse(query)
            bound = self._validate(op, variables)
        except GraphQLError as exc:
            return _invalid(str(exc))
        if who != "account":
            allowed = (
                op.kind == "mutation"
                and len(bound) == 1
                and bound[0][0].name == "podTerminate"
                and bound[0][1].get("podId") == who
            )
            if not allowed:
                return reply_json(
                    200,
                    {
                        "errors": [
                            {
                                "message": "You do not have permission to perform this action.",
                                "extensions": {"code": "FORBIDDEN"},
                            }
                        ],
                        "data": None,
                    },
                )
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        with self._lock:
            for f, arg in bound:
                try:
                    data[f.name] = self._resolve(f, arg, "account" if who == "account" else "pod")
                except _ExecError as exc:
                    data[f.name] = None
                    errors.append({"message": str(exc), "path": [f.name]})
        return reply_json(200, {"data": data, **({"errors": errors} if errors else {})})

    def _who(self, bearer: str | None) -> str | None:
        """ "account", a pod's id (its pod-scoped key), or None (no such key)."""
        if bearer is None:
            return None
        if bearer == self.key:
            return "account"
        for pod in list(self.pods.values()):
            if secrets.compare_digest(pod.api_key, bearer):
                return pod.id
        return None

    def _validate(
        self, op: Operation, variables: dict[str, Any]
    ) -> list[tuple[Field, dict[str, Any]]]:
        root = "Mutation" if op.kind == "mutation" else "Query"
        _check_selection(op.selection, root)
        for name, (_type, non_null) in op.variables.items():
            if non_null and variables.get(name) is None:
                raise GraphQLError(f'Variable "${name}" of required type was not provided.')
        bound: list[tuple[Field, dict[str, Any]]] = []
        for f in op.selection:
            expected = ARGUMENTS.get(f.name)
            if expected is None:
                if f.args:
                    raise GraphQLError(f'Field "{f.name}" takes no arguments.')
                bound.append((f, {}))
                continue
            for arg in f.args:
                if arg != "input":
                    raise GraphQLError(f'Unknown argument "{arg}" on field "{f.name}".')
            raw = f.args.get("input")
            if raw is None:
                raise GraphQLError(f'Field "{f.name}" argument "input" is required.')
            literal = _literals(raw)
            if literal:
                raise GraphQLError(
                    f"Value {literal[0]} is written into the query text: this server takes "
                    "values in variables only"
                )
            for var in _vars_used(raw):
                if var.name not in op.variables:
                    raise GraphQLError(f'Variable "${var.name}" is not defined.')
            if isinstance(raw, Var):
                declared = op.variables[raw.name][0]
                if declared != expected:
                    raise GraphQLError(
                        f'Variable "${raw.name}" of type "{declared}" used in position '
                        f'expecting type "{expected}".'
                    )
            value = _bind(raw, variables)
            _check_input(expected, value)
            bound.append((f, value))
        return bound

    # -- resolvers ---------------------------------------------------------------------------

    def _resolve(self, f: Field, arg: dict[str, Any], who: str) -> Any:
        if f.name == "myself":
            user = {"id": "user_pods", "email": "studio@example.com"}
            user["pods"] = [self._view(p) for p in self.pods.values()]  # type: ignore[assignment]
            return _project(user, f.selection or [])
        if f.name == "pod":
            pod = self.pods.get(arg["podId"])
            return None if pod is None else _project(self._view(pod), f.selection or [])
        if f.name == "podFindAndDeployOnDemand":
            return _project(self._view(self._deploy(arg)), f.selection or [])
        if f.name == "podStop":
            pod = self.pods.get(arg["podId"])
            if pod is None:
                raise _ExecError("pod not found")
            pod.status = "EXITED"
            if self.hosts is not None:
                self.hosts.stop(pod.id)
            return _project(self._view(pod), f.selection or [])
        if f.name == "podTerminate":
            pod = self.pods.pop(arg["podId"], None)
            if pod is None:
                raise _ExecError("pod not found")
            if self.hosts is not None:
                self.hosts.stop(pod.id)
            self.terminations.append(Termination(pod.id, who, time.time()))
            return None
        raise _ExecError(f"unknown field {f.name}")  # (validation catches this first)

    def _deploy(self, spec: dict[str, Any]) -> FakePod:
        centre = spec.get("dataCenterId")
        cost = spec.get("deployCost")
        if (
            not self.capacity
            or (
                centre is not None
                and self.data_centres is not None
                and centre not in self.data_centres
            )
            or (self.honour_deploy_cost and cost is not None and cost < self.cost_per_hr)
        ):
            raise _ExecError(NO_CAPACITY_MESSAGE)
        pod = self._new_pod(spec["name"], spec)
        encoded = pod.env.get(STARTUP_ENV)
        if encoded is not None:
            try:
                pod.script = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pod.script = None
        if pod.script is not None and self.hosts is not None:
            self.hosts.boot(pod.id, pod.script)
        return pod

    def _new_pod(self, name: str, spec: dict[str, Any]) -> FakePod:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        pod_id = "".join(secrets.choice(alphabet) for _ in range(14))
        pod = FakePod(
            id=pod_id,
            name=name,
            input=dict(spec),
            cost_per_hr=self.cost_per_hr,
            api_key="rpa_POD" + secrets.token_hex(16).upper(),
        )
        self.pods[pod_id] = pod
        return pod

    def _view(self, pod: FakePod) -> dict[str, Any]:
        runtime = None
        if pod.status == "RUNNING" and self.hosts is not None:
            booted = self.hosts.machines.get(pod.id)
            if booted is not None and booted.proc is not None:
                runtime = {
                    "uptimeInSeconds": int(time.time() - pod.created),
                    "ports": [
                        {
                            "ip": "10.65.0.12",
                            "isIpPublic": False,
                            "privatePort": 22,
                            "publicPort": 22,
                            "type": "tcp",
                        },
                        {
                            "ip": "127.0.0.1",
                            "isIpPublic": True,
                            "privatePort": 22,
                            "publicPort": booted.port,
                            "type": "tcp",
                        },
                    ],
                }
        spec = pod.input
        return {
            "id": pod.id,
            "name": pod.name,
            "desiredStatus": pod.status,
            "costPerHr": pod.cost_per_hr,
            "imageName": spec.get("imageName"),
            "gpuCount": spec.get("gpuCount", 1),
            "containerDiskInGb": spec.get("containerDiskInGb", 20),
            "volumeInGb": spec.get("volumeInGb", 0),
            "dockerArgs": spec.get("dockerArgs", ""),
            "ports": spec.get("ports", ""),
            "env": [f"{k}={v}" for k, v in pod.env.items()],
            "machineId": f"m{pod.id[:8]}",
            "lastStatusChange": f"Rented by User: {time.ctime(pod.created)}",
            "uptimeSeconds": int(time.time() - pod.created),
            "machine": {
                "podHostId": f"{pod.id}-64410d3e",
                "gpuDisplayName": str(spec.get("gpuTypeId", "")).replace("NVIDIA ", ""),
                "gpuTypeId": spec.get("gpuTypeId"),
            },
            "runtime": runtime,
        }


class _ExecError(Exception):
    """An error while running a field (HTTP 200, the field null, the message in ``errors``)."""


def _invalid(message: str) -> Reply:
    return reply_json(
        400, {"errors": [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
    )


def _project(value: Any, selection: list[Field]) -> Any:
    if value is None or not selection:
        return value
    if isinstance(value, list):
        return [_project(v, selection) for v in value]
    return {f.name: _project(value.get(f.name), f.selection or []) for f in selection}
