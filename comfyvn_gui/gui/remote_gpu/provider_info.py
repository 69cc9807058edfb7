"""What a provider card shows, worked out without Qt (docs/architecture.md, "GUI").

:func:`badge_for`, :func:`card_info` and :func:`matches` turn entries, catalog profiles and
check results into :class:`Badge` / :class:`CardInfo` values; the widgets of :mod:`.cards`
only render them. :func:`badge_colors` is the badges' colour table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import Catalog, ProviderProfile
from comfyvn_gui.core.checks import CheckResult
from comfyvn_gui.core.custom_terms import custom_terms
from comfyvn_gui.core.models import ProviderEntry

__all__ = [
    "BADGE_STATES",
    "KIND_WORDS",
    "REASON_WORDS",
    "TEMPLATE_PREFIX",
    "ZONE_WORDS",
    "Badge",
    "BadgeState",
    "CardInfo",
    "badge_colors",
    "badge_for",
    "card_info",
    "cost_text",
    "gb_text",
    "links_of",
    "matches",
    "zone_words",
]

BadgeState = Literal[
    "not_configured",
    "configured",
    "validated",
    "invalid",
    "healthy",
    "degraded",
    "unhealthy",
    "checking",
    "disabled",
]
BADGE_STATES: tuple[BadgeState, ...] = get_args(BadgeState)

#: A failure code of a validation, as the badge says it ("invalid: key rejected").
REASON_WORDS: dict[str, str] = {
    "invalid_credentials": "key rejected",
    "permission_denied": "permission denied",
    "misconfigured": "misconfigured",
    "untrusted_host": "host key not trusted yet",
    "host_key_mismatch": "HOST KEY CHANGED",
    "unreachable": "unreachable",
    "timeout": "timed out",
    "rate_limited": "rate limited",
    "quota_exhausted": "quota exhausted",
    "error": "error",
}

KIND_WORDS: dict[str, str] = {
    "cloud": "Cloud",
    "marketplace": "Marketplace",
    "kubernetes": "Kubernetes",
    "lan": "LAN node",
    "ssh": "On-prem SSH",
    "local": "This computer",
    "custom": "Custom ComfyUI",
}

#: Residency zones as a chip shows them (the others upper-cased: US, EU, UK).
ZONE_WORDS: dict[str, str] = {
    "ca": "Canada",
    "sa": "South America",
    "me": "Middle East",
    "af": "Africa",
    "asia": "Asia",
    "oceania": "Oceania",
    "on_prem": "On-prem",
    "local": "This computer",
}


def zone_words(zone: str) -> str:
    return ZONE_WORDS.get(zone, zone.upper())


_FREE_KINDS = frozenset({"lan", "ssh", "local"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TEMPLATE_PREFIX = "template:"


@dataclass(frozen=True)
class Badge:
    """A card's status: its state (which colours), its text and the tooltip that explains it."""

    state: BadgeState
    text: str
    tooltip: str


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _local_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC).astimezone()
    return now if now.tzinfo is not None else now.astimezone()


def _day_month(ts: datetime, now: datetime) -> str:
    text = f"{ts.day} {_MONTHS[ts.month - 1]}"
    return text if ts.year == now.year else f"{text} {ts.year}"


def _relative(ts: datetime, now: datetime) -> str:
    """'just now', '5 min ago', '3 h ago', 'yesterday', '4 days ago', 'on 26 Nov'."""
    ts = _aware(ts).astimezone(now.tzinfo)
    seconds = (now - ts).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    days = (now.date() - ts.date()).days
    if days <= 0:
        return f"{int(seconds // 3600)} h ago"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    return f"on {_day_month(ts, now)}"


def _since(ts: datetime, now: datetime) -> str:
    """'14:02' today, '26 Nov 14:02' another day (with the year when it is not this one)."""
    ts = _aware(ts).astimezone(now.tzinfo)
    clock = f"{ts.hour:02d}:{ts.minute:02d}"
    return clock if ts.date() == now.date() else f"{_day_month(ts, now)} {clock}"


def _health_since(health: CheckResult) -> datetime:
    raw = health.detail.get("since")
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    return health.checked_at


def badge_for(
    entry: ProviderEntry | None,
    validation: CheckResult | None,
    health: CheckResult | None,
    *,
    missing_fields: Sequence[str] = (),
    now: datetime | None = None,
    checking: bool = False,
) -> Badge:
    """The status badge of a card, most pressing state first.

    ``missing_fields`` are the required fields (their labels or names) the entry still lacks;
    ``checking`` says a validation or health check of it is running now. ``now`` (default:
    the local time) fixes the clock for the relative and "since" times, shown in its zone.
    """
    clock = _local_now(now)
    if entry is None:
        return Badge("not_configured", "not configured", "Not registered yet: add it to use it.")
    if missing_fields:
        return Badge(
            "not_configured", "not configured", "Still missing: " + ", ".join(missing_fields)
        )
    if not entry.enabled:
        return Badge("disabled", "disabled", "Turned off: jobs and the advisor leave it out.")
    if checking:
        return Badge("checking", "checking…", "A check of this provider is running.")
    if validation is not None and not validation.ok:
        code = validation.code or validation.status
        reason = REASON_WORDS.get(code, code.replace("_", " "))
        return Badge("invalid", f"invalid: {reason}", validation.message)
    if health is not None:
        if health.status == "unhealthy":
            since = _since(_health_since(health), clock)
            return Badge("unhealthy", f"unhealthy since {since}", health.message)
        if health.status == "degraded":
            return Badge("degraded", "degraded", health.message)
        if health.status == "healthy":
            when = _relative(health.checked_at, clock)
            return Badge("healthy", "healthy", f"{health.message} (checked {when})")
    if entry.active:
        if validation is None:
            return Badge("validated", "validated", "Its credentials passed validation.")
        when = _relative(validation.checked_at, clock)
        return Badge("validated", f"validated {when}", validation.message)
    return Badge(
        "configured",
        "not validated",
        "Its settings are stored but not checked yet: validate it to use it.",
    )


def cost_text(profile: ProviderProfile, entry: ProviderEntry | None = None) -> str:
    """The price hint and how time is billed: '~$1.00/hr · per minute, 5 min minimum'.

    A custom ComfyUI endpoint's ``entry`` states its own price and billing: '$0.35/hr · per
    hour' (its template: 'your own price · per minute (assumed)')."""
    if profile.kind in _FREE_KINDS:
        return "free"
    terms = custom_terms(profile, entry.config) if entry is not None else None
    billing = terms.billing if terms is not None else profile.billing
    inc = billing.increment_minutes
    words = wording.billing_step(inc)
    if billing.minimum_minutes > inc + 1e-9:
        words += f", {wording.minutes(billing.minimum_minutes)} minimum"
    if billing.assumed:
        words += " (assumed)"
    hint = profile.pricing.hint
    if terms is not None:
        hint = (
            "no price set" if terms.hourly_usd is None else wording.hourly_price(terms.hourly_usd)
        )
    elif profile.pricing.marketplace and "$" not in hint:
        hint = "marketplace prices"
    return f"{hint} · {words}"


def gb_text(value: float) -> str:
    """GB as a card says it: '24', '22.5' (a number of core/wording.py)."""
    return wording.figure(value, 1)


def _gpu_text(
    profile: ProviderProfile,
    catalog: Catalog,
    entry: ProviderEntry | None,
    health: CheckResult | None,
) -> str:
    name = entry.gpu if entry is not None and entry.gpu else None
    if name is None and profile.reports_own_gpu:
        reported = health.detail.get("gpus") if health is not None else None
        if isinstance(reported, list) and reported and isinstance(reported[0], Mapping):
            first: Mapping[str, Any] = reported[0]
            text = str(first.get("name", "GPU"))
            total = first.get("vram_total_gb")
            if isinstance(total, int | float):
                text += f" · {gb_text(total)} GB"
            return text + (f" (+{len(reported) - 1} more)" if len(reported) > 1 else "")
        terms = custom_terms(profile, entry.config) if entry is not None else None
        if terms is not None and (terms.gpu_name or terms.vram_gb is not None):
            text = terms.gpu_name or "GPU"
            return text + (f" · {gb_text(terms.vram_gb)} GB" if terms.vram_gb is not None else "")
        return "reported by the server" if profile.kind == "custom" else "reported by the node"
    spec = catalog.gpu(name or profile.default_gpu)
    if spec is None:
        return name or profile.default_gpu
    return f"{spec.name} · {gb_text(spec.vram_gb)} GB"


@dataclass(frozen=True)
class CardInfo:
    """Everything a card shows, computed once (the widgets hold no logic)."""

    key: str
    title: str
    subtitle: str
    gpu: str
    cost: str
    policy: str
    zones: tuple[str, ...]
    badge: Badge
    registered: bool
    template_id: str
    #: The profile's "Min VRAM" floor (the seed's), shown beside the GPU: "Min VRAM 24 GB".
    min_vram: str = ""
    #: The entry's link metadata (the profile's ``url`` meta fields): (label, http(s) URL).
    links: tuple[tuple[str, str], ...] = ()


def card_info(
    profile: ProviderProfile,
    catalog: Catalog,
    entry: ProviderEntry | None = None,
    validation: CheckResult | None = None,
    health: CheckResult | None = None,
    missing_fields: Sequence[str] = (),
    *,
    now: datetime | None = None,
    checking: bool = False,
) -> CardInfo:
    """The card of a registered ``entry``, or of the catalog template ``profile`` if none.

    ``missing_fields`` may be field names: they are shown with the profile's labels.
    """
    labels = []
    for name in missing_fields:
        try:
            labels.append(profile.field(name).label)
        except KeyError:
            labels.append(name)
    badge = badge_for(entry, validation, health, missing_fields=labels, now=now, checking=checking)
    return CardInfo(
        key=entry.id if entry is not None else TEMPLATE_PREFIX + profile.id,
        title=entry.name if entry is not None else profile.name,
        subtitle=f"{profile.name} · {KIND_WORDS.get(profile.kind, profile.kind)}",
        gpu=_gpu_text(profile, catalog, entry, health),
        cost=cost_text(profile, entry),
        policy=profile.policy_highlight,
        zones=_zones(profile, entry),
        badge=badge,
        registered=entry is not None,
        template_id=profile.id,
        min_vram=f"Min VRAM {gb_text(profile.vram_floor_gb)} GB",
        links=links_of(profile, entry),
    )


def links_of(profile: ProviderProfile, entry: ProviderEntry | None) -> tuple[tuple[str, str], ...]:
    """The entry's ``url`` metadata (a runbook, a compliance page) that the profile declares,
    as (label, URL); a value the profile's check refuses (set by hand) is left out."""
    if entry is None:
        return ()
    out: list[tuple[str, str]] = []
    for m in profile.meta_fields:
        if m.kind != "url" or entry.meta.get(m.name) is None:
            continue
        try:
            url = m.parse(entry.meta[m.name])
        except ValueError:
            continue
        if isinstance(url, str):
            out.append((m.label, url))
    return tuple(out)


def _zones(profile: ProviderProfile, entry: ProviderEntry | None) -> tuple[str, ...]:
    """The residency zones a card shows: a custom endpoint's own, else its profile's."""
    terms = custom_terms(profile, entry.config) if entry is not None else None
    return terms.zones if terms is not None else profile.zones


def matches(info: CardInfo, query: str) -> bool:
    """Whether every word of ``query`` occurs (case-insensitively) in what the card shows."""
    words = query.casefold().split()
    if not words:
        return True
    zones = " ".join(f"{z} {zone_words(z)}" for z in info.zones)
    hay = " ".join(
        (info.title, info.subtitle, info.template_id, info.gpu, zones, info.badge.text)
    ).casefold()
    return all(w in hay for w in words)


#: Badge colours per state: (light fg, light bg, dark fg, dark bg). Tinted backgrounds, never
#: plain white or black; every pair has a WCAG contrast of at least 4.5 (tested).
_BADGE_COLORS: dict[BadgeState, tuple[str, str, str, str]] = {
    "not_configured": ("#3c4043", "#e3e5e8", "#d5d8dc", "#3a3d42"),
    "configured": ("#2d3e50", "#dde6ef", "#cfdcea", "#2b3846"),
    "validated": ("#0d47a1", "#d6e6fb", "#b6d4fb", "#173a66"),
    "invalid": ("#a31515", "#fbdcdc", "#ffc4c4", "#5c1b1b"),
    "healthy": ("#1b5e20", "#d3eed5", "#b5e6b9", "#1d4a22"),
    "degraded": ("#6d4300", "#fde8bd", "#ffe0a3", "#5a3d05"),
    "unhealthy": ("#8b0000", "#f9c9c9", "#ffd0d0", "#7a1212"),
    "checking": ("#4a2a8c", "#e6ddf8", "#dccdfb", "#3b2a66"),
    "disabled": ("#55585c", "#ececec", "#b8bbbf", "#303236"),
}


def badge_colors(state: BadgeState, dark: bool) -> tuple[str, str]:
    """The badge's (foreground, background) colours for a dark or light palette."""
    colors = _BADGE_COLORS[state]
    return (colors[2], colors[3]) if dark else (colors[0], colors[1])
