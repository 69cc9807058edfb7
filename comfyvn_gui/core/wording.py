"""Numbers for people: the one module that words costs, durations, GPU time, VRAM and billing.

Every figure a user reads (the advisor's reasons and warnings, the estimator's assumptions, the
importer summary's job titles, the CLI's lines and tables) is worded by a function here, so the
same number reads the same wherever it appears (docs/architecture.md, "Layers": ``core`` holds
the vocabulary the skins show).

Two general number formatters, kept apart because their outputs differ at the edges:

- :func:`number` writes a fixed number of decimals and drops trailing zeros
  (``12``, ``4.9``, ``0.46``, ``1234567``): prices, budgets, VRAM in the advisor's sentences;
- :func:`figure` writes at most six significant digits like Python's ``g`` (``24``, ``0.375``,
  ``4.39805e+07``): the estimator's figures and the CLI's plain values.

Pure: the standard library only; no function reads the locale.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from .checks import LocalSnapshot

__all__ = [
    "billing_step",
    "cost",
    "count",
    "counted",
    "duration",
    "figure",
    "gpu_hours",
    "hourly_price",
    "image_size",
    "keyring_backend",
    "local_gpus",
    "media_length",
    "milliseconds",
    "minutes",
    "number",
    "percent",
    "price",
    "printable",
    "seconds",
    "usd",
    "vram",
]

#: Billing increments that read as a word rather than as a step, in minutes.
_PER_SECOND = 1 / 60
_PER_MINUTE = 1.0
_PER_HOUR = 60.0

# --------------------------------------------------------------------------------------------
# Plain numbers
# --------------------------------------------------------------------------------------------


def number(value: float, digits: int = 2, *, grouping: bool = False) -> str:
    """At most ``digits`` decimals, without trailing zeros: ``12``, ``4.9``, ``0.46``.

    Never in exponent notation (``1234567``); ``grouping`` separates thousands with commas
    (``1,234.5``).
    """
    text = f"{value:,.{digits}f}" if grouping else f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def figure(value: float, digits: int | None = None) -> str:
    """At most six significant digits, as Python's ``g`` writes them: ``24``, ``0.375``.

    Rounded to ``digits`` decimals first when given (``figure(4.93, 1)`` is ``4.9``). Beyond six
    significant digits it switches to exponent notation (``4.39805e+07``).
    """
    if digits is not None:
        value = round(value, digits)
    return f"{value:g}"


def count(value: float) -> str:
    """A whole number with thousands separated: ``1,234`` (rounded to the nearest whole)."""
    return f"{round(value):,}"


def counted(n: int, singular: str, plural: str) -> str:
    """``n`` and the noun that goes with it: ``1 line``, ``1,234 lines``."""
    return f"{n:,} {singular if n == 1 else plural}"


def percent(fraction: float) -> str:
    """A fraction (0-1) as a whole percentage: ``0.456`` is ``46%``."""
    return f"{fraction:.0%}"


def image_size(width: float, height: float) -> str:
    """Pixels of an image, rounded: ``1024x1024``."""
    return f"{round(width)}x{round(height)}"


# --------------------------------------------------------------------------------------------
# Memory and GPU time
# --------------------------------------------------------------------------------------------


def vram(gb: float, digits: int | None = None) -> str:
    """Memory in GB as GPU vendors state it: ``24 GB``, ``4.9 GB`` (a :func:`figure`)."""
    return f"{figure(gb, digits)} GB"


def gpu_hours(hours: float, digits: int | None = None) -> str:
    """GPU time: ``0.2947 GPU-hours`` (a :func:`figure`)."""
    return f"{figure(hours, digits)} GPU-hours"


# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """A few seconds of work: ``8.5 s``; whole seconds from ten on (``42 s``)."""
    if value >= 10:
        return f"{value:.0f} s"
    return f"{figure(value, 1)} s"


def duration(minutes: float) -> str:
    """An estimated run time, rounded as a person says it: ``45 s``, ``12 min``, ``1.5 h``.

    Under a minute in whole seconds (at least ``1 s``), under 90 minutes in whole minutes,
    beyond in hours with one decimal.
    """
    if minutes < 1:
        return f"{max(1, round(minutes * 60))} s"
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def minutes(value: float) -> str:
    """A number of minutes as stated, never rounded: ``none``, ``30 s``, ``5 min``, ``60 min``.

    For terms (a billing increment or minimum) and figures already rounded elsewhere.
    """
    if value == 0:
        return "none"
    if value < 1:
        return f"{figure(value * 60)} s"
    return f"{figure(value)} min"


def media_length(value: float) -> str:
    """The length of audio (``value`` in seconds): ``42 s``, ``12.5 min``, ``3.2 h``.

    Under a minute in seconds, under two hours in minutes, beyond in hours; one decimal at
    most, thousands separated.
    """
    if value < 60:
        return f"{number(value, 1, grouping=True)} s"
    if value < 120 * 60:
        return f"{number(value / 60, 1, grouping=True)} min"
    return f"{number(value / 3600, 1, grouping=True)} h"


def milliseconds(value: float) -> str:
    """A latency: ``12 ms``."""
    return f"{value:.0f} ms"


# --------------------------------------------------------------------------------------------
# Money (USD)
# --------------------------------------------------------------------------------------------


@overload
def cost(usd: float) -> str: ...


@overload
def cost(usd: None) -> None: ...


@overload
def cost(usd: float | None) -> str | None: ...


def cost(usd: float | None) -> str | None:
    """An estimated cost, rounded to the cent: ``$0.45``, ``$1,234.50``; ``None`` stays ``None``.

    Nothing (or less) is ``$0.00``; a cost that rounds to nothing but is not nothing is
    ``<$0.01``.
    """
    if usd is None:
        return None
    if usd <= 0:
        return "$0.00"
    if usd < 0.005:
        return "<$0.01"
    return f"${usd:,.2f}"


def usd(value: float, *, grouping: bool = True) -> str:
    """An amount of money to the cent, as it is: ``$1,234.50``, ``$0.00``, ``-$3.00``.

    Unlike :func:`cost` a tiny amount is not marked (``$0.00``); ``grouping=False`` writes
    ``$1234.50``.
    """
    spec = ",.2f" if grouping else ".2f"
    return f"-${-value:{spec}}" if value < 0 else f"${value:{spec}}"


def price(usd: float) -> str:
    """A unit price: at least two decimals, up to four: ``$0.30``, ``$1.05``, ``$0.456``."""
    text = f"{usd:.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def hourly_price(usd: float) -> str:
    """A price per hour: ``$0.46/hr`` (a :func:`price`)."""
    return f"{price(usd)}/hr"


def price_origin(source: str | None, as_of: str | None) -> str:
    """Where an advised price comes from (an alternative's ``price_source``) and when it was
    taken (``prices_as_of``), in words."""
    if source == "live":
        return f"live price of {as_of}" if as_of else "live price"
    if source == "catalog":
        return f"catalog price as of {as_of}" if as_of else "catalog price"
    return {
        "meta": "your price (meta.hourly_usd)",
        "config": "the price you stated for it",
        "price_ceiling": "your price ceiling",
    }.get(source or "", "free")


# --------------------------------------------------------------------------------------------
# Billing
# --------------------------------------------------------------------------------------------


def billing_step(increment_minutes: float) -> str:
    """How a provider bills time: ``per second``, ``per minute``, ``per hour``, or in steps.

    Any other increment reads ``in 5-minute steps`` (its minutes as a :func:`number`).
    """
    if abs(increment_minutes - _PER_SECOND) < 1e-6:
        return "per second"
    if abs(increment_minutes - _PER_MINUTE) < 1e-9:
        return "per minute"
    if abs(increment_minutes - _PER_HOUR) < 1e-9:
        return "per hour"
    return f"in {number(increment_minutes)}-minute steps"


# --------------------------------------------------------------------------------------------
# Things of this computer
# --------------------------------------------------------------------------------------------

#: Keyring backends as a desktop user knows them (module prefix -> words).
_BACKEND_LABELS: tuple[tuple[str, str], ...] = (
    ("keyring.backends.SecretService.", "Secret Service (GNOME Keyring / KWallet)"),
    ("keyring.backends.libsecret.", "Secret Service (libsecret)"),
    ("keyring.backends.kwallet.", "KWallet"),
    ("keyring.backends.macOS.", "macOS Keychain"),
    ("keyring.backends.Windows.", "Windows Credential Manager"),
)


def keyring_backend(name: str) -> str:
    """``keyring.backends.SecretService.Keyring`` -> ``Secret Service (GNOME Keyring / KWallet)``;
    an unknown backend keeps its class path; ``none`` stays ``none``."""
    for prefix, label in _BACKEND_LABELS:
        if name.startswith(prefix):
            return label
    return name


def local_gpus(snap: LocalSnapshot) -> str:
    """The snapshot in words: ``1 GPU: NVIDIA GeForce RTX 4090, 24.0 GB (21.3 GB free)``."""
    if not snap.gpus:
        why = (snap.note or "no NVIDIA driver found").split(": jobs run", 1)[0]
        return f"no local GPU ({why})"
    parts = [
        f"{g.name}, {g.vram_total_gb:.1f} GB ({g.vram_free_gb:.1f} GB free)" for g in snap.gpus
    ]
    count = len(snap.gpus)
    return f"{count} GPU{'s' if count != 1 else ''}: " + "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Text from elsewhere, on a terminal
# --------------------------------------------------------------------------------------------

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides/isolates
# that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (an escape sequence in a
    provider's or a project's name could clear the screen, retitle the window or hide text)
    are shown escaped, as ``\x1b`` or ``\u202e``, instead of being sent to the terminal."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)
