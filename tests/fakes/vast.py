"""A contract fake of Vast.ai's REST API (``/api/v0``): the current user, offers, instances.

Written from docs.vast.ai (API reference "show user", "search offers", "create instance",
"show instance(s)", "destroy instance"; "API Hello World"), docs/providers.md and the official
client's source (vast-ai/vast-cli ``vast.py``), not from the adapter:

* ``GET /api/v0/users/current`` — with or without the trailing slash (the docs write one, the
  client sends none). ``Authorization: Bearer KEY``; anything else (including the legacy
  ``?api_key=`` parameter alone) is 401. The answer carries ``id``, ``email``, ``username``,
  ``credit``, ``balance`` ... and, like the real API, the account's ``api_key`` itself.
* ``POST /api/v0/bundles/`` — the offer search. Every key but ``order``, ``type``, ``limit``
  and ``allocated_storage`` is a filter ``{"<op>": value}`` with the documented operators
  (``eq neq gt lt gte lte in notin``); an unknown operator or field, a malformed ``order``
  or an unknown ``type`` is 400 ``{"error": "invalid_request", "msg"}``. ``geolocation`` is
  matched by the two-letter country code its value ends with ("Texas, US" is ``US``);
  ``verified`` by the offer's ``verification``. Answers ``{"offers": [...]}`` in the order
  asked, at most ``limit``.
* ``PUT /api/v0/asks/{id}/`` — create an instance: needs ``client_id`` "me", ``image``,
  ``label``, ``onstart`` (<= 4048 characters), ``disk`` >= 8 and a known ``runtype``, else
  400 ``{"success": false, "error": "invalid_args", "msg"}``; an offer that does not exist or
  was rented already is 404 ``{"success": false, "error": "no_such_ask", "msg"}``. Answers
  ``{"success": true, "new_contract": ID, "instance_api_key": KEY}`` — the instance's own
  key, which (as Vast documents) may show, stop or destroy that one instance only. The offer
  is no longer rentable; the machine boots (``hosts.boot(<id>, onstart)`` when ``hosts`` is
  set: a real sshd with the script's host and client keys).
* ``GET /api/v0/instances/`` (either spelling, ``owner=me`` or not) — ``{"instances": [...]}``;
  ``GET /api/v0/instances/{id}/`` — ``{"instances": {...}}``, 404 ``no_such_instance`` for
  one that does not exist (any more). A created instance reads ``actual_status`` null, then
  ``loading``, then ``running`` once its machine's sshd is up (one step per read); running,
  it shows ``public_ipaddr`` 127.0.0.1 and ``ports["22/tcp"][0]["HostPort"]`` (direct SSH;
  ``direct_ssh=False`` leaves only ``ssh_host``/``ssh_port``, the proxy).
* ``DELETE /api/v0/instances/{id}/`` — destroys it (``{"success": true}``; its machine stops);
  404 ``{"success": false, "error": "not_found", "msg": "Instance not found"}`` when it is gone.
* Wrong paths 404, wrong methods 405. ``rate_limit_first=N`` answers the first N requests 429
  (with ``Retry-After`` when ``retry_after`` is set); ``rate_limit_asks=N`` the first N
  creations. Replies are ``application/json`` exactly, as the official client insists on.

Vast.ai has no server-side deadline: nothing here ends an instance by itself.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json
from .machine_host import MachineHosts

OPERATORS = ("eq", "neq", "gt", "lt", "gte", "lte", "in", "notin")
#: Filter fields the search documents (a subset: the ones an offer here carries).
FILTER_FIELDS = frozenset(
    {
        "id",
        "machine_id",
        "gpu_name",
        "gpu_ram",
        "gpu_total_ram",
        "num_gpus",
        "dph_total",
        "reliability",
        "reliability2",
        "rentable",
        "rented",
        "verified",
        "external",
        "geolocation",
        "direct_port_count",
        "disk_space",
        "cuda_max_good",
        "compute_cap",
        "inet_down",
    }
)
SEARCH_KEYS = frozenset({"order", "type", "limit", "allocated_storage"})
RUNTYPES = frozenset(
    {"ssh", "jupyter", "args", "ssh_proxy", "ssh_direct", "ssh_direc ssh_proxy", "jupyter_proxy"}
    | {"jupyter_direct", "jupyter_proxy ssh_proxy", "jupyter_direc ssh_direc ssh_proxy"}
)
ONSTART_MAX = 4048


def offer(
    offer_id: int,
    *,
    gpu: str = "RTX 4090",
    gpu_ram: float = 24564,
    price: float = 0.40,
    reliability: float = 0.99,
    where: str = "Texas, US",
    machine_id: int | None = None,
    verified: bool = True,
    rentable: bool = True,
    direct_ports: int = 12,
    disk_space: float = 200.0,
) -> dict[str, Any]:
    """One offer as ``/bundles/`` answers it (the fields the search and the client read)."""
    return {
        "id": offer_id,
        "ask_contract_id": offer_id,
        "machine_id": machine_id if machine_id is not None else offer_id - 4000,
        "gpu_name": gpu,
        "gpu_ram": gpu_ram,
        "gpu_total_ram": gpu_ram,
        "num_gpus": 1,
        "dph_base": round(price * 0.95, 4),
        "dph_total": price,
        "reliability": reliability,
        "reliability2": reliability,
        "rentable": rentable,
        "rented": False,
        "verification": "verified" if verified else "unverified",
        "external": False,
        "geolocation": where,
        "direct_port_count": direct_ports,
        "disk_space": disk_space,
        "cuda_max_good": 12.8,
        "compute_cap": 890,
        "inet_down": 900.0,
        "public_ipaddr": "203.0.113.7",
    }


def default_offers() -> list[dict[str, Any]]:
    return [
        offer(5001, price=0.42, where="Texas, US", machine_id=311),
        offer(
            5002, gpu="RTX 3090", gpu_ram=24576, price=0.21, where="Germany, DE", reliability=0.97
        ),
        offer(5003, gpu="RTX A4000", gpu_ram=16376, price=0.15, where="Japan, JP"),
        offer(5004, price=0.35, where="US", reliability=0.999, machine_id=644),
        offer(5005, gpu="RTX 3060", gpu_ram=12288, price=0.08, where="Ontario, CA"),
        offer(5006, gpu="A100 SXM4", gpu_ram=81920, price=1.20, where="Sweden, SE"),
        offer(5007, price=0.10, where="Vietnam, VN", verified=False),
        offer(5008, price=0.09, where="Texas, US", rentable=False),
        offer(5009, price=0.30, where="Oregon, US", reliability=0.80),
        offer(5010, price=0.11, where="Norway, NO", reliability=0.99),
    ]


def _country(geolocation: Any) -> str:
    return str(geolocation or "").rsplit(",", 1)[-1].strip().upper()


def _field_value(item: dict[str, Any], name: str) -> Any:
    if name == "verified":
        return item.get("verification") == "verified"
    if name == "geolocation":
        return _country(item.get("geolocation"))
    return item.get(name)


def _matches(value: Any, op: str, want: Any) -> bool:
    try:
        if op == "eq":
            return bool(value == want)
        if op == "neq":
            return bool(value != want)
        if op == "in":
            return value in want
        if op == "notin":
            return value not in want
        if value is None:
            return False
        if op == "gt":
            return bool(value > want)
        if op == "lt":
            return bool(value < want)
        if op == "gte":
            return bool(value >= want)
        return bool(value <= want)  # lte
    except TypeError:
        return False


@dataclass
class VastFake(ResettableFake):
    key: str = "vast_GOODKEY_0123456789abcdef0123"
    user_id: int = 40217
    email: str = "cg-team@example.com"
    username: str = "cgteam"
    credit: float = 12.5
    balance: float = 0.0
    instances: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": 901, "actual_status": "running", "gpu_name": "RTX 4090", "dph_total": 0.41},
            {"id": 902, "actual_status": "exited", "gpu_name": "RTX 3090", "dph_total": 0.22},
        ]
    )
    offers: list[dict[str, Any]] = field(default_factory=default_offers)
    rate_limit_first: int = 0
    rate_limit_asks: int = 0
    retry_after: str | None = None
    direct_ssh: bool = True
    next_instance_id: int = 7_300_001
    asks_seen: int = 0
    #: Instance id -> that instance's own API key (what the container gets as
    #: CONTAINER_API_KEY).
    instance_keys: dict[int, str] = field(default_factory=dict)
    #: The permission categories of a scoped key (docs.vast.ai "Permissions"); None: an
    #: unrestricted key. A route outside them answers 403.
    key_permissions: list[str] | None = None
    #: Offers still listed by the search but rented by someone else before an ask reaches
    #: them (the ask answers 404 ``no_such_ask``).
    taken_before_ask: list[int] = field(default_factory=list)
    #: The machines behind created instances; set per test with ``reset(hosts=...)``.
    hosts: MachineHosts | None = None
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        hosts, self.hosts = self.hosts, None  # (a MachineHosts is not copied: reset sets it)
        self._capture_defaults()
        self.hosts = hosts
        route = self.server.route
        for path in ("/api/v0/users/current", "/api/v0/users/current/"):
            route("GET", path)(self._guard(self._user, "user_read"))
        for path in ("/api/v0/instances", "/api/v0/instances/"):
            route("GET", path)(self._guard(self._instances, "instance_read"))
        route("POST", "/api/v0/bundles/")(self._guard(self._bundles, "misc"))
        route("PUT", "/api/v0/asks/{id}/")(self._guard(self._ask, "instance_write"))
        route("GET", "/api/v0/instances/{id}/")(self._guard(self._show, "instance_read", own=True))
        route("DELETE", "/api/v0/instances/{id}/")(
            self._guard(self._destroy, "instance_write", own=True)
        )

    @property
    def api_base(self) -> str:
        return f"{self.server.base}/api/v0"

    def _guard(self, route: Any, permission: str, *, own: bool = False) -> Any:
        """Rate limit, then the account key and its ``permission`` (or, for ``own`` routes,
        the instance's own key, for that instance only)."""

        def wrapped(req: Request) -> Reply:
            with self._lock:
                self._seen += 1
                limited = self._seen <= self.rate_limit_first
            if limited:
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return reply_json(429, {"detail": "API requests too frequent"}, headers)
            allowed = req.bearer == self.key
            if not allowed and own and req.bearer is not None:
                instance_id = _int(req.params.get("id"))
                allowed = self.instance_keys.get(instance_id or -1) == req.bearer
                if allowed:
                    return route(req)  # type: ignore[no-any-return]
            if not allowed:
                return reply_json(
                    401, {"success": False, "error": "invalid_user", "msg": "Invalid user key"}
                )
            if self.key_permissions is not None and permission not in self.key_permissions:
                return reply_json(
                    403,
                    {
                        "success": False,
                        "error": "forbidden",
                        "msg": f"this API key lacks the {permission} permission",
                    },
                )
            reply: Reply = route(req)
            return reply

        return wrapped

    # -- account -------------------------------------------------------------------------

    def _user(self, req: Request) -> Reply:
        return reply_json(
            200,
            {
                "id": self.user_id,
                "key_id": 7731,
                "email": self.email,
                "username": self.username,
                "fullname": "CG Team",
                "credit": self.credit,
                "balance": self.balance,
                "can_pay": self.credit > 0,
                "api_key": self.key,  # the real API echoes it; a client must never show it
                "ssh_key": "ssh-ed25519 AAAAC3Nza... cg@studio",
                "sid": "s-77",
            },
        )

    # -- offers --------------------------------------------------------------------------

    def _bundles(self, req: Request) -> Reply:
        try:
            query = req.json()
        except ValueError:
            return _bad_search("Invalid json body")
        if not isinstance(query, dict):
            return _bad_search("the query must be a JSON object")
        filters = []
        for name, cond in query.items():
            if name in SEARCH_KEYS:
                continue
            if name not in FILTER_FIELDS:
                return _bad_search(f"unknown field {name!r}")
            if not isinstance(cond, dict) or not cond:
                return _bad_search(f"{name}: expected {{operator: value}}")
            for op, want in cond.items():
                if op not in OPERATORS:
                    return _bad_search(f"{name}: unknown operator {op!r}")
                if op in ("in", "notin") and not isinstance(want, list):
                    return _bad_search(f"{name}: {op} needs a list")
                filters.append((name, op, want))
        kind = query.get("type", "on-demand")
        if kind not in ("on-demand", "ondemand", "bid", "reserved"):
            return _bad_search(f"unknown type {kind!r}")
        order = query.get("order", [["score", "desc"]])
        if not isinstance(order, list) or not all(
            isinstance(o, list) and len(o) == 2 and o[1] in ("asc", "desc") for o in order
        ):
            return _bad_search("order must be a list of [field, asc|desc]")
        limit = query.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            return _bad_search("limit must be an integer")
        storage = query.get("allocated_storage")
        if storage is not None and (
            isinstance(storage, bool) or not isinstance(storage, int | float)
        ):
            return _bad_search("allocated_storage must be a number")
        with self._lock:
            found = [
                dict(o)
                for o in self.offers
                if all(_matches(_field_value(o, n), op, w) for n, op, w in filters)
            ]
        for name, direction in reversed(order):  # (stable sorts: the first key wins)
            found.sort(key=_sort_key(name), reverse=direction == "desc")
        if limit is not None:
            found = found[: max(0, limit)]
        return reply_json(200, {"offers": found})

    # -- instances -----------------------------------------------------------------------

    def _ask(self, req: Request) -> Reply:
        with self._lock:
            self.asks_seen += 1
            if self.asks_seen <= self.rate_limit_asks:
                return reply_json(
                    429, {"detail": "API requests too frequent endpoint threshold=4.5"}
                )
        ask_id = _int(req.params.get("id"))
        try:
            body = req.json()
        except ValueError:
            body = None
        problem = _ask_problem(body)
        if problem is not None:
            return reply_json(
                400,
                {
                    "success": False,
                    "error": "invalid_args",
                    "msg": f"error 400/3467: Invalid args: {problem}",
                    "ask_id": ask_id,
                },
            )
        assert isinstance(body, dict)
        with self._lock:
            found = next((o for o in self.offers if o["id"] == ask_id and o["rentable"]), None)
            if found is None or ask_id in self.taken_before_ask:
                return reply_json(
                    404,
                    {
                        "success": False,
                        "error": "no_such_ask",
                        "msg": f"error 404/3603: no_such_ask Instance type by id {ask_id} is "
                        "not available.",
                        "ask_id": ask_id,
                    },
                )
            found["rentable"] = False  # each offer creates one instance
            instance_id = self.next_instance_id
            self.next_instance_id += 1
            instance_key = secrets.token_hex(32)
            self.instance_keys[instance_id] = instance_key
            port = self.hosts.boot(str(instance_id), body["onstart"]) if self.hosts else 22
            self.instances.append(
                {
                    "id": instance_id,
                    "actual_status": None,
                    "intended_status": "running",
                    "cur_state": "running",
                    "label": body["label"],
                    "image_uuid": body["image"],
                    "image_runtype": body.get("runtype", "ssh"),
                    "onstart": body["onstart"],
                    "disk_space": float(body["disk"]),
                    "machine_id": found["machine_id"],
                    "gpu_name": found["gpu_name"],
                    "gpu_ram": found["gpu_ram"],
                    "geolocation": found["geolocation"],
                    "dph_total": found["dph_total"],
                    "start_date": time.time(),
                    "ssh_idx": "5",
                    "_port": port,  # (the fake's: which port its machine's sshd took)
                }
            )
        return reply_json(
            200, {"success": True, "new_contract": instance_id, "instance_api_key": instance_key}
        )

    def _advance(self, inst: dict[str, Any]) -> None:
        """One step of a created instance's boot: null -> loading -> running (sshd up)."""
        if inst.get("actual_status") is None and "_port" in inst:
            inst["actual_status"] = "loading"
        elif inst.get("actual_status") == "loading" and self._booted(inst):
            inst["actual_status"] = "running"
            port = inst["_port"]
            inst["public_ipaddr"] = "127.0.0.1"
            inst["ssh_host"] = "127.0.0.1"  # (Vast's proxy is sshN.vast.ai; here the same sshd)
            inst["ssh_port"] = port
            inst["ports"] = (
                {"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
                if self.direct_ssh
                else {}
            )

    def _booted(self, inst: dict[str, Any]) -> bool:
        if self.hosts is None:
            return True
        machine = self.hosts.machines.get(str(inst["id"]))
        return machine is not None and machine.proc is not None

    @staticmethod
    def _public(inst: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in inst.items() if not k.startswith("_")}

    def _instances(self, req: Request) -> Reply:
        with self._lock:
            for inst in self.instances:
                self._advance(inst)
            items = [self._public(i) for i in self.instances]
        return reply_json(200, {"instances": items})

    def _find(self, req: Request) -> dict[str, Any] | None:
        instance_id = _int(req.params.get("id"))
        return next((i for i in self.instances if i.get("id") == instance_id), None)

    def _show(self, req: Request) -> Reply:
        with self._lock:
            inst = self._find(req)
            if inst is None:
                return reply_json(
                    404,
                    {"success": False, "error": "no_such_instance", "msg": "Instance not found"},
                )
            self._advance(inst)
            return reply_json(200, {"instances": self._public(inst)})

    def _destroy(self, req: Request) -> Reply:
        with self._lock:
            inst = self._find(req)
            if inst is None:
                return reply_json(
                    404, {"success": False, "error": "not_found", "msg": "Instance not found"}
                )
            self.instances.remove(inst)
            self.instance_keys.pop(inst["id"], None)
        if self.hosts is not None:
            self.hosts.stop(str(inst["id"]))
        return reply_json(200, {"success": True, "msg": "Instance destroyed successfully"})

    # -- for tests -------------------------------------------------------------------------

    def instance(self, instance_id: int | str) -> dict[str, Any] | None:
        """The instance as the fake holds it now (None: destroyed or never made)."""
        with self._lock:
            return next((i for i in self.instances if i.get("id") == _int(instance_id)), None)

    @property
    def created(self) -> list[dict[str, Any]]:
        """The instances created through ``/asks/`` still held."""
        with self._lock:
            return [self._public(i) for i in self.instances if "_port" in i]


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _sort_key(name: str) -> Any:
    return lambda item: item.get(name) or 0


def _bad_search(msg: str) -> Reply:
    return reply_json(400, {"error": "invalid_request", "msg": msg})


def _ask_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "invalid json"
    if body.get("client_id") != "me":
        return "'client_id' must be 'me'"
    for name in ("image", "label", "onstart"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"'{name}' is required"
    if len(body["onstart"]) > ONSTART_MAX:
        return f"'onstart' is longer than {ONSTART_MAX} characters"
    if len(body["label"]) > 256:
        return "'label' is longer than 256 characters"
    disk = body.get("disk")
    if isinstance(disk, bool) or not isinstance(disk, int | float) or disk < 8:
        return "'disk' must be at least 8 (GB)"
    if "runtype" in body and body["runtype"] not in RUNTYPES:
        return f"unknown runtype {body['runtype']!r}"
    if "env" in body and not isinstance(body["env"], str | dict):
        return "'env' must be docker options text"
    return None
