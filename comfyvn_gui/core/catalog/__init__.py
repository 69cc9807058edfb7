"""The curated provider catalog: provider profiles and the GPU catalog, loaded from data files.

The catalog is DATA, not code. It lives under ``resources/catalog/``::

    catalog.toml              version, reference_gpu, prices_as_of (the default for every profile)
    gpus.toml                 [[gpu]] tables: name, vram_gb, relative_throughput, aliases, vendor
    providers/<id>.toml       one provider profile per file; the file name is the profile id

Everything is validated by the pydantic models below when it is loaded. A broken file gives a
:class:`CatalogError` whose message names the file, the entry and the field path, e.g.
``runpod.toml: provider 'runpod': auth_fields[0].kind: Input should be 'text', 'secret', ...``.

TOML has no null, so two spellings stand for ``None`` in the data files:

- an endpoint whose URL is ``""`` has no fixed default base URL (``None``): the SDK's own (AWS),
  the service-account key's own ``token_uri`` (Google), or the user's own server (CoreWeave's
  cluster API server, a LAN node's Docker / ComfyUI endpoint);
- a profile without ``pricing.hourly_usd`` has no list price (a marketplace: ``marketplace =
  true``). ``pricing.prices_as_of`` may be left out; it then comes from ``catalog.toml``.

``default_gpu`` is a GPU catalog name, except for the nodes whose GPU is whatever the machine
has (:data:`REPORTED_GPU_VALUES`): ``"local"`` (this machine, a LAN node) and ``"custom"`` (an
on-prem SSH node, a custom ComfyUI endpoint). For those the advisor uses the VRAM the node's
health check (or the local NVML snapshot) reported, and the profile's ``vram_floor_gb`` only
while nothing was reported (a custom endpoint's own ``vram_gb``, when its entry states one,
comes first: :mod:`comfyvn_gui.core.custom_terms`).

The ``custom`` profile (kind ``custom``) has no regions and no list price
(``pricing.per_provider = true``): each of its providers states its price, billing increment
and minimum, VRAM, GPU name and residency zones in its own ``config``.

Only the standard library and pydantic are used here: ``core`` stays pure (no Qt, network, SDK).

The modules: :mod:`.vocabulary` (provider, workload and auth-field kinds, residency zones,
reserved ids), :mod:`.gpus` (the GPU catalog's model and name lookup), :mod:`.profiles` (the
provider profile schema), :mod:`.base` (the strict model configuration, :class:`CatalogError`)
and :mod:`.loader` (:class:`Catalog`, locating and loading the data files).
"""

from __future__ import annotations

from .base import CatalogError
from .gpus import GpuSpec
from .loader import Catalog, catalog_dir, load_catalog, resources_dir
from .profiles import (
    AuthField,
    Billing,
    Legal,
    MachineType,
    MetaField,
    Pricing,
    ProviderProfile,
    Region,
)
from .vocabulary import (
    AUTH_FIELD_KINDS,
    CUSTOM_TERM_FIELDS,
    ON_PREM_KINDS,
    ON_PREM_ZONES,
    PROVIDER_KINDS,
    REPORTED_GPU_VALUES,
    RESERVED_IDS,
    RESIDENCY_ZONES,
    WORKLOAD_KINDS,
    AuthFieldKind,
    MetaFieldKind,
    ProviderKind,
    WorkloadKind,
)

__all__ = [
    "AUTH_FIELD_KINDS",
    "CUSTOM_TERM_FIELDS",
    "ON_PREM_KINDS",
    "ON_PREM_ZONES",
    "PROVIDER_KINDS",
    "REPORTED_GPU_VALUES",
    "RESERVED_IDS",
    "RESIDENCY_ZONES",
    "WORKLOAD_KINDS",
    "AuthField",
    "AuthFieldKind",
    "Billing",
    "Catalog",
    "CatalogError",
    "GpuSpec",
    "Legal",
    "MachineType",
    "MetaField",
    "MetaFieldKind",
    "Pricing",
    "ProviderKind",
    "ProviderProfile",
    "Region",
    "WorkloadKind",
    "catalog_dir",
    "load_catalog",
    "resources_dir",
]
