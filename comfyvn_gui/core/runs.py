"""What a job runs: the ComfyUI run model (docs/architecture.md, "Dispatch: what a job runs").

A job runs as one or more **runs**, each a ComfyUI API-format graph. Per kind:

* ``comfyui_workflow``: the job's own graph; ``items`` N = N runs, each with the graph's seed
  inputs (``seed``, ``noise_seed``) offset by the run index, unless the task says
  ``vary_seed: false``;
* ``cg_super_res``, ``cg_remix``: one run per input image, the kind's **workflow template**
  with ``{{input_image}}`` (and ``{{prompt}}``: the task's ``prompt``, else the template's
  default) filled in;
* ``sprite_generation``: one run per item, ``{{input_image}}`` the reference sprite,
  ``{{prompt}}`` the task's ``prompts[index]`` (else the default prompt and the item's number),
  ``{{seed}}`` the job's base seed + the index (the same seed for every item when the task
  says ``vary_seed: false``);
* ``voice_synthesis``, ``translation``, ``cg_bake``: the user's template (no shipped default:
  they need custom nodes), one run per input file with ``{{input_file}}``.

A template is an API graph whose string inputs may hold the placeholders below. A placeholder
that is a whole value is replaced by the value (``"{{seed}}"`` becomes an integer); inside a
longer string, the text placeholders are replaced in place (``"a portrait, {{prompt}}"``).

A job is ``completed`` when every run succeeded, ``failed`` when any failed (the outputs of
the others are kept), ``cancelled`` when it was cancelled before that.

Pure: no I/O but the package's own data (the shipped templates in ``resources/workflows/``).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .catalog import resources_dir
from .errors import InputError
from .estimator.graph import parse as parse_graph
from .estimator.graph import unwrap

__all__ = [
    "PLACEHOLDERS",
    "REQUIRED_PLACEHOLDERS",
    "RUN_STATUSES",
    "SHIPPED_KINDS",
    "TEMPLATE_KINDS",
    "RunPlan",
    "WorkflowTemplate",
    "base_seed",
    "check_template",
    "job_outcome",
    "kind_template",
    "placeholders_in",
    "plan_runs",
    "resolve_template",
    "shipped_template",
    "template_setting",
]

#: Every placeholder a template may hold, and what fills it.
PLACEHOLDERS: dict[str, str] = {
    "input_image": "the uploaded name of the run's input image",
    "input_file": "the uploaded name of the run's input file",
    "prompt": "the prompt text (the task's prompt / prompts, else the template's default)",
    "seed": "an integer: the job's base seed + the run's index",
    "output_prefix": "comfyvn/job<id>/run<n>, where the run's outputs are saved",
}

#: The kinds that run a template, and the placeholders a template of each must hold.
REQUIRED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "cg_super_res": ("input_image",),
    "cg_remix": ("input_image",),
    "sprite_generation": ("input_image",),
    "voice_synthesis": ("input_file",),
    "translation": ("input_file",),
    "cg_bake": ("input_file",),
}
TEMPLATE_KINDS: tuple[str, ...] = tuple(REQUIRED_PLACEHOLDERS)

#: The kinds with a template shipped in ``resources/workflows/`` (core ComfyUI nodes only).
SHIPPED_KINDS: tuple[str, ...] = ("cg_super_res", "cg_remix", "sprite_generation")

#: A run's status; a job's outcome follows from its runs' (:func:`job_outcome`).
RunStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]
RUN_STATUSES: tuple[str, ...] = ("pending", "running", "succeeded", "failed", "cancelled")

#: The seed inputs a ``comfyui_workflow`` graph's runs offset by their index.
SEED_INPUTS = ("seed", "noise_seed")

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEXT_PLACEHOLDERS = ("input_image", "input_file", "prompt", "output_prefix")
_MAX_SEED = 2**64 - 1  # ComfyUI's KSampler accepts seeds in [0, 0xffffffffffffffff]


def template_setting(kind: str) -> str:
    """The setting that holds a user's template of ``kind``."""
    return f"workflows.{kind}"


@dataclass(frozen=True)
class WorkflowTemplate:
    """A kind's template: the API graph, the default prompt, the model files it loads
    (ComfyUI model folder -> file names, what preflight checks) and where it came from."""

    kind: str
    graph: Mapping[str, Any]
    default_prompt: str = ""
    models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "shipped"  # or the setting's key

    @property
    def placeholders(self) -> frozenset[str]:
        return placeholders_in(self.graph)


@dataclass(frozen=True)
class RunPlan:
    """One run of a job: its index, the graph to queue (placeholders filled), the local input
    it uploads (a name under the job's inputs, or None) and where its outputs are saved."""

    index: int
    graph: dict[str, Any]
    input: str | None
    output_prefix: str


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def placeholders_in(graph: Mapping[str, Any]) -> frozenset[str]:
    """The placeholder names the graph's inputs hold (known or not)."""
    found: set[str] = set()
    for node in graph.values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        for text in _strings(inputs or {}):
            found.update(m.group(1) for m in _PLACEHOLDER.finditer(text))
    return frozenset(found)


def check_template(kind: str, graph: Any, *, where: str | None = None) -> dict[str, Any]:
    """``graph`` as a template of ``kind``: an API-format graph holding the placeholders the
    kind needs and no unknown one; else an :class:`InputError` naming ``where`` (the setting)
    and how to fix it. Returns a copy of the graph's nodes."""
    where = where or template_setting(kind)
    if kind not in REQUIRED_PLACEHOLDERS:
        raise InputError(
            f"{where}: a {kind} job runs its own graph, not a template; templates are for "
            + ", ".join(TEMPLATE_KINDS),
            fields=[where],
        )
    try:
        parse_graph(graph)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}", fields=[where]) from None
    graph_nodes = _nodes(graph)
    found = placeholders_in(graph_nodes)
    unknown = sorted(found - set(PLACEHOLDERS))
    if unknown:
        raise InputError(
            f"{where}: unknown placeholder{'s' if len(unknown) > 1 else ''} "
            + ", ".join("{{" + u + "}}" for u in unknown)
            + "; a template may hold "
            + ", ".join("{{" + p + "}}" for p in PLACEHOLDERS),
            fields=[where],
        )
    missing = [p for p in REQUIRED_PLACEHOLDERS[kind] if p not in found]
    if missing:
        need = ", ".join('"{{' + p + '}}"' for p in missing)
        node = "the LoadImage node's image" if "input_image" in missing else "the loader's file"
        raise InputError(
            f"{where}: a {kind} template must hold {need} as the value of an input ({node}) "
            f"so that each run gets its own input",
            fields=[where],
        )
    for node_id, node in graph_nodes.items():
        for name, value in (node.get("inputs") or {}).items():
            if (
                isinstance(value, str)
                and "{{seed}}" in value.replace(" ", "")
                and _PLACEHOLDER.fullmatch(value.strip()) is None
            ):
                raise InputError(
                    f"{where}: node {node_id!r} input {name!r}: {{{{seed}}}} must be the whole "
                    f"value (it becomes an integer), not part of {value!r}",
                    fields=[where],
                )
    return graph_nodes


def _nodes(graph: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an API graph's nodes (unwrapped as the estimator reads them)."""
    return copy.deepcopy(dict(unwrap(graph)))


def resolve_template(kind: str, setting: Mapping[str, Any] | None) -> WorkflowTemplate | None:
    """The template a ``kind`` job runs: the user's (the ``workflows.<kind>`` setting, its
    default prompt the shipped one's), else the shipped one, else None."""
    shipped = shipped_template(kind)
    if setting is None:
        return shipped
    key = template_setting(kind)
    return WorkflowTemplate(
        kind=kind,
        graph=check_template(kind, setting, where=key),
        default_prompt=shipped.default_prompt if shipped is not None else "",
        source=f"your setting {key}",
    )


def kind_template(kind: str, setting: Callable[[str], Any]) -> WorkflowTemplate | None:
    """The template a ``kind`` job runs (:func:`resolve_template`), its ``workflows.<kind>``
    setting read with ``setting(key)``; None for a kind that runs its own graph."""
    if kind not in TEMPLATE_KINDS:
        return None
    return resolve_template(kind, setting(template_setting(kind)))


def _folder() -> Path:
    return resources_dir() / "workflows"


@functools.cache
def _manifest() -> dict[str, Any]:
    return tomllib.loads((_folder() / "templates.toml").read_text("utf-8"))


@functools.cache
def _shipped(kind: str) -> WorkflowTemplate:
    entry = _manifest()[kind]
    graph = json.loads((_folder() / entry["file"]).read_text("utf-8"))
    nodes = check_template(kind, graph, where=f"resources/workflows/{entry['file']}")
    models = {str(k): tuple(v) for k, v in (entry.get("models") or {}).items()}
    return WorkflowTemplate(
        kind=kind,
        graph=nodes,
        default_prompt=str(entry.get("default_prompt", "")),
        models=models,
        source=f"shipped: resources/workflows/{entry['file']}",
    )


def shipped_template(kind: str) -> WorkflowTemplate | None:
    """The template shipped for ``kind``, or None where none is (custom nodes needed)."""
    return _shipped(kind) if kind in SHIPPED_KINDS else None


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def base_seed(job_id: int) -> int:
    """The job's base seed: stable for the job (a retry makes the same images), different
    between jobs."""
    digest = hashlib.sha256(f"comfyvn-job{job_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None and whole.group(1) in values:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(
            lambda m: (
                str(values[m.group(1)])
                if m.group(1) in values and m.group(1) in _TEXT_PLACEHOLDERS
                else m.group(0)
            ),
            value,
        )
    if isinstance(value, list):
        # (a link [node_id, index] holds no string to fill but the node id: left alone)
        if len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int):
            return list(value)
        return [_fill(v, values) for v in value]
    if isinstance(value, Mapping):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def _filled(graph: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node_id, node in graph.items():
        node = dict(node)
        node["inputs"] = {k: _fill(v, values) for k, v in (node.get("inputs") or {}).items()}
        out[node_id] = node
    return out


def _offset_seeds(graph: Mapping[str, Any], offset: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(graph))
    for node in out.values():
        inputs = node.get("inputs") or {}
        for name in SEED_INPUTS:
            seed = inputs.get(name)
            if isinstance(seed, int) and not isinstance(seed, bool):
                inputs[name] = (seed + offset) % (_MAX_SEED + 1)
    return out


def output_prefix(job_id: int, index: int) -> str:
    return f"comfyvn/job{job_id}/run{index}"


def plan_runs(
    *,
    job_id: int,
    kind: str,
    items: int,
    inputs: Sequence[str] = (),
    template: WorkflowTemplate | None = None,
    workflow: Mapping[str, Any] | None = None,
    task: Mapping[str, Any] | None = None,
) -> list[RunPlan]:
    """The runs of a job (see the module's text). ``inputs``: the job's input files, in
    order (uploaded names); ``template``: the kind's template (the user's setting, else the
    shipped one); ``workflow``: a ``comfyui_workflow`` job's graph; ``task``: the summary's
    optional task fields (``prompt``, ``prompts``, ``vary_seed``). A job that cannot run is an
    :class:`InputError` saying what is missing."""
    task = task or {}
    if kind == "comfyui_workflow":
        if workflow is None:
            raise InputError("this workflow job has no graph to run", fields=["workflow"])
        try:
            parse_graph(workflow)
        except ValueError as exc:
            raise InputError(f"workflow: {exc}", fields=["workflow"]) from None
        graph = _nodes(workflow)
        vary = task.get("vary_seed", True) is not False
        runs = []
        for i in range(max(1, items)):
            one = _offset_seeds(graph, i) if vary else copy.deepcopy(graph)
            prefix = output_prefix(job_id, i)
            runs.append(RunPlan(i, _filled(one, {"output_prefix": prefix}), None, prefix))
        return runs
    if kind not in REQUIRED_PLACEHOLDERS:
        raise InputError(f"unknown job kind {kind!r}", fields=["kind"])
    setting = template_setting(kind)
    if template is None:
        raise InputError(
            f"no workflow template for {kind} jobs: these need custom ComfyUI nodes, so none "
            f"is shipped; set yours with `comfyvn-gui settings set {setting} FILE` (an API-"
            f'format graph holding "{{{{{REQUIRED_PLACEHOLDERS[kind][0]}}}}}")',
            fields=[setting],
        )
    if not inputs:
        noun = "image" if "input_image" in REQUIRED_PLACEHOLDERS[kind] else "file"
        raise InputError(f"this {kind} job has no input {noun} to run on", fields=["inputs"])
    seed0 = base_seed(job_id)
    vary = task.get("vary_seed", True) is not False
    default = template.default_prompt
    prompts = task.get("prompts")
    runs = []
    count = max(1, items) if kind == "sprite_generation" else len(inputs)
    for i in range(count):
        name = inputs[i % len(inputs)]
        if kind == "sprite_generation":
            if prompts:
                prompt = str(prompts[i % len(prompts)])
            else:
                base = str(task.get("prompt") or default)
                prompt = f"{base}, variation {i + 1}" if base else f"variation {i + 1}"
        else:
            prompt = str(task.get("prompt") or default)
        prefix = output_prefix(job_id, i)
        values = {
            "input_image": name,
            "input_file": name,
            "prompt": prompt,
            "seed": (seed0 + (i if vary else 0)) % (_MAX_SEED + 1),
            "output_prefix": prefix,
        }
        runs.append(RunPlan(i, _filled(template.graph, values), name, prefix))
    return runs


def job_outcome(statuses: Sequence[str]) -> Literal["completed", "failed", "cancelled"] | None:
    """A job's end from its runs' statuses: None while one is pending or running; cancelled if
    any was cancelled; failed if any failed; completed when every run succeeded."""
    if not statuses:
        return None
    if any(s in ("pending", "running") for s in statuses):
        return None
    if "cancelled" in statuses:
        return "cancelled"
    if "failed" in statuses:
        return "failed"
    return "completed"
