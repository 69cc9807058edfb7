"""The compute advisor: where a workload should run, what it costs, why, and what to warn about.

:func:`advise` is a PURE function of (workload, requirements, providers with their health and
validation, the local GPU snapshot, the advisor settings, the catalog). It touches no disk, no
network and no clock, so the same input always gives the same advice. ``service`` gathers the
live inputs; a request may give them instead (docs/architecture.md, "Advice request and
response"; docs/advisor.md explains each rule with examples).

The rules:

1. Eligibility. A provider is eligible when it is enabled, active (its credentials passed
   validation; the built-in ``local`` needs none), not unhealthy, its quota has not lapsed,
   its GPU's VRAM covers the need (the local GPU: its FREE VRAM, with utilisation below 0.9; a
   LAN / SSH node: the VRAM its health check reported, the profile's floor while nothing was
   reported; a cloud: the VRAM of its configured GPU; a custom ComfyUI endpoint: the VRAM its
   entry states, or its health check reported, the lower of the two when both are known), it
   can run in an allowed residency zone (a custom endpoint: one of the zones its entry states;
   none stated cannot satisfy a residency rule), and its estimated cost is within the budget (an
   unpriced provider is over any budget).
   ``degraded`` and ``unknown`` health are eligible, with a warning.
2. Order. The local GPU wins; then a cost-free on-prem / LAN node (the fastest, then by id; a
   custom endpoint counts as one when every zone it states is ``on_prem`` / ``local`` and its
   price is 0);
   then the remote provider with the lowest estimated cost, billed as
   ``max(minimum, ceil(minutes / increment) * increment)`` — then the fewest minutes, then the
   id. A remote without a known price ranks after every priced one. Preferences reorder the
   eligible remotes only, and the reason names the one that decided: a workload with
   ``cached_graphs`` favours a profile with ``persistent_cache`` (Paperspace's volume);
   ``interactive`` latency favours the shortest start-up (``startup_minutes``), then cost. A
   user's explicit pick (``user_pick``, the jobs queue's ``decided_by: user``) wins while it is
   eligible.
3. Every provider that is not the choice is an alternative with its numbers and either
   ``excluded_because`` or a ``note`` saying why it was not chosen.
4. Warnings come from the profiles' metadata (``legal``): a remote choice always carries
   ``data_leaves_machine``; residency, non-open-source assets and DPIA notes likewise. A custom
   endpoint is remote for these unless every zone it states is ``on_prem`` / ``local``.

A custom endpoint is priced by its own ``config.hourly_usd`` (``price_source`` ``config``; a
``meta.hourly_usd`` overrides it as for every provider) and billed by its own
``billing_increment_minutes`` / ``billing_minimum_minutes`` (:mod:`comfyvn_gui.core.custom_terms`).

Minutes on a provider = reference GPU-hours x 60 / its GPU's relative throughput + its
profile's ``startup_minutes``.

The modules: :mod:`.models` (the request and response objects), :mod:`.candidates` (rule 1:
one provider's eligibility and numbers), :mod:`.choosing` (rule 2 and :func:`advise`),
:mod:`.explaining` (rules 3 and 4: the reason, the notes, the warnings), :mod:`.reading`
(requests from JSON, and the estimator's requirements). Figures are worded by
:mod:`comfyvn_gui.core.wording`.
"""

from __future__ import annotations

from comfyvn_gui.core.input_errors import input_error, input_error_from
from comfyvn_gui.core.wording import cost as format_cost

from .candidates import BUSY_UTILIZATION
from .choosing import advise
from .models import (
    WARNING_CODES,
    Advice,
    AdviceProvider,
    AdviceRequest,
    AdviceWarning,
    AdvisorSettings,
    Alternative,
    Preference,
    WarningCode,
)
from .reading import check_request, parse_request, requirements_for

__all__ = [
    "BUSY_UTILIZATION",
    "WARNING_CODES",
    "Advice",
    "AdviceProvider",
    "AdviceRequest",
    "AdviceWarning",
    "AdvisorSettings",
    "Alternative",
    "Preference",
    "WarningCode",
    "advise",
    "check_request",
    "format_cost",
    "input_error",
    "input_error_from",
    "parse_request",
    "requirements_for",
]
