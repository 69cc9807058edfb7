"""A contract fake of Paperspace's public API (``https://api.paperspace.com/v1``).

Written from the API reference (docs.digitalocean.com/reference/paperspace/api-reference:
Authentication, Machines, Machine Types, OS Templates, Private Networks, Projects, Shared Drives,
Startup Scripts), the request and reply types of Paperspace's own ``pspace`` CLI (generated from
the API's OpenAPI document) and docs/providers.md, not from the adapter:

* ``GET /v1/machines``, ``/v1/projects``, ``/v1/startup-scripts``, ``/v1/private-networks``,
  ``/v1/shared-drives``, ``/v1/os-templates`` — ``Authorization: Bearer KEY``; paged lists
  ``{"hasMore", "items", "nextPage"}`` with the query parameters ``after`` (the cursor from
  ``nextPage``), ``limit`` (1-120; anything else is 400), ``orderBy``, ``order``, and the
  filters ``name`` / ``region`` where the API has them (the fake compares them exactly).
* ``GET /v1/auth/session`` — ``null`` when the key is not accepted (documented: "If a user is
  not logged in, this will be null"), else ``{"team": {...}, "user": {...}}``.
* ``GET /v1/machine-availability?machineType=&region=`` (both required) -> ``{"available"}``
  from :attr:`PaperspaceFake.availability` (a machine type not listed there is not available).
* ``POST /v1/startup-scripts`` ``{"name", "script", "isRunOnce"?}`` -> the script (without its
  text, as the API answers); ``GET`` / ``DELETE /v1/startup-scripts/{id}``.
* ``POST /v1/machines`` — the documented body only: ``name``, ``machineType``, ``templateId``
  (an OS template the fake lists), ``region`` (``ny2``, ``ca1``, ``ams1``), ``diskSize``
  required; ``startupScriptId`` / ``networkId`` must exist; ``autoShutdownTimeout`` a positive
  number of hours; an unknown key or a wrong type is 400 ``{"code", "message"}`` (the API's
  error shape), as is a machine type :attr:`availability` says is not available. The reply is
  ``{"data": machine, "event": {...}}``. ``GET /v1/machines/{id}`` is the machine (404 once
  deleted); ``DELETE`` deletes it at once.
* The machine's life: ``provisioning`` until its sshd is up — with ``hosts`` (a
  :class:`~tests.fakes.machine_host.MachineHosts`) the fake boots the text of the start-up
  script named by ``startupScriptId`` (``hosts.boot``) and reports ``ready`` with ``publicIp``
  ``127.0.0.1`` once that sshd runs (the port is the adapter's ``ssh_port`` option; the API
  has no port); without ``hosts`` a machine is ``ready`` when next read. Auto-shutdown is
  enforced: a machine older than ``autoShutdownTimeout`` hours goes ``off`` (its sshd stops);
  :attr:`hour_s` (fake only) makes an hour that many seconds. Deleting a machine stops its sshd.
* ``POST /v1/private-networks`` ``{"name", "region"}``; ``POST /v1/shared-drives`` ``{"name",
  "networkId", "region", "size"}`` (size in GB, 250 to 2,000; the network must be in that
  region); a drive, in every reply (create, list, get), carries ``mountPoint`` — the SMB share
  ``\\\\<ip>\\<drive id>`` in the private network, as the API reference's example writes it
  (``"\\\\\\\\10.64.92.2\\\\sdvkpg3v2v"`` in JSON) —, ``username`` (:data:`DRIVE_USER`),
  ``password`` (:data:`DRIVE_PASSWORD`, a canary tests look for) and ``size`` in bytes;
  ``GET`` / ``DELETE`` by id for both. ``list_without_credentials`` (fake only) leaves the
  three out of the drive list, for an adapter that must then ``GET`` the drive.
* A bad or missing key on the lists: ``bad_key="401"`` answers 401 ``{"code", "message"}``;
  ``"null_body"`` a 200 whose body is ``null``; ``"empty_body"`` a 200 with no body at all;
  ``"wrong_shape"`` a 200 with an object that is not a page — the forms a body-less "success"
  can take, which docs/providers.md says never to trust. Every other route answers 401.
* Wrong paths 404, wrong methods 405.

Give ``hosts`` with ``reset(hosts=...)`` (it is not copied).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .http import FakeServer, Reply, Request, ResettableFake, reply_json

if TYPE_CHECKING:
    from .machine_host import MachineHosts

PAGE_SIZE = 20  # the fake's default page size when no limit is given
REGIONS = ("ny2", "ca1", "ams1")
DRIVE_PASSWORD = "drive-password-canary-7f3e"
DRIVE_USER = "sdusr7qk2"
DRIVE_HOST = "10.64.0.2"
ML_TEMPLATE_ID = "tml22a4b"

_MACHINE_KEYS: dict[str, type | tuple[type, ...]] = {
    "accessorIds": list,
    "autoShutdownEnabled": bool,
    "autoShutdownForce": bool,
    "autoShutdownTimeout": (int, float),
    "autoSnapshotEnabled": bool,
    "autoSnapshotFrequency": str,
    "autoSnapshotSaveCount": int,
    "diskSize": int,
    "emailPassword": bool,
    "enableNvlink": bool,
    "machineType": str,
    "name": str,
    "networkId": str,
    "publicIpType": str,
    "region": str,
    "restorePointEnabled": bool,
    "restorePointFrequency": str,
    "startOnCreate": bool,
    "startupScriptId": str,
    "takeInitialSnapshot": bool,
    "templateId": str,
}
_MACHINE_REQUIRED = ("name", "machineType", "templateId", "region", "diskSize")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bad(message: str, status: int = 400) -> Reply:
    code = {400: "BAD_REQUEST", 404: "NOT_FOUND", 500: "INTERNAL_SERVER_ERROR"}[status]
    return reply_json(status, {"code": code, "message": message})


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_")}


@dataclass
class PaperspaceFake(ResettableFake):
    key: str = "ps_GOODKEY_0123456789abcdef0123"
    email: str = "lead@example.com"
    team: str = "vnstudio"
    bad_key: str = "401"  # or "null_body", "empty_body", "wrong_shape"
    machines: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": "psm1x2y3",
                "name": "comfy-a4000",
                "state": "ready",
                "machineType": "A4000",
                "region": "ny2",
            },
            {
                "id": "psm4z5w6",
                "name": "spare",
                "state": "off",
                "machineType": "A4000",
                "region": "ny2",
            },
        ]
    )
    projects: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": "pr1ab2cd3", "name": "comfyvn-importer", "dtCreated": "2025-01-02T03:04:05Z"},
            {"id": "pr9zz8yy7", "name": "scratch", "dtCreated": "2025-02-02T03:04:05Z"},
        ]
    )
    startup_scripts: list[dict[str, Any]] = field(default_factory=list)
    private_networks: list[dict[str, Any]] = field(default_factory=list)
    shared_drives: list[dict[str, Any]] = field(default_factory=list)
    os_templates: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": "tkni3aa4",
                "name": "Ubuntu 20.04 Server",
                "agentType": "LinuxHeadless",
                "operatingSystemLabel": "Ubuntu 20.04",
                "defaultSizeGb": 50,
                "dtCreated": "2021-06-01T00:00:00Z",
                "availableMachineTypes": [{"machineTypeLabel": "C4", "isAvailable": True}],
            },
            {
                "id": "tmlold20",
                "name": "ML-in-a-Box Ubuntu 20.04",
                "agentType": "LinuxHeadless",
                "operatingSystemLabel": "Ubuntu 20.04",
                "defaultSizeGb": 100,
                "dtCreated": "2021-09-16T00:00:00Z",
                "availableMachineTypes": [{"machineTypeLabel": "A4000", "isAvailable": True}],
            },
            {
                "id": ML_TEMPLATE_ID,
                "name": "ML-in-a-Box Ubuntu 22.04",
                "agentType": "LinuxHeadless",
                "operatingSystemLabel": "Ubuntu 22.04",
                "defaultSizeGb": 100,
                "dtCreated": "2023-05-01T00:00:00Z",
                "availableMachineTypes": [
                    {"machineTypeLabel": "A4000", "isAvailable": True},
                    {"machineTypeLabel": "A6000", "isAvailable": True},
                ],
            },
        ]
    )
    #: machine type -> whether ``machine-availability`` says it can be had (any region).
    availability: dict[str, bool] = field(default_factory=lambda: {"A4000": True})
    hosts: MachineHosts | None = None
    hour_s: float = 3600.0  # (fake only) how many seconds an auto-shutdown hour lasts
    fail_script_delete: bool = False  # DELETE /startup-scripts/{id} answers 500
    list_without_credentials: bool = False  # (fake only) the drive list omits the credentials
    seq: int = 0
    server: FakeServer = field(default_factory=FakeServer)

    def __post_init__(self) -> None:
        self._capture_defaults()
        route = self.server.route
        route("GET", "/v1/machines")(self._machine_list)
        route("POST", "/v1/machines")(self._machine_create)
        route("GET", "/v1/machines/{id}")(self._machine_get)
        route("DELETE", "/v1/machines/{id}")(self._machine_delete)
        route("GET", "/v1/projects")(lambda req: self._list(req, self.projects))
        route("GET", "/v1/auth/session")(self._session)
        route("GET", "/v1/machine-availability")(self._availability)
        route("GET", "/v1/os-templates")(
            self._authed(lambda req: self._list(req, self.os_templates))
        )
        route("GET", "/v1/startup-scripts")(
            self._authed(lambda req: self._list(req, self.startup_scripts))
        )
        route("POST", "/v1/startup-scripts")(self._authed(self._script_create))
        route("GET", "/v1/startup-scripts/{id}")(
            self._authed(lambda req: self._get(req, self.startup_scripts, "startup script"))
        )
        route("DELETE", "/v1/startup-scripts/{id}")(self._authed(self._script_delete))
        route("GET", "/v1/private-networks")(
            self._authed(lambda req: self._list(req, self.private_networks))
        )
        route("POST", "/v1/private-networks")(self._authed(self._network_create))
        route("GET", "/v1/private-networks/{id}")(
            self._authed(lambda req: self._get(req, self.private_networks, "private network"))
        )
        route("DELETE", "/v1/private-networks/{id}")(self._authed(self._network_delete))
        route("GET", "/v1/shared-drives")(self._authed(self._drive_list))
        route("POST", "/v1/shared-drives")(self._authed(self._drive_create))
        route("GET", "/v1/shared-drives/{id}")(
            self._authed(lambda req: self._get(req, self.shared_drives, "shared drive"))
        )
        route("DELETE", "/v1/shared-drives/{id}")(self._authed(self._drive_delete))

    @property
    def api_base(self) -> str:
        return f"{self.server.base}/v1"

    # -- what tests look at ----------------------------------------------------------------

    def machine(self, name: str) -> dict[str, Any] | None:
        """The machine of that name the fake holds (as the API would show it), if any."""
        for m in self.machines:
            if m.get("name") == name:
                self._refresh(m)
                return _public(m)
        return None

    def script_text(self, script_id: str) -> str:
        """The text of a start-up script as it was sent."""
        (script,) = [s for s in self.startup_scripts if s["id"] == script_id]
        return str(script["_script"])

    def bodies(self, method: str, path: str) -> list[Any]:
        return [r.json() for r in self.requests if (r.method, r.path) == (method, path)]

    # -- common ----------------------------------------------------------------------------

    def _rejected(self) -> Reply:
        if self.bad_key == "null_body":
            return 200, {"Content-Type": "application/json"}, "null"
        if self.bad_key == "empty_body":
            return 200, {"Content-Type": "application/json"}, b""
        if self.bad_key == "wrong_shape":
            return reply_json(200, {"message": "ok"})
        return reply_json(401, {"code": "UNAUTHORIZED", "message": "You must be logged in."})

    def _authed(self, route: Any) -> Any:
        def wrapped(req: Request) -> Reply:
            if req.bearer != self.key:
                return reply_json(
                    401, {"code": "UNAUTHORIZED", "message": "You must be logged in."}
                )
            return route(req)  # type: ignore[no-any-return]

        return wrapped

    def _next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq:05d}"

    def _list(self, req: Request, items: list[dict[str, Any]]) -> Reply:
        if req.bearer != self.key:
            return self._rejected()
        try:
            limit = int(req.query.get("limit", [PAGE_SIZE])[0])
            start = int(req.query.get("after", ["0"])[0])
        except ValueError:
            return _bad("invalid query")
        if not 1 <= limit <= 120 or start < 0:
            return _bad("limit must be 1-120")
        for m in items:
            self._refresh(m)
        wanted = [
            i
            for i in items
            if all(i.get(k) == req.query[k][0] for k in ("name", "region") if k in req.query)
        ]
        page = [_public(i) for i in wanted[start : start + limit]]
        more = start + limit < len(wanted)
        return reply_json(
            200, {"hasMore": more, "items": page, "nextPage": str(start + limit) if more else None}
        )

    def _get(self, req: Request, items: list[dict[str, Any]], what: str) -> Reply:
        for item in items:
            if item["id"] == req.params["id"]:
                self._refresh(item)
                return reply_json(200, _public(item))
        return _bad(f"{what} not found", 404)

    @staticmethod
    def _body(req: Request) -> dict[str, Any] | None:
        try:
            body = req.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # -- session, availability ---------------------------------------------------------------

    def _session(self, req: Request) -> Reply:
        if req.bearer != self.key:
            return reply_json(200, None)
        return reply_json(
            200,
            {
                "team": {
                    "analyticsId": 11,
                    "id": "te1x2y3z",
                    "isPrivate": False,
                    "maxMachines": 10,
                    "namespace": self.team,
                },
                "user": {
                    "analyticsId": 22,
                    "dtConfirmed": "2024-01-01T00:00:00Z",
                    "dtCreated": "2024-01-01T00:00:00Z",
                    "email": self.email,
                    "firstName": "Lead",
                    "id": "us9a8b7c",
                    "isPasswordAuthEnabled": True,
                    "isPhoneVerified": False,
                    "isQrCodeBasedMfaConfirmed": False,
                    "isQrCodeBasedMfaEnabled": False,
                },
            },
        )

    def _availability(self, req: Request) -> Reply:
        if req.bearer != self.key:
            return self._rejected()
        machine_type = req.query.get("machineType", [""])[0]
        region = req.query.get("region", [""])[0]
        if not machine_type or not region:
            return _bad("machineType and region are required")
        if region not in REGIONS:
            return _bad(f"invalid region {region!r}")
        return reply_json(200, {"available": self.availability.get(machine_type, False)})

    # -- start-up scripts ----------------------------------------------------------------------

    def _script_create(self, req: Request) -> Reply:
        body = self._body(req)
        if body is None:
            return _bad("the body must be a JSON object")
        unknown = set(body) - {"name", "script", "isRunOnce"}
        if unknown:
            return _bad(f"unrecognized keys: {', '.join(sorted(unknown))}")
        for key in ("name", "script"):
            if not isinstance(body.get(key), str) or not body[key]:
                return _bad(f"{key}: required")
        if "isRunOnce" in body and not isinstance(body["isRunOnce"], bool):
            return _bad("isRunOnce: expected boolean")
        script = {
            "id": self._next_id("scr"),
            "name": body["name"],
            "description": None,
            "isEnabled": True,
            "isRunOnce": bool(body.get("isRunOnce", False)),
            "assignedMachineIds": [],
            "dtCreated": _now(),
            "dtDeleted": None,
            "_script": body["script"],
        }
        self.startup_scripts.append(script)
        return reply_json(200, _public(script))

    def _script_delete(self, req: Request) -> Reply:
        if self.fail_script_delete:
            return _bad("something went wrong", 500)
        for script in list(self.startup_scripts):
            if script["id"] == req.params["id"]:
                self.startup_scripts.remove(script)
                return reply_json(200, {**_public(script), "dtDeleted": _now()})
        return _bad("startup script not found", 404)

    # -- machines ---------------------------------------------------------------------------

    def _machine_list(self, req: Request) -> Reply:
        return self._list(req, self.machines)

    def _machine_get(self, req: Request) -> Reply:
        if req.bearer != self.key:
            return self._rejected()
        return self._get(req, self.machines, "machine")

    def _machine_create(self, req: Request) -> Reply:
        if req.bearer != self.key:
            return self._rejected()
        body = self._body(req)
        if body is None:
            return _bad("the body must be a JSON object")
        unknown = set(body) - set(_MACHINE_KEYS)
        if unknown:
            return _bad(f"unrecognized keys: {', '.join(sorted(unknown))}")
        missing = [k for k in _MACHINE_REQUIRED if k not in body]
        if missing:
            return _bad(f"{', '.join(missing)}: required")
        for key, kind in _MACHINE_KEYS.items():
            if key in body and (
                not isinstance(body[key], kind) or isinstance(body[key], bool) != (kind is bool)
            ):
                return _bad(f"{key}: invalid type")
        if body["region"] not in REGIONS:
            return _bad(f"region: invalid enum value {body['region']!r}")
        if body.get("publicIpType", "dynamic") not in ("static", "dynamic", "none"):
            return _bad("publicIpType: invalid enum value")
        if body["diskSize"] < 50:
            return _bad("diskSize: must be at least 50")
        timeout = body.get("autoShutdownTimeout")
        if timeout is not None and timeout <= 0:
            return _bad("autoShutdownTimeout: must be positive")
        if body["templateId"] not in {t["id"] for t in self.os_templates}:
            return _bad(f"template {body['templateId']} not found")
        script = None
        if "startupScriptId" in body:
            script = next(
                (s for s in self.startup_scripts if s["id"] == body["startupScriptId"]), None
            )
            if script is None:
                return _bad("startup script not found")
        if "networkId" in body:
            network = next((n for n in self.private_networks if n["id"] == body["networkId"]), None)
            if network is None or network["region"] != body["region"]:
                return _bad("private network not found in the region")
        if not self.availability.get(body["machineType"], False):
            return _bad(
                f"Machine type {body['machineType']} is out of capacity in {body['region']}"
            )
        mid = self._next_id("ps")
        start = body.get("startOnCreate", True)
        machine: dict[str, Any] = {
            "id": mid,
            "name": body["name"],
            "state": "provisioning" if start else "off",
            "machineType": body["machineType"],
            "region": body["region"],
            "os": "Ubuntu 22.04",
            "agentType": "LinuxHeadless",
            "cpus": 8,
            "ram": 48 * 1024**3,
            "storageTotal": body["diskSize"] * 1024**3,
            "storageUsed": 0,
            "accelerators": [{"name": body["machineType"], "count": 1, "memory": 16}],
            "publicIp": None,
            "publicIpType": body.get("publicIpType", "dynamic"),
            "privateIp": "10.64.0.5",
            "networkId": body.get("networkId"),
            "autoShutdownEnabled": bool(body.get("autoShutdownEnabled", False)),
            "autoShutdownForce": body.get("autoShutdownForce"),
            "autoShutdownTimeout": timeout,
            "autoSnapshotEnabled": False,
            "autoSnapshotFrequency": None,
            "autoSnapshotSaveCount": None,
            "restorePointEnabled": False,
            "restorePointFrequency": None,
            "restorePointSnapshotId": None,
            "updatesPending": False,
            "usageRate": 0.76,
            "storageRate": 0.0,
            "reservation": None,
            "dtCreated": _now(),
            "dtModified": _now(),
            "dtDeleted": None,
            "_t0": time.monotonic(),
            "_booted": False,
        }
        if script is not None:
            script["assignedMachineIds"].append(mid)
            if start and self.hosts is not None:
                self.hosts.boot(mid, script["_script"])
                machine["_booted"] = True
        self.machines.append(machine)
        return reply_json(200, {"data": _public(machine), "event": self._event("create", mid)})

    def _machine_delete(self, req: Request) -> Reply:
        if req.bearer != self.key:
            return self._rejected()
        for m in list(self.machines):
            if m["id"] == req.params["id"]:
                self.machines.remove(m)
                for script in self.startup_scripts:
                    if m["id"] in script["assignedMachineIds"]:
                        script["assignedMachineIds"].remove(m["id"])
                if self.hosts is not None:
                    self.hosts.stop(m["id"])
                doc = {**_public(m), "state": "stopping", "dtDeleted": _now()}
                return reply_json(200, {"data": doc, "event": self._event("deactivate", m["id"])})
        return _bad("machine not found", 404)

    @staticmethod
    def _event(name: str, machine_id: str) -> dict[str, Any]:
        return {
            "id": f"ev{machine_id}{name}",
            "name": name,
            "state": "new",
            "machineId": machine_id,
            "error": None,
            "dtCreated": _now(),
            "dtStarted": None,
            "dtFinished": None,
        }

    def _refresh(self, m: dict[str, Any]) -> None:
        """The machine's state now (see the module's text)."""
        if "_t0" not in m:
            return  # (a machine the test listed as it is)
        if m["state"] == "provisioning":
            booted = self.hosts.machines.get(m["id"]) if self.hosts and m["_booted"] else None
            if not m["_booted"] or (booted is not None and booted.proc is not None):
                m["state"], m["publicIp"] = "ready", "127.0.0.1"
        timeout = m.get("autoShutdownTimeout")
        if (
            m["state"] in ("provisioning", "ready")
            and m.get("autoShutdownEnabled")
            and timeout
            and time.monotonic() - m["_t0"] >= timeout * self.hour_s
        ):
            m["state"], m["publicIp"] = "off", None
            if self.hosts is not None:
                self.hosts.stop(m["id"])

    # -- private networks, shared drives -----------------------------------------------------

    def _network_create(self, req: Request) -> Reply:
        body = self._body(req)
        if body is None:
            return _bad("the body must be a JSON object")
        unknown = set(body) - {"name", "region", "migrateMachines"}
        if unknown:
            return _bad(f"unrecognized keys: {', '.join(sorted(unknown))}")
        if not isinstance(body.get("name"), str) or not body["name"]:
            return _bad("name: required")
        if body.get("region") not in REGIONS:
            return _bad("region: invalid enum value")
        network = {
            "id": self._next_id("pn"),
            "name": body["name"],
            "region": body["region"],
            "network": "10.64.0.0",
            "netmask": "255.255.240.0",
            "dtCreated": _now(),
            "dtDeleted": None,
        }
        self.private_networks.append(network)
        return reply_json(200, network)

    def _network_delete(self, req: Request) -> Reply:
        for network in list(self.private_networks):
            if network["id"] == req.params["id"]:
                if any(d["networkId"] == network["id"] for d in self.shared_drives):
                    return _bad("the private network still has shared drives")
                self.private_networks.remove(network)
                return reply_json(200, {**network, "dtDeleted": _now()})
        return _bad("private network not found", 404)

    def _drive_create(self, req: Request) -> Reply:
        body = self._body(req)
        if body is None:
            return _bad("the body must be a JSON object")
        unknown = set(body) - {"name", "networkId", "region", "size"}
        if unknown:
            return _bad(f"unrecognized keys: {', '.join(sorted(unknown))}")
        missing = [k for k in ("name", "networkId", "region", "size") if k not in body]
        if missing:
            return _bad(f"{', '.join(missing)}: required")
        size = body["size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 250 <= size <= 2000:
            return _bad("size: shared drives are 250 to 2000 GB")
        network = next((n for n in self.private_networks if n["id"] == body["networkId"]), None)
        if network is None or network["region"] != body["region"]:
            return _bad("private network not found in the region")
        did = self._next_id("sd")
        drive = {
            "id": did,
            "name": body["name"],
            "networkId": network["id"],
            "region": body["region"],
            "size": size * 1024**3,
            "mountPoint": f"\\\\{DRIVE_HOST}\\{did}",
            "username": DRIVE_USER,
            "password": DRIVE_PASSWORD,
            "dtCreated": _now(),
            "dtDeleted": None,
        }
        self.shared_drives.append(drive)
        return reply_json(200, drive)

    def _drive_list(self, req: Request) -> Reply:
        if not self.list_without_credentials:
            return self._list(req, self.shared_drives)
        secret = ("mountPoint", "username", "password")
        shown = [{k: v for k, v in d.items() if k not in secret} for d in self.shared_drives]
        return self._list(req, shown)

    def _drive_delete(self, req: Request) -> Reply:
        for drive in list(self.shared_drives):
            if drive["id"] == req.params["id"]:
                self.shared_drives.remove(drive)
                return reply_json(200, {"id": drive["id"]})
        return _bad("shared drive not found", 404)
