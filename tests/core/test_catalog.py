"""The curated provider catalog: its data against the seed and docs/architecture.md, and its
validation."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from comfyvn_gui.core.catalog import (
    AUTH_FIELD_KINDS,
    REPORTED_GPU_VALUES,
    RESIDENCY_ZONES,
    WORKLOAD_KINDS,
    AuthField,
    Billing,
    Catalog,
    CatalogError,
    ProviderProfile,
    catalog_dir,
    load_catalog,
    resources_dir,
)
from comfyvn_gui.core.errors import NotFoundError, OperationError

TEMPLATE_IDS = {
    "runpod", "vast", "lambda", "aws", "azure", "coreweave", "gcp", "paperspace", "lan", "ssh",
    "local", "custom",
}  # fmt: skip

# Our own copy of the seed's table (seed/remote_gpu_services.md, "Curated providers"):
# provider, template id, auth fields, default GPU, min VRAM (GB), cost hint, policy highlight.
SEED_TABLE = [
    ("RunPod", "runpod", ["api_key"], "A10G", 12, "~$0.46/hr",
     "Burst-friendly for voice/TTS jobs."),
    ("Vast.ai", "vast", ["api_key"], "RTX 4090", 16, "marketplace",
     "High VRAM market nodes for CG batches."),
    ("Lambda Labs", "lambda", ["api_key"], "A100", 24, "~$1.10/hr",
     "Multi-hour CG bakes, diffusion upscales."),
    ("AWS EC2", "aws", ["access_key", "secret_key", "region"], "g5.xlarge", 24, "~$1.05/hr",
     "Spot fleets for render farms; mind egress."),
    ("Azure NV", "azure", ["tenant_id", "client_id", "client_secret", "subscription_id"],
     "NC4as_T4_v3", 16, "~$1.00/hr", "Residency-aware translation + CG jobs."),
    ("CoreWeave", "coreweave", ["api_key", "organization_id"], "A40", 24, "~$0.95/hr",
     "Kubernetes clusters for CG + realtime voice."),
    ("Google Cloud", "gcp", ["project_id", "service_account_json", "region"], "A2 (L4/L40)", 16,
     "~$0.85/hr", "Keep GCS + Translation API co-located."),
    ("Paperspace", "paperspace", ["api_key", "project"], "A4000", 16, "~$0.78/hr",
     "Persistent volumes for importer cache."),
    ("unRAID / LAN", "lan", ["endpoint", "api_token"], "local", 8, "$0",
     "Low-latency LAN renders, data stays on-prem."),
    ("On-Prem SSH", "ssh", ["hostname", "username", "ssh_key_path", "nfs_mount"], "custom", 8,
     "$0", "Contract-friendly for regulated content."),
]  # fmt: skip

# The seed's GPU labels that are not GPU catalog names, and the GPU each one means.
SEED_GPU_MEANS = {
    "A10G": "A10G",
    "RTX 4090": "RTX 4090",
    "A100": "A100 40GB",
    "g5.xlarge": "A10G",
    "NC4as_T4_v3": "T4",
    "A40": "A40",
    "A2 (L4/L40)": "L4",  # corrected: A2 is the A100 family; the L4 is G2
    "A4000": "RTX A4000",
    "local": "local",
    "custom": "custom",
}

# docs/architecture.md, "Provider entries and endpoints": endpoint name -> default base URL, and
# the primary one.
DESIGN_ENDPOINTS: dict[str, tuple[dict[str, str | None], str | None]] = {
    "runpod": (
        {"serverless": "https://api.runpod.ai/v2", "graphql": "https://api.runpod.io/graphql"},
        "serverless",
    ),
    "vast": ({"api": "https://console.vast.ai/api/v0"}, "api"),
    "lambda": ({"api": "https://cloud.lambdalabs.com/api/v1"}, "api"),
    "paperspace": ({"api": "https://api.paperspace.com/v1"}, "api"),
    "aws": ({"aws": None, "pricing": None}, "aws"),  # (pricing: live prices, issue 21)
    "azure": (
        {
            "authority": "https://login.microsoftonline.com",
            "management": "https://management.azure.com",
            "prices": "https://prices.azure.com/api/retail/prices",  # (live prices)
        },
        "authority",
    ),
    "gcp": (
        {
            "token_uri": None,
            "resourcemanager": "https://cloudresourcemanager.googleapis.com",
            "compute": "https://compute.googleapis.com",
            "storage": "https://storage.googleapis.com",
            "cloudbilling": "https://cloudbilling.googleapis.com",  # (live prices)
        },
        "compute",
    ),
    "coreweave": ({"kubernetes": None}, "kubernetes"),
    "lan": ({"docker": None, "comfyui": None}, "docker"),
    "local": ({"comfyui": "http://127.0.0.1:8188"}, "comfyui"),
    "ssh": ({}, None),
    "custom": ({"comfyui": None}, "comfyui"),
}

# docs/architecture.md, "Provider entries and endpoints": the options beyond the seed's auth
# fields (at least these; secret ones marked).
DESIGN_OPTIONS = {
    "runpod": {"endpoint_id": False, "webhook_secret": True},
    "lambda": {"instance_type": False, "region": False},
    "gcp": {"zone": False, "bucket": False},
    "azure": {"region": False, "resource_group": False, "vm_size": False},
    "ssh": {"key_passphrase": True},
    "lan": {"ca_bundle": False, "client_cert": False, "client_key": False},
    "coreweave": {"namespace": False},
    "custom": {"ca_bundle": False},
}

SECRET_FIELDS = {
    ("runpod", "api_key"),
    ("runpod", "webhook_secret"),
    ("vast", "api_key"),
    ("lambda", "api_key"),
    ("aws", "access_key"),
    ("aws", "secret_key"),
    ("azure", "client_secret"),
    ("coreweave", "api_key"),
    ("gcp", "service_account_json"),
    ("paperspace", "api_key"),
    ("lan", "api_token"),
    ("ssh", "key_passphrase"),
    ("custom", "api_token"),
}

REQUIRED_GPUS = {
    "A10G": 24, "A100 40GB": 40, "A100 80GB": 80, "H100": 80, "L4": 24, "L40": 48, "L40S": 48,
    "A40": 48, "T4": 16, "RTX 4090": 24, "RTX 3090": 24, "RTX A4000": 16, "RTX A5000": 24,
    "RTX A6000": 48, "V100": 16, "RTX 2060": 6, "RTX 3060": 12, "RTX 4070": 12, "RTX 4080": 16,
}  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _seed_price(hint: str) -> float | None:
    found = re.search(r"\$(\d+(?:\.\d+)?)", hint)
    return float(found[1]) if found else None


# --- the data ---------------------------------------------------------------------------------


def test_catalog_has_exactly_the_template_ids(catalog: Catalog) -> None:
    assert set(catalog.profiles) == TEMPLATE_IDS
    assert catalog.version
    assert catalog.reference_gpu == "A10G"
    assert catalog.gpus["A10G"].relative_throughput == 1.0


def test_every_profile_and_auth_field_is_well_formed(catalog: Catalog) -> None:
    problems: list[str] = []
    for profile in catalog.profiles.values():
        if not profile.policy_hints:
            problems.append(f"{profile.id}: no policy hints")
        if not profile.onboarding_notes.strip() or not profile.legal.egress_notice.strip():
            problems.append(f"{profile.id}: onboarding notes or egress notice empty")
        if not profile.billing.source:
            problems.append(f"{profile.id}: billing has no source")
        for kind in (
            *profile.policy_hints,
            *profile.preferred_workloads,
            *profile.legal.dpia_notes,
        ):
            if kind not in WORKLOAD_KINDS:
                problems.append(f"{profile.id}: unknown workload kind {kind}")
        for region in profile.regions:
            if region.zone not in RESIDENCY_ZONES:
                problems.append(f"{profile.id}: region {region.id} zone {region.zone}")
        for field in profile.all_fields:
            where = f"{profile.id}.{field.name}"
            if field.kind not in AUTH_FIELD_KINDS:
                problems.append(f"{where}: kind {field.kind}")
            if (field.kind == "secret") != field.secret and field.kind != "json_file":
                problems.append(f"{where}: kind {field.kind} but secret={field.secret}")
            if field.secret and field.default is not None:
                problems.append(f"{where}: a secret with a default")
            if field.pattern is not None:
                try:
                    re.compile(field.pattern)
                except re.error:
                    problems.append(f"{where}: pattern does not compile")
            if field.kind == "choice" and not field.choices:
                problems.append(f"{where}: choice without choices")
            if not field.help.strip() or not field.label.strip():
                problems.append(f"{where}: no help or label")
            if field.default is not None and field.check_value(field.default) is not None:
                problems.append(f"{where}: default is not acceptable")
        for field in profile.options:
            if field.required:
                problems.append(f"{profile.id}.{field.name}: a required option")
    assert problems == []


@pytest.mark.parametrize("row", SEED_TABLE, ids=[r[1] for r in SEED_TABLE])
def test_seed_row_is_in_the_catalog(catalog: Catalog, row: tuple[object, ...]) -> None:
    name, template_id, fields, gpu_label, min_vram, hint, highlight = row
    assert isinstance(template_id, str)
    assert isinstance(gpu_label, str)
    profile = catalog.profile(template_id)
    assert profile.name == name
    assert [f.name for f in profile.auth_fields] == fields
    assert profile.seed_gpu_label == gpu_label
    assert profile.default_gpu == SEED_GPU_MEANS[gpu_label]
    assert profile.vram_floor_gb == min_vram
    assert profile.pricing.hint == hint
    assert profile.policy_highlight == highlight
    if hint == "marketplace":
        assert profile.pricing.marketplace is True
        assert profile.pricing.hourly_usd is None
    else:
        assert profile.pricing.marketplace is False
        assert profile.pricing.hourly_usd == _seed_price(str(hint))
    assert profile.pricing.prices_as_of is not None


def test_default_gpus_resolve_and_are_big_enough(catalog: Catalog) -> None:
    for profile in catalog.profiles.values():
        if profile.default_gpu in REPORTED_GPU_VALUES:
            assert profile.kind in ("lan", "ssh", "local", "custom"), profile.id
            assert profile.reports_own_gpu
            continue
        gpu = catalog.gpu(profile.default_gpu)
        assert gpu is not None, profile.id
        assert gpu.vram_gb >= profile.vram_floor_gb, profile.id


def test_seed_gpu_labels_are_corrected(catalog: Catalog) -> None:
    assert catalog.profile("gcp").default_gpu == "L4"  # not A2 (the A100 family)
    assert catalog.profile("aws").default_gpu == "A10G"  # g5.xlarge
    assert catalog.profile("azure").default_gpu == "T4"  # Standard_NC4as_T4_v3
    assert catalog.profile("lambda").default_gpu == "A100 40GB"
    assert catalog.profile("paperspace").default_gpu == "RTX A4000"


def test_the_local_profile(catalog: Catalog) -> None:
    local = catalog.profile("local")
    assert local.kind == "local"
    assert local.protected is True
    assert local.auth_fields == []
    assert local.pricing.hourly_usd == 0.0
    assert local.zones == ("local",)
    assert [p.id for p in catalog.profiles.values() if p.protected] == ["local"]


@pytest.mark.parametrize("template_id", sorted(DESIGN_ENDPOINTS))
def test_endpoints_are_those_of_design(catalog: Catalog, template_id: str) -> None:
    endpoints, primary = DESIGN_ENDPOINTS[template_id]
    profile = catalog.profile(template_id)
    assert profile.endpoints == endpoints
    assert profile.primary_endpoint == primary


def test_options_of_design_are_present_and_optional(catalog: Catalog) -> None:
    for template_id, options in DESIGN_OPTIONS.items():
        profile = catalog.profile(template_id)
        names = {f.name for f in profile.options}
        assert set(options) <= names, template_id
        for name, secret in options.items():
            field = profile.field(name)
            assert field.required is False
            assert field.secret is secret, f"{template_id}.{name}"


def test_secret_fields(catalog: Catalog) -> None:
    found = {(p.id, name) for p in catalog.profiles.values() for name in p.secret_fields}
    assert found == SECRET_FIELDS
    assert catalog.all_secret_field_names == {name for _, name in SECRET_FIELDS}
    ssh_key = catalog.profile("ssh").field("ssh_key_path")
    assert ssh_key.kind == "path"
    assert ssh_key.secret is False
    sa = catalog.profile("gcp").field("service_account_json")
    assert (sa.kind, sa.secret) == ("json_file", True)
    assert catalog.profile("runpod").secret_fields == ("api_key", "webhook_secret")
    with pytest.raises(KeyError):
        catalog.profile("runpod").field("password")


def test_region_fields_offer_the_profile_regions(catalog: Catalog) -> None:
    for profile in catalog.profiles.values():
        for field in profile.all_fields:
            if field.name == "region":
                assert field.kind == "choice"
                assert field.choices == [r.id for r in profile.regions]
    aws = catalog.profile("aws")
    assert aws.zones == ("asia", "ca", "eu", "uk", "us")
    assert catalog.profile("lan").zones == ("on_prem",)
    assert catalog.profile("ssh").zones == ("on_prem",)


def test_field_patterns_accept_real_values_and_refuse_wrong_ones(catalog: Catalog) -> None:
    aws, azure, gcp = catalog.profile("aws"), catalog.profile("azure"), catalog.profile("gcp")
    ssh, lan = catalog.profile("ssh"), catalog.profile("lan")
    guid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    good = [
        (aws.field("access_key"), "AKIA" + "IOSFODNN7EXAMPLE"),
        (aws.field("secret_key"), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        (aws.field("region"), "ap-south-1"),  # not offered, but a valid AWS region
        (azure.field("tenant_id"), guid),
        (azure.field("tenant_id"), "contoso.onmicrosoft.com"),
        (azure.field("subscription_id"), guid),
        (gcp.field("project_id"), "my-project-123456"),
        (gcp.field("service_account_json"), '{\n  "type": "service_account"\n}\n'),
        (ssh.field("hostname"), "gpu01.lab.example:2222"),
        (ssh.field("hostname"), "[fd00::5]:22"),
        (ssh.field("nfs_mount"), "/mnt/comfyvn"),
        (lan.field("endpoint"), "https://unraid.local:2376"),
        (lan.field("api_token"), ""),  # optional
    ]
    bad = [
        (aws.field("access_key"), "AKIA123"),
        (aws.field("region"), "Frankfurt"),
        (azure.field("client_id"), "not-a-guid"),
        (gcp.field("project_id"), "My Project"),
        (gcp.field("service_account_json"), "not json"),
        (ssh.field("hostname"), "host name with spaces"),
        (ssh.field("nfs_mount"), "relative/path"),
        (lan.field("endpoint"), "unraid.local:2376"),
        (aws.field("access_key"), ""),  # required
    ]
    assert [v for f, v in good if f.check_value(v) is not None] == []
    assert [v for f, v in bad if f.check_value(v) is None] == []
    reason = aws.field("secret_key").check_value("x" * 12)
    assert reason is not None
    assert "x" * 12 not in reason


def test_paperspace_region_choice_is_strict(catalog: Catalog) -> None:
    region = catalog.profile("paperspace").field("region")
    assert region.pattern is None
    assert region.check_value("NY2") is None
    assert region.check_value("LON1") is not None


def test_legal_and_dpia_notes(catalog: Catalog) -> None:
    for profile in catalog.profiles.values():
        remote = profile.kind not in ("lan", "ssh", "local")
        assert profile.legal.data_leaves_machine is remote, profile.id
    for template_id in ("runpod", "lambda"):
        assert "voice_synthesis" in catalog.profile(template_id).legal.dpia_notes
    for template_id in ("azure", "aws", "gcp"):
        assert "translation" in catalog.profile(template_id).legal.dpia_notes


def test_billing_rules(catalog: Catalog) -> None:
    second = 1 / 60
    expected = {  # template id: (increment minutes, minimum minutes, assumed)
        "runpod": (second, 0, False),
        "vast": (second, 0, False),
        "lambda": (1, 0, False),
        "aws": (second, 1, False),
        "azure": (1, 5, False),
        "coreweave": (1, 0, False),
        "gcp": (second, 1, False),
        "paperspace": (60, 60, True),
        "lan": (1, 0, False),
        "ssh": (1, 0, False),
        "local": (1, 0, False),
        "custom": (1, 0, True),  # until a provider states its own
    }
    for template_id, (increment, minimum, assumed) in expected.items():
        billing = catalog.profile(template_id).billing
        got = (billing.increment_minutes, billing.minimum_minutes, billing.assumed)
        assert got == pytest.approx((increment, minimum, assumed)), template_id
    assert catalog.profile("aws").billing.source.startswith("https://")


def test_billed_minutes() -> None:
    per_second = Billing(increment_minutes=1 / 60, minimum_minutes=1, assumed=False)
    assert per_second.billed_minutes(0) == 0
    assert per_second.billed_minutes(0.2) == 1
    assert per_second.billed_minutes(59) == pytest.approx(59)
    assert per_second.billed_minutes(59.001) == pytest.approx(59 + 1 / 60)
    hourly = Billing(increment_minutes=60, minimum_minutes=60, assumed=True)
    assert hourly.billed_minutes(61) == 120
    assert hourly.billed_minutes(60) == 60


def _gpu_name(catalog: Catalog, label: str) -> str | None:
    gpu = catalog.gpu(label)
    return None if gpu is None else gpu.name


def test_gpu_lookup_by_name_and_alias(catalog: Catalog) -> None:
    vram = {name: (g.vram_gb if (g := catalog.gpu(name)) else None) for name in REQUIRED_GPUS}
    assert vram == REQUIRED_GPUS
    assert _gpu_name(catalog, "A100") == "A100 40GB"
    assert _gpu_name(catalog, "a4000") == "RTX A4000"
    assert _gpu_name(catalog, "rtx a4000") == "RTX A4000"
    assert _gpu_name(catalog, "NVIDIA GeForce RTX 4090") == "RTX 4090"  # as NVML names it
    assert _gpu_name(catalog, "Tesla T4") == "T4"
    assert _gpu_name(catalog, "NVIDIA A100-SXM4-80GB") == "A100 80GB"
    assert _gpu_name(catalog, "Voodoo 2") is None
    assert catalog.reference.name == "A10G"
    assert all(g.relative_throughput > 0 for g in catalog.gpus.values())


def test_unknown_template_names_the_known_ids(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError, match="runpod") as err:
        catalog.profile("rundpod")
    assert "'rundpod'" in err.value.message
    assert err.value.fields == ["template_id"]


def test_default_catalog_is_cached_and_found(catalog: Catalog) -> None:
    assert load_catalog() is catalog
    assert catalog_dir() == resources_dir() / "catalog"
    assert (catalog_dir() / "catalog.toml").is_file()
    assert load_catalog(catalog_dir()) is not catalog  # an explicit folder is read afresh


def test_models_round_trip_and_have_schemas(catalog: Catalog) -> None:
    again = Catalog.model_validate_json(catalog.model_dump_json())
    assert again == catalog
    assert again.gpu("A4000") == catalog.gpu("A4000")
    assert "auth_fields" in ProviderProfile.model_json_schema()["properties"]


# --- validation of broken data -------------------------------------------------------------------


@pytest.fixture
def broken(tmp_path: Path) -> Callable[[str, str, str], Path]:
    """Copy the catalog to tmp_path and replace one text in one of its files."""
    root = tmp_path / "catalog"
    shutil.copytree(catalog_dir(), root)

    def corrupt(file: str, old: str, new: str) -> Path:
        path = root / file
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return root

    return corrupt


BROKEN_CASES = [
    # file, replace, with, expected message start
    ("providers/runpod.toml", 'kind = "secret"', 'kind = "password"',
     "runpod.toml: provider 'runpod': auth_fields[0].kind: Input should be 'text', 'secret'"),
    ("providers/aws.toml", "vram_floor_gb = 24", "",
     "aws.toml: provider 'aws': vram_floor_gb: Field required"),
    ("providers/coreweave.toml", 'default_gpu = "A40"', 'default_gpu = "A41"',
     "coreweave.toml: provider 'coreweave': default_gpu: 'A41' is not in gpus.toml"),
    ("providers/vast.toml", 'id = "vast"', 'id = "vastai"',
     "vast.toml: provider 'vast': id: 'vastai' differs from the file name"),
    ("providers/lambda.toml", 'id = "lambda"\n', "",
     "lambda.toml: provider 'lambda': id: missing"),
    ("providers/runpod.toml", "secret = true", "secret = false",
     "runpod.toml: provider 'runpod': auth_fields[0].secret: must be true"),
    ("providers/ssh.toml", 'name = "hostname"', 'name = "username"',
     "ssh.toml: provider 'ssh': auth_fields[1].name: duplicate field name 'username'"),
    ("providers/aws.toml", 'primary_endpoint = "aws"', 'primary_endpoint = "s3"',
     "aws.toml: provider 'aws': primary_endpoint: 's3' is not one of the endpoints"),
    ("providers/gcp.toml", "pattern = '[a-z][a-z0-9-]{4,28}[a-z0-9]'", "pattern = '[a-z'",
     "gcp.toml: provider 'gcp': auth_fields[0].pattern: not a valid regular expression"),
    ("providers/paperspace.toml", 'choices = ["NY2", "CA1", "AMS1"]', "choices = []",
     "paperspace.toml: provider 'paperspace': options[1].choices: a field of kind 'choice'"),
    ("providers/lan.toml", "sprite_generation = ", "sprite_gen = ",
     "lan.toml: provider 'lan': policy_hints.sprite_gen (key): Input should be"),
    ("providers/azure.toml", 'zone = "uk"', 'zone = "gb"',
     "azure.toml: provider 'azure': regions[5].zone: unknown zone 'gb'"),
    ("providers/aws.toml", 'default_gpu = "A10G"', 'default_gpu = "local"',
     "aws.toml: provider 'aws': default_gpu: 'local' (the node's own GPU) is only for"),
    ("providers/runpod.toml", "hourly_usd = 0.46", "hourly_usd = 0.64",
     "runpod.toml: provider 'runpod': pricing.hint: says $0.46 but hourly_usd is 0.64"),
    ("providers/vast.toml", "api = \"https://console.vast.ai/api/v0\"", 'api = "console.vast.ai"',
     "vast.toml: provider 'vast': endpoints.api: must be an http(s) URL"),
    ("gpus.toml", 'aliases = ["A4000"]', 'aliases = ["A4000", "a100"]',
     "gpus.toml: gpu 'RTX A4000': aliases[1]: 'a100' is already a name or alias of 'A100 40GB'"),
    ("gpus.toml", 'name = "T4"\nvram_gb = 16', 'name = "T4"\nvram_gb = "16 GB"',
     "gpus.toml: gpu 'T4': vram_gb: Input should be a valid number"),
    ("gpus.toml", "relative_throughput = 1.0 ", "relative_throughput = 1.2 ",
     "gpus.toml: gpu 'A10G': relative_throughput: the reference GPU's throughput must be 1.0"),
    ("catalog.toml", 'reference_gpu = "A10G"', 'reference_gpu = "A10X"',
     "catalog.toml: reference_gpu: 'A10X' is not in gpus.toml"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"), BROKEN_CASES, ids=[c[3].split(":")[0] for c in BROKEN_CASES]
)
def test_broken_file_names_file_entry_and_field(
    broken: Callable[[str, str, str], Path], file: str, old: str, new: str, expected: str
) -> None:
    root = broken(file, old, new)
    with pytest.raises(CatalogError) as err:
        load_catalog(root)
    assert isinstance(err.value, OperationError)
    assert expected in err.value.message
    assert err.value.file == file
    assert err.value.fields, "the field path is recorded"


def test_toml_syntax_error_names_file_entry_and_key(
    broken: Callable[[str, str, str], Path],
) -> None:
    root = broken("providers/aws.toml", 'label = "Secret access key"', 'label = "Secret access key')
    with pytest.raises(CatalogError) as err:
        load_catalog(root)
    message = err.value.message
    assert message.startswith("providers/aws.toml: provider 'aws': auth_fields[1].label: ")
    assert "TOML syntax error" in message
    assert "line" in message
    assert err.value.entry == "aws"


def test_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(catalog_dir(), root)
    (root / "gpus.toml").unlink()
    with pytest.raises(CatalogError, match=r"^gpus\.toml: file not found"):
        load_catalog(root)


def test_models_refuse_inconsistent_fields() -> None:
    with pytest.raises(ValidationError, match="a secret field never has a default"):
        AuthField(name="token", label="Token", kind="secret", secret=True, default="x")
    with pytest.raises(ValidationError, match="only kinds 'secret' and 'json_file'"):
        AuthField(name="path", label="Path", kind="path", secret=True)
    with pytest.raises(ValidationError, match="needs at least one choice"):
        AuthField(name="region", label="Region", kind="choice")
    with pytest.raises(ValidationError, match="not one of the choices"):
        AuthField(name="region", label="Region", kind="choice", choices=["a"], default="b")
    with pytest.raises(ValidationError, match="must be true for a field of kind 'secret'"):
        AuthField(name="token", label="Token", kind="secret")
    json_key = AuthField(name="key_json", label="Key", kind="json_file", secret=True)
    assert json_key.secret


# --- the custom template: number and multi-choice fields, terms stated per provider -----------


def test_the_custom_profile(catalog: Catalog) -> None:
    custom = catalog.profile("custom")
    assert custom.kind == "custom"
    assert custom.regions == [] and custom.zones == ()
    assert custom.pricing.per_provider and custom.pricing.hourly_usd is None
    assert custom.reports_own_gpu and custom.legal.data_leaves_machine
    assert (custom.primary_endpoint, custom.endpoints) == ("comfyui", {"comfyui": None})
    required = [f.name for f in custom.auth_fields if f.required]
    assert required == ["endpoint", "hourly_usd", "zones"]
    kinds = {f.name: f.kind for f in custom.all_fields}
    assert kinds == {
        "endpoint": "text",
        "api_token": "secret",
        "hourly_usd": "number",
        "zones": "multi_choice",
        "vram_gb": "number",
        "gpu_name": "text",
        "billing_increment_minutes": "number",
        "billing_minimum_minutes": "number",
        "ca_bundle": "path",
    }
    assert set(custom.field("zones").choices) == RESIDENCY_ZONES


def test_number_fields_say_what_is_wrong(catalog: Catalog) -> None:
    custom = catalog.profile("custom")
    price, vram = custom.field("hourly_usd"), custom.field("vram_gb")
    increment = custom.field("billing_increment_minutes")
    assert [price.check_value(v) for v in ("0", "0.5", " 12 ", "1e2")] == [None] * 4
    assert price.check_value("-1") == "Price per hour (USD) must be 0 or more (e.g. 0.50)"
    assert price.check_value("cheap") == "Price per hour (USD) must be a number (e.g. 0.50)"
    assert price.check_value("nan") == price.check_value("inf") == price.check_value("cheap")
    assert price.check_value("10001") == "Price per hour (USD) must be at most 10000 (e.g. 0.50)"
    assert vram.check_value("0") == "GPU VRAM (GB) must be more than 0 (e.g. 24)"
    assert vram.check_value("") is None  # optional
    assert price.check_value("") == "Price per hour (USD) is required"
    assert increment.check_value("0") is not None and increment.check_value("60") is None
    assert price.number(" 0.25 ") == 0.25 and price.number("x") is None


def test_multi_choice_fields_take_several_choices(catalog: Catalog) -> None:
    zones = catalog.profile("custom").field("zones")
    assert zones.check_value("eu") is None
    assert zones.check_value("eu, us") is None
    assert zones.check_value("eu us,uk") is None
    assert zones.check_value(" , ") == "Residency zones is required"
    reason = zones.check_value("eu, mars")
    assert reason is not None and reason.startswith("Residency zones: 'mars' is not one of: us,")
    assert zones.items("eu, us eu") == ["eu", "us"]
    assert zones.normalized("eu,us  uk,eu") == "eu, us, uk"


def test_number_and_multi_choice_models_refuse_inconsistent_settings() -> None:
    with pytest.raises(ValidationError, match="only a field of kind 'number' has bounds"):
        AuthField(name="x", label="X", kind="text", minimum=0)
    with pytest.raises(ValidationError, match="is below the minimum"):
        AuthField(name="x", label="X", kind="number", minimum=2, maximum=1)
    with pytest.raises(ValidationError, match="needs a minimum"):
        AuthField(name="x", label="X", kind="number", minimum_exclusive=True)
    with pytest.raises(ValidationError, match="default: X must be 1 or more"):
        AuthField(name="x", label="X", kind="number", minimum=1, default="0")
    with pytest.raises(ValidationError, match="checked by its kind"):
        AuthField(name="x", label="X", kind="number", pattern="[0-9]+")
    with pytest.raises(ValidationError, match="kind 'multi_choice' needs at least one choice"):
        AuthField(name="x", label="X", kind="multi_choice")
    with pytest.raises(ValidationError, match="default: X: 'c' is not one of: a, b"):
        AuthField(name="x", label="X", kind="multi_choice", choices=["a", "b"], default="a, c")


CUSTOM_BROKEN_CASES = [
    ('[billing]', '[[regions]]\nid = "x"\nname = "X"\nzone = "eu"\n\n[billing]',
     "custom.toml: provider 'custom': regions: a custom profile has no regions"),
    ("per_provider = true", "per_provider = false",
     "custom.toml: provider 'custom': pricing.hourly_usd: required unless marketplace"),
    ('name = "vram_gb"', 'name = "vram"',
     "custom.toml: provider 'custom': vram_gb: a custom profile needs a field 'vram_gb'"),
    ('"oceania", "on_prem"', '"oceania", "mars"',
     "custom.toml: provider 'custom': auth_fields[3].choices: 'mars' is not a residency zone"),
    ("data_leaves_machine = true", "data_leaves_machine = false",
     "custom.toml: provider 'custom': legal.data_leaves_machine: must be true for remote and "
     "custom providers"),
    ("minimum = 0\nmaximum = 10000", "minimum = 0\nmaximum = -1",
     "custom.toml: provider 'custom': auth_fields[2].maximum: is below the minimum"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "expected"), CUSTOM_BROKEN_CASES)
def test_a_broken_custom_profile_names_the_field(
    broken: Callable[[str, str, str], Path], old: str, new: str, expected: str
) -> None:
    root = broken("providers/custom.toml", old, new)
    with pytest.raises(CatalogError) as err:
        load_catalog(root)
    assert expected in err.value.message, err.value.message


def test_only_a_custom_profile_may_lack_regions(
    broken: Callable[[str, str, str], Path],
) -> None:
    text = (catalog_dir() / "providers" / "lan.toml").read_text(encoding="utf-8")
    block = text[text.index("[[regions]]") : text.index("[policy_hints]")]
    root = broken("providers/lan.toml", block, "")
    with pytest.raises(CatalogError, match=r"lan\.toml: provider 'lan': regions: at least one"):
        load_catalog(root)
