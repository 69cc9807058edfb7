"""Reading a ComfyUI graph in API format: its nodes, their links and literal inputs.

A malformed graph is a ``ValueError`` naming the node and input, with how to export it again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from comfyvn_gui.core import wording

from .constants import MAX_GRAPH_NODES

# --------------------------------------------------------------------------------------------
# Reading a graph: structure
# --------------------------------------------------------------------------------------------

_EXPORT_HINT = "export the workflow again with 'Save (API Format)'"


@dataclass(frozen=True)
class Node:
    id: str
    class_type: str
    inputs: Mapping[str, Any]
    links: dict[str, tuple[str, int]]  # input name -> (source node id, output index)

    @property
    def where(self) -> str:
        return f"node {self.id!r} ({self.class_type})"


def unwrap(graph: Mapping[str, Any]) -> Mapping[str, Any]:
    """The nodes of an API graph, out of a ``{"prompt": {...}}`` wrapper (``/prompt``'s body)."""
    inner = graph.get("prompt")
    if isinstance(inner, Mapping) and "class_type" not in inner:
        return inner
    return graph


def parse(graph: Any) -> dict[str, Node]:
    if not isinstance(graph, Mapping):
        raise ValueError(
            f"the workflow must be a JSON object of nodes, not {type(graph).__name__}; "
            f"{_EXPORT_HINT}"
        )
    graph = unwrap(graph)
    if isinstance(graph.get("nodes"), list) or isinstance(graph.get("links"), list):
        raise ValueError(
            "this is a ComfyUI UI workflow (top-level 'nodes' and 'links' lists), not the API "
            "format the estimator reads: in ComfyUI, enable Dev mode in the settings and "
            "export the workflow with 'Save (API Format)'"
        )
    if not graph:
        raise ValueError(f"the workflow graph is empty; {_EXPORT_HINT}")
    if len(graph) > MAX_GRAPH_NODES:
        raise ValueError(f"the workflow has {len(graph)} nodes; at most {MAX_GRAPH_NODES} are read")
    nodes: dict[str, Node] = {}
    for raw_id, raw in graph.items():
        nid = str(raw_id)
        if not isinstance(raw, Mapping):
            raise ValueError(
                f"node {nid!r} is not a node object ({type(raw).__name__}): every node of an "
                'API-format graph is {"class_type": ..., "inputs": {...}}; ' + _EXPORT_HINT
            )
        class_type = raw.get("class_type")
        if not isinstance(class_type, str) or not class_type.strip():
            raise ValueError(
                f"node {nid!r} has no class_type: every node of an API-format graph is "
                '{"class_type": ..., "inputs": {...}}; ' + _EXPORT_HINT
            )
        inputs = raw.get("inputs")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            raise ValueError(
                f"node {nid!r} ({class_type}): 'inputs' must be an object of input names, not "
                f"{type(inputs).__name__}; {_EXPORT_HINT}"
            )
        links: dict[str, tuple[str, int]] = {}
        for name, value in inputs.items():
            if isinstance(value, list | tuple):
                links[str(name)] = _link(nid, class_type, str(name), value)
        nodes[nid] = Node(nid, class_type, inputs, links)
    for node in nodes.values():
        for name, (src, _) in node.links.items():
            if src not in nodes:
                raise ValueError(
                    f"{node.where}, input {name!r}: links to node {src!r}, which is not in the "
                    f"graph; {_EXPORT_HINT}"
                )
    return nodes


def _link(
    nid: str, class_type: str, name: str, value: list[Any] | tuple[Any, ...]
) -> tuple[str, int]:
    ok = (
        len(value) == 2
        and isinstance(value[0], str | int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
        and value[1] >= 0
    )
    if not ok:
        raise ValueError(
            f"node {nid!r} ({class_type}), input {name!r}: {list(value)!r} is not a link; a "
            f'link is ["<node id>", <output index>] (a list stands for a link in the API '
            f"format); {_EXPORT_HINT}"
        )
    return str(value[0]), int(value[1])


def topological(nodes: dict[str, Node]) -> list[str]:
    """Node ids, every node after the nodes it takes inputs from; ``ValueError`` on a cycle."""
    indegree: dict[str, int] = {}
    consumers: dict[str, list[str]] = {nid: [] for nid in nodes}
    for nid, node in nodes.items():
        sources = list(dict.fromkeys(src for src, _ in node.links.values()))
        indegree[nid] = len(sources)
        for src in sources:
            consumers[src].append(nid)
    ready = deque(nid for nid, n in indegree.items() if n == 0)
    order: list[str] = []
    while ready:
        nid = ready.popleft()
        order.append(nid)
        for consumer in consumers[nid]:
            indegree[consumer] -= 1
            if indegree[consumer] == 0:
                ready.append(consumer)
    if len(order) < len(nodes):
        stuck = next(nid for nid in nodes if indegree[nid] > 0)
        raise ValueError(
            f"the graph has a cycle through {nodes[stuck].where}: a node's output feeds back "
            f"into its own inputs, which ComfyUI cannot run; {_EXPORT_HINT}"
        )
    return order


def literal(node: Node, name: str, *, lo: float, hi: float, integer: bool) -> float | None:
    """The literal number of input ``name``; ``None`` when missing or a link; else ValueError."""
    if name in node.links or name not in node.inputs:
        return None
    value = node.inputs[name]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer and isinstance(value, float) and not value.is_integer():
        ok = False
    if not ok or not (lo <= float(value) <= hi) or math.isnan(float(value)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(
            f"{node.where}, input {name!r}: {value!r} is not {kind} from {wording.figure(lo, 2)} "
            f"to {wording.figure(hi, 2)}; fix the value in ComfyUI and export again with "
            "'Save (API Format)'"
        )
    return float(value)


def text_input(node: Node, name: str) -> str | None:
    value = node.inputs.get(name)
    if name in node.links or not isinstance(value, str):
        return None
    return value
