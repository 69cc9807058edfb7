"""A contract fake of Lambda Cloud's REST API (``/api/v1``): instance types, SSH keys and
instances (launch, list, get, terminate).

Written from Lambda's Cloud API reference (OpenAPI 1.8.3 / 1.10: responses are ``{"data":
...}``, errors ``{"error": {"code", "message", "suggestion"}}``) and docs/providers.md, not from
the adapter. Every route needs ``Authorization: Bearer KEY`` (or HTTP Basic with the key as the
user name, which Lambda also accepts); anything else is 401 ``global/invalid-api-key``. Wrong
paths 404, wrong methods 405.

* ``GET /instance-types`` — ``{"data": {"<type>": {"instance_type": {"name", "description",
  "gpu_description", "price_cents_per_hour", "specs": {"vcpus", "memory_gib", "storage_gib",
  "gpus"}}, "regions_with_capacity_available": [{"name", "description"}]}}}``. ``capacity``
  sets, per type, the regions with capacity now (types in ``TYPES``).
* ``GET /ssh-keys`` -> ``{"data": [{"id", "name", "public_key"}]}``; ``POST /ssh-keys``
  ``{"name", "public_key"}`` (name 1-64 characters and unique, an OpenSSH public key; the fake
  does not model Lambda's key generation, so ``public_key`` is required) -> ``{"data": {"id",
  "name", "public_key"}}``; ``DELETE /ssh-keys/{id}`` -> ``{"data": {}}``. Bad or duplicate
  input, an unknown id: 400 ``global/invalid-parameters`` (Lambda documents no 404 there).
  ``refuse_key_deletion`` answers every deletion 400.
* ``POST /instance-operations/launch`` — only the documented fields (``region_name``,
  ``instance_type_name``, ``ssh_key_names`` required; ``file_system_names``,
  ``file_system_mounts``, ``hostname``, ``name`` (<= 64), ``image``, ``user_data`` (<= 1 MB),
  ``tags`` (``[{"key": ^[a-z][a-z0-9-:]+$ <= 55, "value" <= 128}]``), ``firewall_rulesets``);
  anything else 400 ``global/invalid-parameters``. Exactly one existing SSH key name; an unknown
  type, key or filesystem is 404 ``global/object-does-not-exist``. No capacity for the type in
  the region (``launch_capacity`` when set — a listing that says yes while the launch says no
  — else ``capacity``): 400 ``instance-operations/launch/insufficient-capacity``. ->
  ``{"data": {"instance_ids": [id]}}``.
* ``GET /instances`` (live ones) and ``GET /instances/{id}`` (404 ``global/object-does-not-exist``
  for an unknown id): ``{"id", "name", "ip", "private_ip", "status", "ssh_key_names",
  "file_system_names", "region", "instance_type", "hostname", "jupyter_token", "jupyter_url",
  "actions", "tags"}``. ``booting`` until the machine's sshd runs (with ``hosts``; without,
  after ``booting_polls`` reads), then ``active``; the ``ip`` appears when it is active.
* ``POST /instance-operations/terminate`` ``{"instance_ids": [...]}`` -> ``{"data":
  {"terminated_instances": [... "status": "terminating"]}}``; an unknown or already terminated
  id is 404 ``global/object-does-not-exist``.

The machine (``hosts``: :class:`~tests.fakes.machine_host.MachineHosts`): a launch boots it
from ``user_data``; terminate stops it. Lambda's instances have an address and SSH on port 22
(the API names no port): here each live instance gets its own loopback address (127.0.2.1,
127.0.2.2, ...) whose port :attr:`LambdaFake.ssh_port` (one for the whole fake, known before
any launch: the provider's ``ssh_port`` option) forwards to the machine's sshd — so a test sets
the option once, as a user never has to.

Rate limits (Lambda: about one request a second, one launch every 12 s): ``min_interval_s``
answers 429 ``global/too-many-requests`` to a request that comes sooner than that after the
previous one, ``launch_interval_s`` likewise for launches; ``throttled`` counts those answers.
``rate_limit_first=N`` answers the first N requests 429, with ``Retry-After`` when
``retry_after`` is set.
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .http import FakeServer, Reply, Request, ResettableFake, Route, reply_json
from .machine_host import MachineHosts
from .sshd import free_port

REGION_NAMES = {
    "us-east-1": "Virginia, USA",
    "us-west-1": "California, USA",
    "us-south-1": "Texas, USA",
    "us-midwest-1": "Illinois, USA",
    "europe-central-1": "Germany",
    "asia-northeast-1": "Tokyo, Japan",
    "me-west-1": "Israel",
}

#: type -> (description, gpu description, price in cents/hour, gpus, vcpus, memory GiB)
TYPES: dict[str, tuple[str, str, int, int, int, int]] = {
    "gpu_1x_a10": ("1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 1, 30, 200),
    "gpu_1x_a100": ("1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 1, 30, 200),
    "gpu_1x_h100_pcie": ("1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 1, 26, 200),
    "gpu_8x_a100_80gb_sxm4": ("8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 8, 240, 1800),
}

UNAUTHORIZED = {
    "error": {
        "code": "global/invalid-api-key",
        "message": "API key was invalid, expired, or deleted.",
        "suggestion": "Check your API key or create a new one, then try again.",
    }
}

LAUNCH_FIELDS = {
    "region_name",
    "instance_type_name",
    "ssh_key_names",
    "file_system_names",
    "file_system_mounts",
    "hostname",
    "name",
    "image",
    "user_data",
    "tags",
    "firewall_rulesets",
}
_TAG_KEY = re.compile(r"^[a-z][a-z0-9-:]+$")
_PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$")


def error(status: int, code: str, message: str, suggestion: str | None = None) -> Reply:
    err = {"code": code, "message": message}
    if suggestion is not None:
        err["suggestion"] = suggestion
    return reply_json(status, {"error": err})


def invalid(message: str) -> Reply:
    return error(400, "global/invalid-parameters", message)


def not_found(message: str = "Specified instance does not exist.") -> Reply:
    return error(404, "global/object-does-not-exist", message, "Check the name or the id.")


class Gateway:
    """``ip:port`` forwarding to a machine's sshd (its port from ``target()``; None: not up,
    the connection is closed at once, as a booting machine's port 22 would refuse it)."""

    def __init__(self, ip: str, port: int, target: Any) -> None:
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((ip, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            port = self.target()
            if port is None:
                conn.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", port), 2)
            except OSError:
                conn.close()
                continue
            upstream.settimeout(None)
            conn.settimeout(None)
            self.conns += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        try:  # (wakes the accepting thread: a bare close leaves the port open until it polls)
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@dataclass
class LambdaFake(ResettableFake):
    key: str = "secret_GOODKEY_0123456789abcdef.0123"
    capacity: dict[str, list[str]] = field(
        default_factory=lambda: {
            "gpu_1x_a10": ["us-east-1", "us-west-1"],
            "gpu_1x_a100": ["us-east-1"],
            "gpu_1x_h100_pcie": [],
            "gpu_8x_a100_80gb_sxm4": [],
        }
    )
    launch_capacity: dict[str, list[str]] | None = None
    rate_limit_first: int = 0
    retry_after: str | None = None
    min_interval_s: float = 0.0
    launch_interval_s: float = 0.0
    throttled: int = 0
    hosts: MachineHosts | None = None
    booting_polls: int = 0
    refuse_key_deletion: bool = False
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    ssh_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        self._lock = threading.RLock()
        self._gateways: dict[str, Gateway] = {}
        self._last = 0.0
        self._last_launch = 0.0
        self.ssh_port = free_port()
        routes: dict[tuple[str, str], Route] = {
            ("GET", "/api/v1/instance-types"): self._instance_types,
            ("GET", "/api/v1/ssh-keys"): self._list_keys,
            ("POST", "/api/v1/ssh-keys"): self._add_key,
            ("DELETE", "/api/v1/ssh-keys/{id}"): self._delete_key,
            ("GET", "/api/v1/instances"): self._list_instances,
            ("GET", "/api/v1/instances/{id}"): self._get_instance,
            ("POST", "/api/v1/instance-operations/launch"): self._launch,
            ("POST", "/api/v1/instance-operations/terminate"): self._terminate,
        }
        for (method, path), fn in routes.items():
            self.server.route(method, path)(self._guarded(fn, launch=path.endswith("/launch")))

    @property
    def api_base(self) -> str:
        return f"{self.server.base}/api/v1"

    def _after_reset(self) -> None:
        self._close_gateways()
        self._last = self._last_launch = 0.0

    def _close_gateways(self) -> None:
        with self._lock:
            gateways, self._gateways = list(self._gateways.values()), {}
        for g in gateways:
            g.close()

    def __exit__(self, *exc: object) -> None:
        self._close_gateways()
        super().__exit__(*exc)

    # -- the checks every request passes ---------------------------------------------------

    def _authorized(self, req: Request) -> bool:
        if req.bearer == self.key:
            return True
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except ValueError:
                return False
            return user == self.key
        return False

    def _too_many(self) -> Reply:
        self.throttled += 1
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return reply_json(
            429,
            {
                "error": {
                    "code": "global/too-many-requests",
                    "message": "Too many requests; slow down.",
                }
            },
            headers,
        )

    def _guarded(self, fn: Route, *, launch: bool) -> Route:
        def route(req: Request) -> Reply:
            with self._lock:
                self._seen += 1
                if self._seen <= self.rate_limit_first:
                    return self._too_many()
                now = time.monotonic()
                early = self.min_interval_s and now - self._last < self.min_interval_s
                self._last = now
                if early:
                    return self._too_many()
                if launch and self.launch_interval_s:
                    if now - self._last_launch < self.launch_interval_s:
                        return self._too_many()
                    self._last_launch = now
                if not self._authorized(req):
                    return reply_json(401, UNAUTHORIZED)
                return fn(req)

        return route

    # -- instance types ----------------------------------------------------------------------

    def _type_doc(self, name: str) -> dict[str, Any]:
        desc, gpu, cents, gpus, vcpus, mem = TYPES[name]
        return {
            "name": name,
            "description": desc,
            "gpu_description": gpu,
            "price_cents_per_hour": cents,
            "specs": {"vcpus": vcpus, "memory_gib": mem, "storage_gib": 512, "gpus": gpus},
        }

    def _instance_types(self, req: Request) -> Reply:
        data: dict[str, Any] = {}
        for name, regions in self.capacity.items():
            data[name] = {
                "instance_type": self._type_doc(name),
                "regions_with_capacity_available": [
                    {"name": r, "description": REGION_NAMES[r]} for r in regions
                ],
            }
        return reply_json(200, {"data": data})

    # -- SSH keys ------------------------------------------------------------------------------

    def _list_keys(self, req: Request) -> Reply:
        return reply_json(200, {"data": list(self.ssh_keys.values())})

    def _add_key(self, req: Request) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return invalid("The request body is not JSON.")
        if not isinstance(body, dict) or set(body) - {"name", "public_key"}:
            return invalid("Unexpected fields in the request.")
        name, public = body.get("name"), body.get("public_key")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            return invalid("name must be 1 to 64 characters.")
        if public is None:
            return invalid("(fake) generating a key pair is not modelled: send public_key.")
        if not isinstance(public, str) or len(public) > 4096 or not _PUBLIC_KEY.match(public):
            return invalid("public_key is not a valid SSH public key.")
        if any(k["name"] == name for k in self.ssh_keys.values()):
            return invalid(f"An SSH key named {name!r} already exists.")
        key = {"id": secrets.token_hex(16), "name": name, "public_key": public}
        self.ssh_keys[key["id"]] = key
        return reply_json(200, {"data": key})

    def _delete_key(self, req: Request) -> Reply:
        key_id = req.params["id"]
        if self.refuse_key_deletion or key_id not in self.ssh_keys:
            return invalid("Specified SSH key does not exist or cannot be deleted.")
        del self.ssh_keys[key_id]
        return reply_json(200, {"data": {}})

    # -- instances ------------------------------------------------------------------------------

    def _status(self, inst: dict[str, Any]) -> str:
        if inst["status"] != "booting":
            return str(inst["status"])
        if self.hosts is not None:
            m = self.hosts.machines.get(inst["id"])
            up = m is not None and m.proc is not None
        else:
            inst["_reads"] += 1
            up = inst["_reads"] > self.booting_polls
        if up:
            inst["status"] = "active"
        return str(inst["status"])

    def _view(self, inst: dict[str, Any]) -> dict[str, Any]:
        status = self._status(inst)
        doc = {k: v for k, v in inst.items() if not k.startswith("_")}
        doc["status"] = status
        if status != "active" and status != "unhealthy":
            doc.pop("ip", None)
            doc.pop("private_ip", None)
        return doc

    def live_instances(self) -> list[dict[str, Any]]:
        with self._lock:
            return [i for i in self.instances.values() if i["status"] != "terminated"]

    def _list_instances(self, req: Request) -> Reply:
        live = [self._view(i) for i in self.instances.values() if i["status"] != "terminated"]
        return reply_json(200, {"data": live})

    def _get_instance(self, req: Request) -> Reply:
        inst = self.instances.get(req.params["id"])
        if inst is None:
            return not_found()
        return reply_json(200, {"data": self._view(inst)})

    def _bad_launch(self, body: Any) -> Reply | None:
        if not isinstance(body, dict):
            return invalid("The request body must be an object.")
        unknown = sorted(set(body) - LAUNCH_FIELDS)
        if unknown:
            return invalid(f"Unknown field(s): {', '.join(unknown)}.")
        for required in ("region_name", "instance_type_name", "ssh_key_names"):
            if required not in body:
                return invalid(f"{required} is required.")
        if body["region_name"] not in REGION_NAMES:
            return invalid("region_name is not a valid region.")
        keys = body["ssh_key_names"]
        if not isinstance(keys, list) or len(keys) != 1 or not isinstance(keys[0], str):
            return invalid("Exactly one SSH key must be specified.")
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 64:
            return invalid("name must be a string of 64 characters or fewer.")
        user_data = body.get("user_data", "")
        if not isinstance(user_data, str) or len(user_data.encode()) > 1_000_000:
            return invalid("user_data must be plain text of at most 1 MB.")
        tags = body.get("tags", [])
        if not isinstance(tags, list):
            return invalid("tags must be a list.")
        for t in tags:
            if (
                not isinstance(t, dict)
                or set(t) != {"key", "value"}
                or not isinstance(t["key"], str)
                or not _TAG_KEY.match(t["key"])
                or len(t["key"]) > 55
                or not isinstance(t["value"], str)
                or len(t["value"]) > 128
            ):
                return invalid("A tag is not a valid key/value pair.")
        if not isinstance(body.get("file_system_names", []), list):
            return invalid("file_system_names must be a list.")
        return None

    def _launch(self, req: Request) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return invalid("The request body is not JSON.")
        bad = self._bad_launch(body)
        if bad is not None:
            return bad
        itype, region = body["instance_type_name"], body["region_name"]
        if itype not in TYPES:
            return not_found(f"Instance type {itype!r} does not exist.")
        (key_name,) = body["ssh_key_names"]
        if not any(k["name"] == key_name for k in self.ssh_keys.values()):
            return not_found(f"SSH key {key_name!r} does not exist.")
        if body.get("file_system_names"):
            return not_found("File system does not exist.")
        capacity = self.launch_capacity if self.launch_capacity is not None else self.capacity
        if region not in capacity.get(itype, []):
            return error(
                400,
                "instance-operations/launch/insufficient-capacity",
                "Not enough capacity to fulfill launch request.",
                "Try a different region or instance type.",
            )
        iid = secrets.token_hex(16)
        used = {i["ip"] for i in self.instances.values() if i["status"] != "terminated"}
        # (127.0.2.x: addresses nothing else in the tests binds, so the fake's one port is
        # free on each of them whatever other tests hold on 127.0.0.1)
        ip = next(f"127.0.2.{n}" for n in range(1, 255) if f"127.0.2.{n}" not in used)
        inst: dict[str, Any] = {
            "id": iid,
            "name": body.get("name", ""),
            "ip": ip,
            "private_ip": "10.0.2.100",
            "status": "booting",
            "ssh_key_names": [key_name],
            "file_system_names": [],
            "region": {"name": region, "description": REGION_NAMES[region]},
            "instance_type": self._type_doc(itype),
            "hostname": ip.replace(".", "-"),
            "jupyter_token": secrets.token_hex(16),
            "jupyter_url": "https://jupyter-fake.lambdaspaces.com/?token=redacted",
            "actions": {
                a: {"available": True} for a in ("migrate", "rebuild", "restart", "terminate")
            },
            "tags": list(body.get("tags", [])),
            "_user_data": body.get("user_data", ""),
            "_reads": 0,
        }
        self.instances[iid] = inst
        if self.hosts is not None:
            try:
                self.hosts.boot(iid, inst["_user_data"])
            except ValueError:  # the script installs no keys: the machine runs, SSH refuses
                inst["status"] = "unhealthy"
            hosts = self.hosts

            def target() -> int | None:
                m = hosts.machines.get(iid)
                return m.port if m is not None and m.proc is not None else None

            self._gateways[iid] = Gateway(ip, self.ssh_port, target)
        return reply_json(200, {"data": {"instance_ids": [iid]}})

    def _terminate(self, req: Request) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return invalid("The request body is not JSON.")
        ids = body.get("instance_ids") if isinstance(body, dict) else None
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, str) for i in ids)
            or set(body) != {"instance_ids"}
        ):
            return invalid("instance_ids must be a list of instance ids.")
        if any(self.instances.get(i, {}).get("status", "terminated") == "terminated" for i in ids):
            return not_found()
        done = []
        for iid in ids:
            inst = self.instances[iid]
            view = self._view(inst)
            inst["status"] = "terminated"
            if self.hosts is not None:
                self.hosts.stop(iid)
            gateway = self._gateways.pop(iid, None)
            if gateway is not None:
                gateway.close()
            view["status"] = "terminating"
            done.append(view)
        return reply_json(200, {"data": {"terminated_instances": done}})
