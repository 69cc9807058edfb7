"""Estimate what a workload needs: VRAM (GB) and GPU-hours on the reference GPU (the A10G).

:func:`estimate` turns a :class:`~comfyvn_gui.core.workload.Workload` into
:class:`~comfyvn_gui.core.workload.Requirements`; :func:`read_graph` reads a ComfyUI graph in API
format into a :class:`~comfyvn_gui.core.workload.GraphSummary`.

The figures are PLANNING numbers from heuristics, not measurements. Every constant the result
rests on is a named constant with its rationale (:mod:`.constants`), and every assumption an
estimate makes is stated in ``Requirements.assumptions`` in a desktop user's words, numbers
included, so a user can see why the advisor asks for (say) 12 GB and correct it with an explicit
``vram_gb`` / ``gpu_hours`` in the request.

Units: VRAM in GB as GPU vendors state it; time in seconds on the A10G internally, GPU-hours on
the catalog's reference GPU in the result (the A10G in the bundled catalog).

The modules (docs/architecture.md, "Layers": ``core`` is pure, the standard library and pydantic
only):

- :mod:`.constants`: model sizes, speeds on the A10G, the ComfyUI node types known;
- :mod:`.notes`: the assumptions an estimate collects, and its raw figures;
- :mod:`.kinds`: one estimator per workload kind;
- :mod:`.graph`, :mod:`.graph_models`, :mod:`.graph_reader`: reading a ComfyUI graph (its
  structure, the models it loads, the work it does);
- :mod:`.requirements`: :func:`estimate`, from raw figures to rounded requirements.
"""

from __future__ import annotations

from .graph_reader import read_graph
from .requirements import estimate

__all__ = ["estimate", "read_graph"]
