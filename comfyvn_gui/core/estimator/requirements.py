"""From an estimate's raw figures to :class:`~comfyvn_gui.core.workload.Requirements`.

:func:`estimate` picks the kind's estimator, converts A10G seconds to hours on the catalog's
reference GPU, rounds the figures, and lets an explicit ``vram_gb`` / ``gpu_hours`` of the
workload replace its own estimate (dropping the assumptions only that figure rested on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.core.workload import Requirements, Workload

from .constants import (
    CALIBRATION_GPU,
    CALIBRATION_GPU_VRAM_GB,
    HOURS_DECIMALS,
    MIN_WORK_SECONDS,
    VRAM_FLOOR_GB,
    VRAM_STEP_GB,
)
from .graph_reader import analyse
from .kinds import ESTIMATORS
from .notes import Figures, Notes

__all__ = ["estimate"]


@dataclass(frozen=True)
class _Reference:
    name: str
    vram_gb: float
    time_scale: float  # reference-GPU seconds per A10G second


def _reference(catalog: Catalog | None, notes: Notes) -> _Reference:
    if catalog is None:
        return _Reference(CALIBRATION_GPU, CALIBRATION_GPU_VRAM_GB, 1.0)
    ref = catalog.reference
    calibration = catalog.gpu(CALIBRATION_GPU)
    if calibration is None:
        notes.add(
            "time",
            f"The per-item times were measured for the {CALIBRATION_GPU}, which this catalog "
            f"does not list; assumed the reference GPU ({ref.name}) is as fast.",
        )
        return _Reference(ref.name, ref.vram_gb, 1.0)
    # time on the reference = time on the A10G x (A10G speed / reference speed); ref speed = 1
    return _Reference(ref.name, ref.vram_gb, calibration.relative_throughput)


def estimate(workload: Workload, catalog: Catalog | None = None) -> Requirements:
    """The VRAM and GPU-hours (on the reference GPU) ``workload`` needs, and why.

    An explicit ``workload.vram_gb`` / ``workload.gpu_hours`` replaces the estimate of that
    figure. A workflow graph is read even then, and for every kind (a malformed one raises
    ``ValueError``); only kind ``comfyui_workflow`` takes its figures from the graph.
    """
    notes = Notes()
    ref = _reference(catalog, notes)
    figures = ESTIMATORS[workload.kind](workload, notes)
    if workload.workflow is not None and workload.kind != "comfyui_workflow":
        # read (and so validate) the graph, and show what it loads; the kind's calibrated
        # heuristics still give the figures
        summary = analyse(workload.workflow, None, Notes()).summary
        notes.add(
            "both",
            f"Read the attached workflow ({summary.nodes} nodes), but the figures use the "
            f"{workload.label} heuristics above; use kind comfyui_workflow to estimate from "
            "the graph itself.",
        )
        figures = Figures(figures.vram_gb, figures.seconds, summary)

    vram_given = workload.vram_gb is not None
    time_given = workload.gpu_hours is not None
    given: list[str] = []
    if workload._kind_derived:
        given.append(
            f"No kind given: {workload.asset_type} assets are taken as {workload.label} "
            f"(kind {workload.kind}); give kind to estimate another job on them."
        )
    if workload.vram_gb is not None:
        vram = workload.vram_gb
        given.append(f"VRAM need given in the request: {wording.figure(vram, 2)} GB.")
    else:
        vram = _round_vram(figures.vram_gb)
    if workload.gpu_hours is not None:
        hours = workload.gpu_hours
        given.append(
            f"GPU time given in the request: {wording.figure(hours, 4)} hours on the {ref.name}."
        )
    else:
        hours = _round_hours(figures.seconds * ref.time_scale)
        notes.add(
            "time",
            f"GPU-hours are hours on the reference GPU, the {ref.name} "
            f"({wording.figure(ref.vram_gb, 1)} GB); a faster GPU needs proportionally less time.",
        )

    if vram_given and time_given:
        source: Literal["estimate", "explicit", "partly_explicit"] = "explicit"
    elif vram_given or time_given:
        source = "partly_explicit"
    else:
        source = "estimate"
    return Requirements(
        vram_gb=vram,
        gpu_hours=hours,
        source=source,
        assumptions=given + notes.select(vram_given=vram_given, time_given=time_given),
        graph=figures.graph,
    )


def _round_vram(gb: float) -> float:
    # round(…, 6) first so that float noise (8.0000000001) does not add a whole step
    steps = math.ceil(round(gb / VRAM_STEP_GB, 6))
    return max(VRAM_FLOOR_GB, steps * VRAM_STEP_GB)


def _round_hours(seconds: float) -> float:
    if seconds <= 0:
        return 0.0
    hours = round(max(seconds, MIN_WORK_SECONDS) / 3600, HOURS_DECIMALS)
    return max(hours, 0.1**HOURS_DECIMALS)
