"""The HTTP API against its own OpenAPI document (schemathesis, major version 4).

The real server (uvicorn in a thread, ``tests/fakes/api_server.py``) runs on a home whose
providers point at local counterparts only: a RunPod provider at the RunPod contract fake (a
valid key), an SSH and a LAN provider at a closed port of this machine, and the built-in local
GPU. So validation and health checks never leave the machine. Two jobs are queued, so the job
routes have data.

Every operation gets a bounded, seeded run of generated requests (examples, coverage and
fuzzing phases; positive and negative data) with schemathesis' default checks (no 5xx,
documented status codes, content types, headers and response bodies, 401 without the token,
405 with a right ``Allow`` ...) but two whose findings are by design (see the config below).
Path parameters are sometimes replaced by ids that exist (providers, jobs, settings), and some
bodies by requests the service accepts, so the success answers are checked too, not only the
4xx.

Destructive calls (create, register, remove, import, settings changes) run in the order of the
document like any other; after each one the registry and settings are put back as they were,
so no later call sees a missing fixture provider or a generated provider with an address
outside this machine.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hypothesis.strategies as st
import pytest
import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.openapi.checks import UnsupportedMethodResponse

from comfyvn_gui.core.catalog import resources_dir
from comfyvn_gui.core.runs import TEMPLATE_KINDS, shipped_template, template_setting
from comfyvn_gui.core.settings import SETTINGS
from comfyvn_gui.service import Service
from comfyvn_gui.store.paths import resolve_home
from tests.fakes.api_server import ApiServer, api_server
from tests.fakes.http import arun
from tests.fakes.runpod import RunPodFake, health_body

pytestmark = [pytest.mark.usefixtures("secret_service"), pytest.mark.serial]

#: Generated requests per operation in the fuzzing phase (the examples and coverage phases add
#: their own, a bounded number); the seed makes every run send the same requests.
MAX_EXAMPLES = 12
SEED = 20260101

EXAMPLES = resources_dir() / "examples"


# -- the schema --------------------------------------------------------------------------------
#
# schemathesis 4's lazy loader (``schemathesis.pytest.from_fixture``) fails on pytest 9.2
# (``'Function' object has no attribute '_nodeid'``: it rewrites a private pytest attribute that
# no longer exists). So the schema is loaded when the module is collected, from the app's own
# ``openapi()`` (which depends on no home: the app is built on a service that is never used),
# and the fixture checks that the running server serves exactly that document. Each operation
# is then its own test item.


def _app_document() -> dict[str, Any]:
    from comfyvn_gui.api.app import create_app
    from comfyvn_gui.store.paths import Home

    nowhere = Path("/nonexistent/comfyvn-gui-openapi")
    app = create_app(
        Service(Home(nowhere / "config", nowhere / "data", nowhere / "logs")), token="x" * 43
    )
    return app.openapi()


DOCUMENT = _app_document()

#: Ids the fixture home has, used by the path-parameter hook below.
PROVIDER_IDS = ["runpod-fx", "ssh-fx", "lan-fx", "local"]
JOB_IDS = [1, 2]
SETTING_KEYS = sorted(SETTINGS)

schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 30,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            # Every default check runs but two, whose findings here are by design:
            "checks": {
                # A schema-valid body may still be refused with a documented 422 naming the
                # field: the service checks what JSON Schema cannot say (a template's auth
                # fields and patterns, a setting's range, an id that must be registered).
                "positive_data_acceptance": {"enabled": False},
                # pydantic's lax mode takes `0` for `false` and a number of seconds for a
                # date-time, as every FastAPI app does; the document shows the canonical types.
                "negative_data_rejection": {"enabled": False},
            },
        }
    ),
)

_REAL_IDS: dict[str, st.SearchStrategy[Any]] = {
    "provider_id": st.sampled_from(PROVIDER_IDS),
    "job_id": st.sampled_from(JOB_IDS),
    "key": st.sampled_from(SETTING_KEYS),
}


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Half of the generated path parameters are kept, the other half replaced by ids that
    exist, so the routes' success answers are checked too, not only their 404s."""
    names = [n for n in (path_parameters or {}) if n in _REAL_IDS]
    if not names:
        return st.just(path_parameters)
    replaced = st.fixed_dictionaries({n: _REAL_IDS[n] for n in names}).map(
        lambda ids: {**path_parameters, **ids}
    )
    return st.one_of(st.just(path_parameters), replaced)


#: Requests the service accepts, for operations whose generated requests it almost always
#: refuses (a random template id, setting value or provider): ``flatmap_case`` below sends one
#: of these instead of about a third of the generated ones, so the success answers (201 of
#: create, 200 of a setting change ...) are checked against the document too.
_SLUG = st.from_regex(r"[a-z][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
_NOWHERE = "http://127.0.0.1:9"  # never contacted: the provider is removed right after
_PROVIDER_BODY = st.one_of(
    st.fixed_dictionaries(
        {"template_id": st.just("lan"), "id": _SLUG, "config": st.just({"endpoint": _NOWHERE})},
        optional={"name": st.text(min_size=1, max_size=40), "enabled": st.booleans()},
    ),
    st.fixed_dictionaries(
        {
            "template_id": st.just("runpod"),
            "id": _SLUG,
            "base_url": st.just(_NOWHERE),
            "config": st.just({"endpoints": {"graphql": _NOWHERE + "/graphql"}}),
            "secrets": st.fixed_dictionaries(
                {"api_key": st.from_regex(r"rpa_[A-Za-z0-9]{12,24}", fullmatch=True)}
            ),
        },
        optional={"gpu": st.sampled_from(["A100 80GB", "RTX 4090"]), "meta": st.just({})},
    ),
    # An update of a fixture provider (register answers 200; create 409).
    st.fixed_dictionaries(
        {"template_id": st.just("lan"), "id": st.just("lan-fx"), "name": st.just("Renamed")}
    ),
)
_SETTING_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "health.interval_s": st.integers(15, 86400),
    "advisor.budget_usd": st.one_of(st.none(), st.floats(0, 1000, allow_nan=False)),
    "advisor.latency": st.sampled_from(["interactive", "batch"]),
    "advisor.residency": st.lists(st.sampled_from(["eu", "us", "uk", "asia"]), unique=True),
    "checks.timeout_s": st.integers(1, 300),
    "network.ca_bundle": st.one_of(st.none(), st.just("/etc/ssl/certs/extra.pem")),
    "dispatch.max_cost_factor": st.floats(1, 20, allow_nan=False),
    "dispatch.max_runtime_factor": st.floats(1, 50, allow_nan=False),
    "dispatch.boot_timeout_min": st.floats(0.1, 120, allow_nan=False),
    "dispatch.runpod_parallel": st.integers(1, 16),
    "prices.max_age_h": st.floats(0.1, 720, allow_nan=False),
}
# The workflow templates: null, or a valid graph of the kind (the shipped one, else a loader).
_LOADER = {
    "1": {"class_type": "LoadAudio", "inputs": {"audio": "{{input_file}}"}},
    "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "x"}},
}
for _kind in TEMPLATE_KINDS:
    _shipped = shipped_template(_kind)
    _graph = dict(_shipped.graph) if _shipped is not None else _LOADER
    _SETTING_VALUES[template_setting(_kind)] = st.sampled_from([None, _graph])
assert set(_SETTING_VALUES) == set(SETTINGS)
_SETTING = st.sampled_from(sorted(_SETTING_VALUES)).flatmap(
    lambda key: _SETTING_VALUES[key].map(lambda value: (key, value))
)


def _example(folder: str) -> st.SearchStrategy[Any]:
    docs = [json.loads(p.read_text("utf-8")) for p in sorted((EXAMPLES / folder).glob("*.json"))]
    assert docs, folder
    return st.sampled_from(docs)


#: operation -> strategy of (path parameters or None, body)
_GOOD: dict[str, st.SearchStrategy[tuple[dict[str, Any] | None, Any]]] = {
    "POST /api/providers/create": _PROVIDER_BODY.map(lambda b: (None, b)),
    "POST /api/providers/register": _PROVIDER_BODY.map(lambda b: (None, b)),
    "POST /compute/advise": _example("advice").map(lambda b: (None, b)),
    "POST /api/jobs/import-summary": _example("summaries").map(lambda b: (None, b)),
    "PUT /api/settings/{key}": _SETTING.map(lambda kv: ({"key": kv[0]}, {"value": kv[1]})),
    "POST /api/settings": _SETTING.map(lambda kv: (None, {"key": kv[0], "value": kv[1]})),
    "POST /api/jobs/{job_id}/pick": st.tuples(
        st.fixed_dictionaries({"job_id": st.sampled_from(JOB_IDS)}),
        st.fixed_dictionaries({"provider": st.sampled_from([None, *PROVIDER_IDS])}),
    ),
}


@schema.hook
def flatmap_case(
    context: schemathesis.HookContext, case: schemathesis.Case
) -> st.SearchStrategy[schemathesis.Case]:
    good = _GOOD.get(case.operation.label)
    if good is None:
        return st.just(case)

    def use(request: tuple[dict[str, Any] | None, Any]) -> schemathesis.Case:
        path_parameters, body = request
        if path_parameters is not None:
            case.path_parameters = {**(case.path_parameters or {}), **path_parameters}
        case.body = body
        return case

    return st.one_of(st.just(case), st.just(case), good.map(use))


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", path)
    return re.compile("^" + "[^/]+".join(re.escape(p) for p in parts) + "$")


#: (METHOD, path pattern) of every operation with path parameters.
_TEMPLATES = [
    (method.upper(), _template(path))
    for path, item in DOCUMENT["paths"].items()
    if "{" in path
    for method in item
]


@schema.hook
def filter_failure(
    context: schemathesis.HookContext,
    failure: Failure,
    case: schemathesis.Case,
    response: schemathesis.Response,
) -> bool:
    """Drop "wrong answer to an undeclared method" when the method is declared for the path
    after all, by a template: ``GET /api/jobs/import-summary`` is ``GET /api/jobs/{job_id}``
    with a job id that is not a number, and its 422 is right."""
    if not isinstance(failure, UnsupportedMethodResponse):
        return True
    method = (response.request.method or "").upper()
    path = urlsplit(response.request.url or "").path
    return not any(m == method and rx.match(path) for m, rx in _TEMPLATES)


# -- the home the server runs on ---------------------------------------------------------------


@dataclass
class Served:
    srv: ApiServer
    svc: Service
    providers: dict[str, Any] = field(default_factory=dict)  # the export, with secrets
    settings: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> None:
        self.providers = self.svc.export_providers(include_secrets=True)
        self.settings = self.svc.get_settings()

    def _registry_state(self, doc: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        doc = doc or self.svc.export_providers(include_secrets=True)
        return [
            {k: v for k, v in p.items() if k not in ("active", "meta")} for p in doc["providers"]
        ]

    def restore(self) -> None:
        """The registry and the settings as the fixture made them (after a call that may have
        changed them). Cheap when nothing changed."""
        want = self._registry_state(self.providers)
        if self._registry_state() != want:
            self.svc.import_providers(self.providers, replace=True, overwrite=True)
            assert self._registry_state() == want
        if self.svc.get_settings() != self.settings:
            for key in SETTINGS:
                self.svc.unset_setting(key)
            assert self.svc.get_settings() == self.settings


@pytest.fixture(scope="module")
def api(
    secret_service: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One server for every operation of the module, on its own home."""
    base = tmp_path_factory.mktemp("api-schema")
    svc = Service(resolve_home({"COMFYVN_GUI_HOME": str(base / "home")}))
    key_file = base / "id_ed25519"
    key_file.write_text("not a real key\n", "utf-8")
    key_file.chmod(0o600)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed,
        RunPodFake(endpoints={"ep-fx": health_body(idle=2, running=1)}) as runpod,
    ):
        # Bound but not listening: connections to it are refused, and no one else takes it.
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
        svc.create_provider(
            "runpod",
            {
                "id": "runpod-fx",
                "base_url": runpod.serverless_base,
                "config": {"endpoint_id": "ep-fx", "endpoints": {"graphql": runpod.graphql_url}},
                "secrets": {"api_key": runpod.key},
                "meta": {"hourly_usd": 0.4},
            },
        )
        svc.create_provider(
            "ssh",
            {
                "id": "ssh-fx",
                "config": {
                    "hostname": f"127.0.0.1:{closed_port}",
                    "username": "render",
                    "ssh_key_path": str(key_file),
                    "nfs_mount": "/mnt/comfyvn",
                },
            },
        )
        svc.create_provider(
            "lan", {"id": "lan-fx", "config": {"endpoint": f"http://127.0.0.1:{closed_port}"}}
        )
        assert sorted(p.id for p in svc.list_providers()) == sorted(PROVIDER_IDS)
        [valid] = arun(svc.check("validate", ["runpod-fx"], timeout_s=10))
        assert valid.status == "valid", valid
        advice = json.loads((EXAMPLES / "advice" / "seed-cg-super-res.json").read_text("utf-8"))
        jobs = [
            svc.add_job({"title": "sprites", "kind": "sprite_generation", "items": 12}),
            svc.add_job(advice["workload"]),
        ]
        assert [j.id for j in jobs] == JOB_IDS
        with api_server(svc) as srv:
            with srv.client() as client:
                served = client.get("/openapi.json")
            assert served.status_code == 200, served.text
            assert served.json() == DOCUMENT, "the server serves another document than the app's"
            fx = Served(srv=srv, svc=svc)
            fx.snapshot()
            yield fx


#: Operations after which the registry or the settings may differ from the fixture's.
_CHANGES = {
    "POST /api/providers/create",
    "POST /api/providers/register",
    "DELETE /api/providers/remove/{provider_id}",
    "POST /api/providers/import",
    "POST /api/settings",
    "PUT /api/settings/{key}",
    "DELETE /api/settings/{key}",
}
assert _CHANGES <= {f"{m.upper()} {p}" for p, item in DOCUMENT["paths"].items() for m in item}


@schema.parametrize()
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, api: Served) -> None:
    try:
        case.call_and_validate(
            base_url=api.srv.url, headers={"Authorization": f"Bearer {api.srv.token}"}
        )
    finally:
        if case.operation.label in _CHANGES:
            api.restore()


# -- the document itself -----------------------------------------------------------------------

#: The contract's routes (path parameters by position; their names do not matter).
CONTRACT: dict[str, set[str]] = {
    "/api/providers/templates": {"get"},
    "/api/providers": {"get"},
    "/api/providers/{}": {"get"},
    "/api/providers/create": {"post"},
    "/api/providers/register": {"post"},
    "/api/providers/remove/{}": {"delete"},
    "/api/providers/export": {"get"},
    "/api/providers/import": {"post"},
    "/api/providers/{}/validate": {"post"},
    "/api/providers/health": {"get"},
    "/compute/advise": {"get", "post"},  # GET: ComfyVN's query form
    "/api/gpu/local": {"get"},
    # ComfyVN compatibility (docs/api.md)
    "/api/gpu/list": {"get"},
    "/api/gpu/policy": {"get"},
    "/api/gpu/advise": {"post"},
    "/api/gpu/select": {"post"},
    "/api/providers/list": {"get"},
    "/api/jobs": {"get", "post"},
    "/api/jobs/{}": {"get", "delete"},
    "/api/jobs/{}/dispatch": {"post"},
    "/api/jobs/{}/cancel": {"post"},
    "/api/jobs/{}/retry": {"post"},
    "/api/jobs/import-summary": {"post"},
    "/api/settings": {"get"},
}

#: Bodies the service parses itself: each must be documented by a real schema.
PARSED_BODIES = [
    ("/api/providers/create", "post"),
    ("/api/providers/register", "post"),
    ("/compute/advise", "post"),
    ("/api/jobs", "post"),
    ("/api/jobs/import-summary", "post"),
]


def _resolve(doc: dict[str, Any], schema_: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema_:
        ref = schema_["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        schema_ = target
    return schema_


def test_openapi_document_lists_the_contract(app_home: Path) -> None:
    with api_server(Service(resolve_home())) as srv:
        with srv.client(token="") as anonymous:
            assert anonymous.get("/openapi.json").status_code == 401
        with srv.client() as client:
            response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()

    routes: dict[str, set[str]] = {}
    for path, item in doc["paths"].items():
        routes.setdefault(re.sub(r"\{[^}]+\}", "{}", path), set()).update(
            m for m in item if m in ("get", "post", "put", "delete", "patch")
        )
    missing = {
        f"{m.upper()} {p}"
        for p, methods in CONTRACT.items()
        for m in methods
        if m not in routes.get(p, set())
    }
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"

    norm = {re.sub(r"\{[^}]+\}", "{}", p): item for p, item in doc["paths"].items()}
    for path, method in PARSED_BODIES:
        body = norm[path][method].get("requestBody") or {}
        media = body.get("content", {}).get("application/json", {})
        assert "schema" in media, f"{method.upper()} {path}: no JSON body documented"
        resolved = _resolve(doc, media["schema"])
        assert resolved and set(resolved) - {"title", "description"}, (
            f"{method.upper()} {path}: the body's schema is empty: {resolved}"
        )
        assert resolved.get("properties"), f"{method.upper()} {path}: no properties: {resolved}"
        assert body.get("required") is True, f"{method.upper()} {path}: body not required"

    schemes = doc.get("components", {}).get("securitySchemes", {})
    assert schemes.get("bearer", {}).get("type") == "http"
    assert schemes["bearer"].get("scheme") == "bearer"
    assert {"bearer": []} in doc.get("security", [])
