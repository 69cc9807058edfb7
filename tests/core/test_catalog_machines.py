"""The catalog's machine tables (issue 21): the invariants a user relies on in the bundled data,
and the errors a catalog editor sees for a broken table (file, entry and field named)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from comfyvn_gui.core.catalog import (
    Catalog,
    CatalogError,
    ProviderProfile,
    catalog_dir,
    load_catalog,
)

# The profiles whose machine type is an option the app launches with (issue 21, build point 1).
MACHINE_PROFILES = {
    "aws": "instance_type",
    "azure": "vm_size",
    "gcp": "machine_type",
    "lambda": "instance_type",
    "runpod": "gpu_type_id",
    "coreweave": "gpu_class",
}

# GPU classes for the price-order invariant, by catalog name.
H100_CLASS = {"H100", "H100 NVL"}
A100_CLASS = {"A100 40GB", "A100 80GB"}
A10_CLASS = {"A10", "A10G", "L4"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _per_gpu(profile: ProviderProfile, gpus: set[str], region: str | None) -> list[float]:
    return [
        m.price(region) / m.gpu_count
        for m in profile.machines
        if m.gpu in gpus and (region is None or m.regions is None or region in m.regions)
    ]


# --- the bundled data ---------------------------------------------------------------------------


def test_machine_profiles_name_their_option_and_list_machines(catalog: Catalog) -> None:
    for template_id, option in MACHINE_PROFILES.items():
        profile = catalog.profile(template_id)
        assert profile.machine_option == option, template_id
        assert profile.machines, template_id
        default = profile.field(option).default
        if default is not None:  # the form's default is a machine the catalog can price
            assert profile.machine(default) is not None, (template_id, default)
    # the seed's own machine names are among them
    assert catalog.profile("aws").machine("g5.xlarge").gpu == "A10G"  # type: ignore[union-attr]
    assert catalog.profile("azure").machine("Standard_NC4as_T4_v3").gpu == "T4"  # type: ignore[union-attr]
    assert catalog.profile("gcp").machine("g2-standard-4").gpu == "L4"  # type: ignore[union-attr]
    assert catalog.profile("lambda").machine("gpu_1x_a100").gpu == "A100 40GB"  # type: ignore[union-attr]


def test_every_machine_is_well_formed(catalog: Catalog) -> None:
    for profile in catalog.profiles.values():
        region_ids = {r.id for r in profile.regions}
        for m in profile.machines:
            where = (profile.id, m.id)
            spec = catalog.gpus.get(m.gpu)
            assert spec is not None and catalog.gpu(m.gpu) is spec, where
            assert m.hourly_usd > 0 and m.gpu_count >= 1, where
            assert m.source.strip(), f"{where}: a price says where it was taken"
            assert set(m.region_prices) <= region_ids, where
            assert all(p > 0 for p in m.region_prices.values()), where
            assert m.regions is None or set(m.regions) <= region_ids, where


def test_bigger_gpus_cost_more_per_gpu_hour(catalog: Catalog) -> None:
    """Per provider and region: an H100 costs more than an A100, an A100 more than an A10/A10G/L4
    (the issue's Lambda H100 priced at the A100's $1.10/hr)."""
    for profile in catalog.profiles.values():
        for region in [None, *(r.id for r in profile.regions)]:
            h100 = _per_gpu(profile, H100_CLASS, region)
            a100 = _per_gpu(profile, A100_CLASS, region)
            a10 = _per_gpu(profile, A10_CLASS, region)
            if h100 and a100:
                assert min(h100) > max(a100), (profile.id, region)
            if a100 and a10:
                assert min(a100) > max(a10), (profile.id, region)


def test_lambda_h100_is_not_priced_as_the_a100(catalog: Catalog) -> None:
    lam = catalog.profile("lambda")
    a100 = lam.machine("gpu_1x_a100")
    h100 = lam.machines_with("H100")
    assert a100 is not None and h100
    assert all(m.hourly_usd > a100.hourly_usd for m in h100)


def test_region_prices_and_cheapest_first(catalog: Catalog) -> None:
    gcp = catalog.profile("gcp")
    g2 = gcp.machine("g2-standard-4")
    assert g2 is not None
    assert g2.price("europe-west2") > g2.price("us-central1") == g2.hourly_usd
    # choosing an L4 in London picks the cheapest L4 machine there
    assert next(m.id for m in gcp.machines_with("L4", "europe-west2")) == "g2-standard-4"


# --- what a catalog editor sees ------------------------------------------------------------------


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


BROKEN_MACHINES = [
    # file, replace, with, expected message, field path
    ("providers/lambda.toml", 'machine_option = "instance_type"\n', "",
     "lambda.toml: provider 'lambda': machine_option: machines need the option that names them",
     "machine_option"),
    ("providers/aws.toml", 'id = "g6.xlarge"\ngpu = "L4"', 'id = "g6.xlarge"\ngpu = "L4X"',
     "aws.toml: provider 'aws': machines[3].gpu: 'L4X' is not in gpus.toml", "machines[3].gpu"),
    ("providers/aws.toml", 'id = "g5.2xlarge"', 'id = "g5.xlarge"',
     "aws.toml: provider 'aws': machines[2].id: duplicate machine 'g5.xlarge'", "machines[2].id"),
    ("providers/gcp.toml", "[machines.region_prices]\nus-east4 = 0.704518",
     "[machines.region_prices]\nus-south1 = 0.704518",
     "gcp.toml: provider 'gcp': machines[0]: 'us-south1' is not one of the profile's regions",
     "machines[0]"),
    ("providers/azure.toml", 'default = "Standard_NC4as_T4_v3"', 'default = "Standard_NC8as_T4_v3"',
     "azure.toml: provider 'azure': machine_option: the default vm_size 'Standard_NC8as_T4_v3' "
     "is not in machines", "machine_option"),
    ("providers/runpod.toml", 'machine_option = "gpu_type_id"', 'machine_option = "gpu_type"',
     "runpod.toml: provider 'runpod': machine_option: 'gpu_type' is not one of the profile's "
     "fields",
     "machine_option"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("file", "old", "new", "expected", "field"),
    BROKEN_MACHINES,
    ids=[
        "no-option",
        "unknown-gpu",
        "duplicate-id",
        "foreign-region",
        "default-unlisted",
        "no-field",
    ],
)
def test_broken_machine_table_names_file_entry_and_field(
    broken: Callable[[str, str, str], Path],
    file: str,
    old: str,
    new: str,
    expected: str,
    field: str,
) -> None:
    root = broken(file, old, new)
    with pytest.raises(CatalogError) as err:
        load_catalog(root)
    assert expected in err.value.message
    assert err.value.file == file
    assert err.value.entry == Path(file).stem
    assert field in err.value.fields
