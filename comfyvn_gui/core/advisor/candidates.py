"""One provider as the advisor weighs it: eligibility, GPU and VRAM, residency, time and cost.

:func:`evaluate` fills a :class:`Candidate`'s numbers and, where the provider cannot run the
workload, why (``excluded`` in a user's words, ``exclusion_code`` for the warnings).

A candidate's ``tier`` places it in the advisor's order (the local GPU, then cost-free on-prem
nodes, then remote providers by cost) and ``leaves_machine`` says whether content sent there
leaves the user's premises (the ``data_leaves_machine``, residency, licence and DPIA warnings).
Both follow from the profile's kind, except for a ``custom`` ComfyUI endpoint, which states its
own price, billing, VRAM and zones (:mod:`comfyvn_gui.core.custom_terms`): it is on-prem when
every zone it states is ``on_prem`` / ``local`` — cost-free on-prem when its price is 0 too —
and remote otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import (
    ON_PREM_ZONES,
    Billing,
    Catalog,
    GpuSpec,
    MachineType,
    ProviderProfile,
    Region,
)
from comfyvn_gui.core.checks import HealthStatus, LocalGpu, LocalSnapshot
from comfyvn_gui.core.custom_terms import CustomTerms, custom_terms
from comfyvn_gui.core.models import ProviderEntry
from comfyvn_gui.core.prices import LivePrices, Offer
from comfyvn_gui.core.workload import Requirements, Workload

from .models import AdviceProvider, Alternative

#: A local GPU at or above this utilisation is busy (docs/architecture.md, "Advice request and
#: response": the local GPU is eligible with its utilisation below 0.9).
BUSY_UTILIZATION = 0.9
#: Cost comparisons tolerate float noise of this size (USD).
EPS = 1e-9

REMOTE_KINDS: frozenset[str] = frozenset({"cloud", "marketplace", "kubernetes"})
ON_PREM_KINDS: frozenset[str] = frozenset({"lan", "ssh"})

Tier = Literal["local", "on_prem", "remote"]
PriceSource = Literal["catalog", "live", "meta", "config", "price_ceiling", "free"]


def _meta_number(meta: Mapping[str, Any], key: str) -> float | None:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _regions_by_id(profile: ProviderProfile) -> dict[str, Region]:
    return {r.id.lower(): r for r in profile.regions}


def _configured_regions(
    entry: ProviderEntry, profile: ProviderProfile
) -> tuple[list[Region] | None, str | None]:
    """The regions this provider is pinned to (config ``region``, else ``meta.allowed_regions``),
    or (None, None) when it is not pinned; (None, why) when a region is not in the catalog."""
    by_id = _regions_by_id(profile)
    region = entry.config.get("region")
    if isinstance(region, str) and region.strip():
        found = by_id.get(region.strip().lower())
        if found is None:
            return None, f"its region {region!r} is not in the catalog, so its zone is unknown"
        return [found], None
    allowed = entry.meta.get("allowed_regions")
    if isinstance(allowed, list) and allowed:
        out: list[Region] = []
        for item in allowed:
            found = by_id.get(str(item).strip().lower())
            if found is None:
                return None, f"its allowed region {item!r} is not in the catalog"
            out.append(found)
        return out, None
    return None, None


# --------------------------------------------------------------------------------------------
# Evaluating one provider
# --------------------------------------------------------------------------------------------


class Candidate:
    """Working numbers of one provider while advising."""

    def __init__(self, entry: ProviderEntry, profile: ProviderProfile, health: HealthStatus):
        self.entry = entry
        self.profile = profile
        self.health = health
        self.excluded: str | None = None
        self.exclusion_code: str | None = None
        self.gpu: str | None = None
        self.vram_gb: float | None = None
        self.throughput = 1.0
        self.zones: list[str] = list(profile.zones)
        self.pinned: list[Region] | None = None
        self.terms: CustomTerms | None = custom_terms(profile, entry.config)
        self.billing: Billing = self.terms.billing if self.terms else profile.billing
        self.hourly: float | None = None
        self.price_source: PriceSource | None = None
        self.prices_as_of: str | None = None
        self.price_note: str | None = None
        self.machine: str | None = None  # what the price is for (see _machine_of)
        self.offer: Offer | None = None  # the live offer it is priced by
        self.spot = False  # the provider's Spot offer (a separate alternative)
        self.minutes: float | None = None
        self.billed: float | None = None
        self.cost: float | None = None
        self.note: str | None = None
        self.local_gpu: LocalGpu | None = None

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def kind(self) -> str:
        return self.profile.kind

    @property
    def custom(self) -> bool:
        """A custom ComfyUI endpoint: its own price, billing, VRAM and zones."""
        return self.terms is not None

    @property
    def leaves_machine(self) -> bool:
        """Whether content sent there leaves the user's premises."""
        if self.terms is not None:
            return self.terms.leaves_machine
        return self.kind in REMOTE_KINDS

    @property
    def priced(self) -> bool:
        """Whether it bills (a remote provider or a custom endpoint; not this machine, LAN, SSH)."""
        return self.kind in REMOTE_KINDS or self.custom

    @property
    def tier(self) -> Tier:
        """Where it ranks: the local GPU, a cost-free on-prem node, or a remote provider."""
        if self.kind == "local":
            return "local"
        if self.kind in ON_PREM_KINDS:
            return "on_prem"
        if self.custom and not self.leaves_machine and self.hourly == 0:
            return "on_prem"
        return "remote"

    @property
    def label(self) -> str:
        return self.entry.name if self.entry.name else self.entry.id

    def exclude(self, code: str, why: str) -> None:
        if self.excluded is None:
            self.excluded, self.exclusion_code = why, code

    def alternative(self) -> Alternative:
        return Alternative(
            provider=self.id,
            name=self.label,
            kind=self.profile.kind,
            eligible=self.excluded is None,
            excluded_because=self.excluded,
            note=self.note if self.excluded is None else None,
            health=self.health,
            gpu=self.gpu,
            vram_gb=self.vram_gb,
            zones=self.zones,
            hourly_usd=self.hourly,
            price_source=self.price_source,
            prices_as_of=self.prices_as_of,
            price_note=self.price_note,
            machine=self.machine,
            offer="spot" if self.spot else None,
            billing_increment_minutes=self.billing.increment_minutes,
            billing_minimum_minutes=self.billing.minimum_minutes,
            estimated_minutes=None if self.minutes is None else round(self.minutes, 1),
            billed_minutes=None if self.billed is None else round(self.billed, 4),
            estimated_cost_usd=self.cost,
        )


def _best_local_gpu(local: LocalSnapshot) -> tuple[LocalGpu | None, bool]:
    """(the GPU with the most free VRAM among those not busy, any_gpu_busy)."""
    idle = [g for g in local.gpus if g.utilization < BUSY_UTILIZATION]
    if not idle:
        return None, bool(local.gpus)
    idle.sort(key=lambda g: (-g.vram_free_gb, g.index if g.index is not None else 0, g.name))
    return idle[0], len(idle) < len(local.gpus)


def _price_region(entry: ProviderEntry, profile: ProviderProfile) -> str | None:
    """The region a provider's machines are priced in: its configured ``region`` if the
    catalog knows it (as the catalog spells it), else None (the machine's listed price)."""
    region = entry.config.get("region")
    if isinstance(region, str) and region.strip():
        found = _regions_by_id(profile).get(region.strip().lower())
        return found.id if found is not None else None
    return None


def _machine_of(
    entry: ProviderEntry, profile: ProviderProfile, region: str | None, catalog: Catalog
) -> tuple[MachineType | None, str | None]:
    """The machine a provider launches, where its profile lists machines: the one its
    ``machine_option`` names, else the cheapest listed machine with its chosen GPU, else the
    option's default. (None, id) for a configured machine the catalog does not list; (None,
    None) for a chosen GPU (not the profile's default) that no listed machine carries."""
    option = profile.machine_option
    if option is None:
        return None, None
    configured = entry.config.get(option)
    if isinstance(configured, str) and configured.strip():
        return profile.machine(configured.strip()), configured.strip()
    spec = catalog.gpu(entry.gpu) if entry.gpu else None
    fit = profile.machine_for_gpu(spec.name, region) if spec is not None else None
    if fit is not None:
        return fit, fit.id
    if spec is not None and spec.name != profile.default_gpu:
        return None, None  # no listed machine carries the GPU the user chose (not the default's)
    try:
        default = profile.field(option).default
    except KeyError:  # (checked when the catalog loads)
        default = None
    return profile.machine(default), default


def _headline_applies(entry: ProviderEntry, profile: ProviderProfile, catalog: Catalog) -> bool:
    """Whether the profile's listed price (the seed's headline, for its default GPU) prices
    this provider: where the profile lists no machines, or where nothing chooses another
    machine or GPU than the defaults and the default machine is not in the table. A machine
    or GPU the user chose that the table does not price stays unpriced (the headline is
    another GPU's price: the H100 priced as an A100)."""
    if profile.pricing.hourly_usd is None:
        return False
    if not profile.machines or profile.machine_option is None:
        return True
    chosen = entry.config.get(profile.machine_option)
    if chosen not in (None, ""):
        # only a machine option that names the default GPU itself (CoreWeave's GPU class
        # "A40") keeps the headline, which is that GPU's price
        named = catalog.gpu(str(chosen))
        return named is not None and named.name == profile.default_gpu
    spec = catalog.gpu(entry.gpu) if entry.gpu else None
    return entry.gpu is None or (spec is not None and spec.name == profile.default_gpu)


def _live_offer(
    live: LivePrices | None, machine: str | None, region: str | None, *, spot: bool = False
) -> Offer | None:
    """The on-demand (``spot``: the Spot) live offer for ``machine`` in ``region`` (an offer
    for no region in particular counts anywhere), cheapest first; None without fresh live
    prices."""
    if live is None or not live.fresh or machine is None:
        return None
    found = [
        o
        for o in live.offers
        if o.spot == spot
        and o.machine == machine
        and (region is None or o.region in (region, None))
    ]
    if region is not None and any(o.region == region for o in found):
        found = [o for o in found if o.region == region]
    return min(found, key=lambda o: (o.hourly_usd, o.region or ""), default=None)


def _market_offer(
    live: LivePrices | None, need: float, residency: Sequence[str], ceiling: float | None
) -> Offer | None:
    """A marketplace's cheapest fresh on-demand offer with the VRAM needed, in an allowed
    zone, within the user's price ceiling."""
    if live is None or not live.fresh:
        return None
    found = [
        o
        for o in live.offers
        if not o.spot
        and o.vram_gb is not None
        and o.vram_gb + EPS >= need
        and (not residency or o.zone in residency)
        and (ceiling is None or o.hourly_usd <= ceiling + EPS)
    ]
    return min(found, key=lambda o: (o.hourly_usd, o.machine or ""), default=None)


def _stale_note(live: LivePrices | None) -> str | None:
    """Why a provider's live prices were not used, if it has any."""
    if live is None:
        return None
    if live.error and not live.fresh:
        return f"its live prices could not be refreshed ({live.error})"
    if not live.fresh and live.taken_at is not None:
        taken = live.taken_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"its live prices of {taken} are older than prices.max_age_h"
    return None


def evaluate(
    c: Candidate,
    req: Requirements,
    workload: Workload,
    local: LocalSnapshot,
    residency: Sequence[str],
    budget: float | None,
    catalog: Catalog,
    live: LivePrices | None = None,
    *,
    spot: bool = False,
) -> None:
    """Fill ``c``'s numbers and eligibility. ``spot``: price it by the provider's fresh live
    Spot offer for its machine only (no offer, or one above the price ceiling: ``c.offer``
    stays None and the caller drops the candidate)."""
    entry, profile = c.entry, c.profile
    c.spot = spot
    need = req.vram_gb
    label = workload.label

    # The switches, validation, health and quota.
    if not entry.enabled:
        c.exclude("disabled", "switched off (disabled)")
    if not entry.active and c.kind != "local":
        c.exclude("not_active", "not validated: its credentials have not passed Validate")
    if c.health == "unhealthy":
        c.exclude("unhealthy", "unhealthy at its last health check")
    code = entry.health_code if isinstance(entry, AdviceProvider) else None
    if entry.meta.get("quota_lapsed") is True or code == "quota_exhausted":
        c.exclude("quota_lapsed", "its quota has lapsed (no capacity can be rented)")

    # The GPU and its VRAM.
    spec: GpuSpec | None
    if c.kind == "local":
        gpu, _ = _best_local_gpu(local)
        c.local_gpu = gpu
        if not local.gpus:
            why = (local.note or "none found").split(": jobs run", 1)[0]
            c.exclude("no_gpu", f"no local GPU ({why})")
        elif gpu is None:
            busiest = min(g.utilization for g in local.gpus)
            c.exclude("busy", f"local GPU is busy ({wording.percent(busiest)} utilised)")
        else:
            c.gpu, c.vram_gb = gpu.name, gpu.vram_free_gb
            spec = catalog.gpu(gpu.name)
            c.throughput = spec.relative_throughput if spec else 1.0
            if gpu.vram_free_gb + EPS < need:
                c.exclude(
                    "vram",
                    f"Local GPU has insufficient VRAM ({wording.number(gpu.vram_free_gb)}GB free < "
                    f"{wording.number(need)}GB required for {label})",
                )
    elif c.terms is not None:
        _custom_gpu(c, catalog, need, label)
    elif profile.reports_own_gpu:
        reported = entry.reported_vram_gb if isinstance(entry, AdviceProvider) else None
        name = entry.reported_gpu if isinstance(entry, AdviceProvider) else None
        # The GPU the node reported, else the one configured for it (a catalog name).
        reported_spec = catalog.gpu(name) if name else None
        configured_spec = catalog.gpu(entry.gpu) if entry.gpu else None
        spec = reported_spec or configured_spec
        c.gpu = name or (spec.name if spec else None)
        c.throughput = spec.relative_throughput if spec else 1.0
        if reported is not None:
            c.vram_gb = reported
            where = "reported by its last health check"
        elif reported_spec is not None:
            c.vram_gb, where = reported_spec.vram_gb, f"of the {reported_spec.name} it reported"
        elif configured_spec is not None:
            c.vram_gb, where = configured_spec.vram_gb, f"of its configured {configured_spec.name}"
        else:
            c.vram_gb, where = profile.vram_floor_gb, "the profile's floor (nothing reported yet)"
        if c.vram_gb + EPS < need:
            c.exclude(
                "vram",
                f"insufficient VRAM ({wording.number(c.vram_gb)}GB {where} < "
                f"{wording.number(need)}GB required for {label})",
            )
    else:
        # The machine it launches decides the GPU (and the price, below); a marketplace's GPU
        # is the one of the live offer it would rent.
        machine, c.machine = _machine_of(entry, profile, _price_region(entry, profile), catalog)
        if profile.pricing.marketplace and not spot:
            c.offer = _market_offer(
                live, need, residency, _meta_number(entry.meta, "price_ceiling_usd")
            )
        name = (
            c.offer.gpu
            if c.offer is not None
            else machine.gpu
            if machine is not None
            else entry.gpu or profile.default_gpu
        )
        spec = catalog.gpu(name)
        if spec is not None:
            c.gpu, c.vram_gb, c.throughput = spec.name, spec.vram_gb, spec.relative_throughput
        else:
            c.gpu, c.vram_gb = name, profile.vram_floor_gb
        if c.offer is not None:
            c.machine = c.offer.machine
            if c.offer.vram_gb is not None:
                c.vram_gb = c.offer.vram_gb
            if c.offer.zone is not None:
                c.zones = [c.offer.zone]
        if c.vram_gb + EPS < need:
            c.exclude(
                "vram",
                f"insufficient VRAM ({c.gpu} has {wording.number(c.vram_gb)}GB < "
                f"{wording.number(need)}GB required for {label})",
            )

    # Residency: local and on-prem always satisfy it.
    if c.terms is not None:
        c.zones = list(c.terms.zones)
        if residency and c.leaves_machine:
            allowed = set(residency) | ON_PREM_ZONES
            if not c.zones:
                c.exclude(
                    "residency",
                    "residency cannot be confirmed: it states no residency zones (set its "
                    "Residency zones, config.zones)",
                )
            elif not set(c.zones) & allowed:
                c.exclude(
                    "residency",
                    f"outside the allowed residency ({', '.join(residency)}): you stated it runs "
                    f"in {', '.join(c.zones)}",
                )
    elif c.kind in REMOTE_KINDS:
        pinned, problem = _configured_regions(entry, profile)
        c.pinned = pinned
        if pinned is not None:
            c.zones = sorted({r.zone for r in pinned})
        if residency:
            if problem is not None:
                c.exclude("residency", f"residency cannot be confirmed: {problem}")
            elif not set(c.zones) & set(residency):
                c.exclude(
                    "residency",
                    f"outside the allowed residency ({', '.join(residency)}): it runs in "
                    f"{', '.join(c.zones)}",
                )

    # Time and money.
    c.minutes = req.gpu_hours * 60 / c.throughput + profile.startup_minutes
    c.billed = c.billing.billed_minutes(c.minutes)
    if c.priced and spot:
        # The Spot alternative: only a fresh live Spot price for the machine, at or under the
        # price ceiling (the bid): nothing else prices capacity that may be taken back.
        offer = _live_offer(live, c.machine, _price_region(entry, profile), spot=True)
        ceiling = _meta_number(entry.meta, "price_ceiling_usd")
        if offer is not None and (ceiling is None or offer.hourly_usd <= ceiling + EPS):
            c.offer = offer
            c.hourly, c.price_source = offer.hourly_usd, "live"
            c.prices_as_of = offer.taken_at.isoformat(timespec="seconds")
    elif c.priced:
        # The user's own price, a custom endpoint's stated one, a fresh live price, the
        # catalog's price of the machine (or the profile's, where it lists no machines).
        hourly = _meta_number(entry.meta, "hourly_usd")
        source: PriceSource | None = "meta" if hourly is not None else None
        if hourly is None and c.terms is not None and c.terms.hourly_usd is not None:
            hourly, source = c.terms.hourly_usd, "config"
        if hourly is None and c.terms is None:
            region = _price_region(entry, profile)
            offer = c.offer or _live_offer(live, c.machine, region)
            if offer is not None:
                c.offer = offer
                hourly, source = offer.hourly_usd, "live"
                c.prices_as_of = offer.taken_at.isoformat(timespec="seconds")
            else:
                c.price_note = _stale_note(live)
                listed = profile.machine(c.machine)
                if listed is not None:
                    hourly, source = listed.price(region), "catalog"
                elif _headline_applies(entry, profile, catalog):
                    hourly, source = profile.pricing.hourly_usd, "catalog"
                if source == "catalog":
                    c.prices_as_of = profile.pricing.prices_as_of.isoformat()
        ceiling = _meta_number(entry.meta, "price_ceiling_usd")
        if ceiling is not None and (hourly is None or ceiling < hourly):
            hourly, source = ceiling, "price_ceiling"
            c.prices_as_of = None
        c.hourly, c.price_source = hourly, source
    else:
        c.hourly, c.price_source = 0.0, "free"
    if c.hourly is not None:
        c.cost = c.hourly * c.billed / 60

    if budget is not None and c.priced:
        if c.cost is None:
            c.exclude(
                "budget",
                f"no known price, so it cannot be held to the ${wording.number(budget)} budget",
            )
        elif c.cost > budget + EPS:
            c.exclude(
                "budget",
                f"over budget ({wording.cost(c.cost)} > {wording.cost(budget)})",
            )


def _custom_gpu(c: Candidate, catalog: Catalog, need: float, label: str) -> None:
    """A custom endpoint's GPU and VRAM: the VRAM it states (``vram_gb``), else the VRAM its
    health check reported, else the profile's floor; where it states more than its ComfyUI
    reported, the reported figure (a job sized to the stated VRAM would not fit)."""
    assert c.terms is not None
    entry, profile = c.entry, c.profile
    reported = entry.reported_vram_gb if isinstance(entry, AdviceProvider) else None
    reported_name = entry.reported_gpu if isinstance(entry, AdviceProvider) else None
    name = c.terms.gpu_name or reported_name
    spec = catalog.gpu(name) if name else None
    if spec is None and entry.gpu:
        spec = catalog.gpu(entry.gpu)
    c.gpu = name or (spec.name if spec else None)
    c.throughput = spec.relative_throughput if spec else 1.0
    stated = c.terms.vram_gb
    if stated is not None and reported is not None and reported + EPS < stated:
        c.vram_gb = reported
        where = f"reported by its last health check, although you stated {wording.number(stated)}GB"
    elif stated is not None:
        c.vram_gb, where = stated, "as you stated it"
    elif reported is not None:
        c.vram_gb, where = reported, "reported by its last health check"
    elif spec is not None:
        c.vram_gb, where = spec.vram_gb, f"of the {spec.name}"
    else:
        c.vram_gb, where = profile.vram_floor_gb, "the profile's floor (no VRAM stated or reported)"
    if c.vram_gb + EPS < need:
        c.exclude(
            "vram",
            f"insufficient VRAM ({wording.number(c.vram_gb)}GB {where} < "
            f"{wording.number(need)}GB required for {label})",
        )


def cost_key(c: Candidate) -> tuple[int, float, float, str, bool]:
    return (
        0 if c.cost is not None else 1,
        c.cost if c.cost is not None else 0.0,
        c.minutes or 0.0,
        c.id,
        c.spot,  # (the same price on demand and Spot: on demand first)
    )


def spot_allowed(entry: ProviderEntry, profile: ProviderProfile, workload: Workload) -> bool:
    """Whether a provider's Spot offer is weighed as an alternative: its profile can launch
    Spot (it declares the ``spot`` metadata field), the provider (``meta.spot``) or the
    workload (``interruptible``) allows it, and the user has not priced the provider
    themselves (``meta.hourly_usd``)."""
    try:
        profile.meta_field("spot")
    except KeyError:
        return False
    allowed = entry.meta.get("spot") is True or workload.interruptible
    return allowed and _meta_number(entry.meta, "hourly_usd") is None
