"""A custom ComfyUI endpoint's own terms: its price, billing rule, VRAM, GPU and zones.

A provider of the ``custom`` template (kind ``custom``) states what the curated profiles take
from the catalog: the price per hour (``config.hourly_usd``), how it is billed
(``billing_increment_minutes``, ``billing_minimum_minutes``), the VRAM of its GPU (``vram_gb``),
the GPU's name (``gpu_name``) and the residency zones it runs in (``zones``). The registry checks
them when they are entered (``core/provider_rules.py``, with each field's own rule:
:meth:`~comfyvn_gui.core.catalog.AuthField.check_value`); :func:`custom_terms` reads them back
for the advisor, the command line and the cards. A value that does not pass its field's rule (a
hand-edited ``providers.json``) reads as not set and is listed in ``problems`` (the adapter's
validation reports it as ``misconfigured``, naming the field).

Data kept in the zones :data:`~comfyvn_gui.core.catalog.ON_PREM_ZONES` (``on_prem``, ``local``)
stays on the user's premises: a custom provider whose zones are all such does not make content
leave the machine; one with no zones, or any other zone, does.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import ON_PREM_ZONES, Billing, ProviderProfile

__all__ = ["CustomTerms", "custom_terms"]


@dataclass(frozen=True)
class CustomTerms:
    """What a custom provider states about itself (``None`` / empty: not stated)."""

    hourly_usd: float | None
    billing: Billing
    vram_gb: float | None
    gpu_name: str | None
    zones: tuple[str, ...]
    #: (field, reason) for each stated value that does not pass its field's rule.
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def leaves_machine(self) -> bool:
        """Whether content sent there leaves the user's premises (unknown zones: it does)."""
        return not self.zones or not set(self.zones) <= ON_PREM_ZONES


def _text(config: Mapping[str, Any], name: str) -> str | None:
    value = config.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def custom_terms(profile: ProviderProfile, config: Mapping[str, Any]) -> CustomTerms | None:
    """The terms a provider of a ``custom`` profile states in its ``config`` (each field's
    default where it states none); ``None`` for a profile of any other kind."""
    if profile.kind != "custom":
        return None
    problems: list[tuple[str, str]] = []

    def checked(name: str) -> str | None:
        spec = profile.field(name)
        text = _text(config, name)
        if text is None:
            return spec.default
        reason = spec.check_value(text)
        if reason is not None:
            problems.append((name, reason))
            return None
        return text

    def number(name: str) -> float | None:
        text = checked(name)
        return None if text is None else profile.field(name).number(text)

    increment = number("billing_increment_minutes")
    minimum = number("billing_minimum_minutes")
    stated = any(_text(config, n) for n in ("billing_increment_minutes", "billing_minimum_minutes"))
    default = profile.billing
    billing = Billing(
        increment_minutes=increment
        if increment is not None and increment > 0
        else default.increment_minutes,
        minimum_minutes=minimum
        if minimum is not None and minimum >= 0
        else default.minimum_minutes,
        assumed=default.assumed and not stated,
        source="stated by you for this provider" if stated else default.source,
    )
    zones_text = checked("zones")
    zones = tuple(profile.field("zones").items(zones_text)) if zones_text else ()
    return CustomTerms(
        hourly_usd=number("hourly_usd"),
        billing=billing,
        vram_gb=number("vram_gb"),
        gpu_name=checked("gpu_name"),
        zones=zones,
        problems=tuple(problems),
    )
