"""core/wording.py: every number a user reads, worded one way (docs/architecture.md, "Layers")."""

from __future__ import annotations

import pytest

from comfyvn_gui.core import wording


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (12.0, 2, "12"),
        (4.90, 2, "4.9"),
        (0.456, 2, "0.46"),
        (0.0, 2, "0"),
        (1234567.0, 2, "1234567"),  # never in exponent notation
        (100.0, 2, "100"),
        (12.0, 0, "12"),
        (120.0, 0, "120"),  # the zeros of a whole number stay
        (0.5, 1, "0.5"),
    ],
)
def test_number(value: float, digits: int, text: str) -> None:
    assert wording.number(value, digits) == text


def test_number_grouping() -> None:
    assert wording.number(1234.5, 1, grouping=True) == "1,234.5"
    assert wording.number(1000.04, 1, grouping=True) == "1,000"


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (24.0, None, "24"),
        (0.375, None, "0.375"),
        (0.2947, None, "0.2947"),
        (4.93, 1, "4.9"),
        (0.38, 2, "0.38"),
        (43980465.1, 1, "4.39805e+07"),  # six significant digits at most, like Python's g
        (123.4567, 4, "123.457"),
    ],
)
def test_figure(value: float, digits: int | None, text: str) -> None:
    assert wording.figure(value, digits) == text


def test_counts_and_sizes() -> None:
    assert wording.count(1234.4) == "1,234"
    assert wording.count(7) == "7"
    assert wording.counted(1, "line", "lines") == "1 line"
    assert wording.counted(1234, "line", "lines") == "1,234 lines"
    assert wording.counted(0, "CG", "CGs") == "0 CGs"
    assert wording.percent(0.456) == "46%"
    assert wording.image_size(1024.4, 767.6) == "1024x768"


def test_memory_and_gpu_time() -> None:
    assert wording.vram(24.0) == "24 GB"
    assert wording.vram(4.93, 1) == "4.9 GB"
    assert wording.gpu_hours(0.2947) == "0.2947 GPU-hours"


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0.0, "1 s"), (0.75, "45 s"), (12.4, "12 min"), (89.4, "89 min"), (90.0, "1.5 h")],
)
def test_duration_is_rounded_as_people_say_it(minutes: float, text: str) -> None:
    assert wording.duration(minutes) == text


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (0.0, "none"),
        (0.5, "30 s"),
        (1 / 60, "1 s"),
        (5.0, "5 min"),
        (60.0, "60 min"),
        (26.6, "26.6 min"),
    ],
)
def test_minutes_are_stated_as_they_are(minutes: float, text: str) -> None:
    assert wording.minutes(minutes) == text


def test_seconds_and_lengths() -> None:
    assert wording.seconds(8.54) == "8.5 s"
    assert wording.seconds(42.4) == "42 s"
    assert wording.media_length(42.0) == "42 s"
    assert wording.media_length(750.0) == "12.5 min"
    assert wording.media_length(7199.0) == "120 min"
    assert wording.media_length(11520.0) == "3.2 h"
    assert wording.media_length(36_000_000.0) == "10,000 h"
    assert wording.milliseconds(12.4) == "12 ms"


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (None, None),
        (0.0, "$0.00"),
        (-1.0, "$0.00"),
        (0.004999, "<$0.01"),
        (0.005, "$0.01"),
        (0.45, "$0.45"),
        (1234.5, "$1,234.50"),
    ],
)
def test_cost(usd: float | None, text: str | None) -> None:
    assert wording.cost(usd) == text


def test_amounts_and_prices() -> None:
    assert wording.usd(1234.5) == "$1,234.50"
    assert wording.usd(1234.5, grouping=False) == "$1234.50"
    assert wording.usd(0.001) == "$0.00"  # unlike cost(), a tiny amount is not marked
    assert wording.usd(-3.0) == "-$3.00"
    assert wording.price(0.3) == "$0.30"
    assert wording.price(1.05) == "$1.05"
    assert wording.price(0.456) == "$0.456"
    assert wording.price(2.34567) == "$2.3457"
    assert wording.hourly_price(0.46) == "$0.46/hr"


@pytest.mark.parametrize(
    ("increment", "text"),
    [
        (1 / 60, "per second"),
        (1.0, "per minute"),
        (60.0, "per hour"),
        (5.0, "in 5-minute steps"),
        (0.5, "in 0.5-minute steps"),
    ],
)
def test_billing_step_reads_as_the_advisor_words_it(increment: float, text: str) -> None:
    assert wording.billing_step(increment) == text


def test_keyring_backends_and_local_gpus_in_a_users_words() -> None:
    from comfyvn_gui.core.checks import LocalGpu, LocalSnapshot

    assert (
        wording.keyring_backend("keyring.backends.SecretService.Keyring")
        == "Secret Service (GNOME Keyring / KWallet)"
    )
    assert wording.keyring_backend("some.other.Backend") == "some.other.Backend"
    gpu = LocalGpu(name="RTX 4090", vram_total_gb=24, vram_free_gb=21.25)
    one = wording.local_gpus(LocalSnapshot(gpus=[gpu]))
    assert one == "1 GPU: RTX 4090, 24.0 GB (21.2 GB free)"
    assert (
        wording.local_gpus(LocalSnapshot(note="no NVIDIA driver: jobs run elsewhere"))
        == "no local GPU (no NVIDIA driver)"
    )
