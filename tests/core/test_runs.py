"""The ComfyUI run model: what each kind of job runs, the placeholders, seeds and outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.runs import (
    SHIPPED_KINDS,
    TEMPLATE_KINDS,
    base_seed,
    check_template,
    job_outcome,
    placeholders_in,
    plan_runs,
    resolve_template,
    shipped_template,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples" / "workflows"


def _values(graph: dict[str, Any], class_type: str, name: str) -> list[Any]:
    return [n["inputs"][name] for n in graph.values() if n["class_type"] == class_type]


def _text(graph: dict[str, Any]) -> str:
    return json.dumps(graph)


def voice_template() -> dict[str, Any]:
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "{{input_file}}"}},
        "2": {
            "class_type": "SaveAudio",
            "inputs": {"audio": ["1", 0], "filename_prefix": "{{output_prefix}}"},
        },
    }


@pytest.mark.parametrize("kind", SHIPPED_KINDS)
def test_every_run_of_a_shipped_template_has_every_placeholder_filled(kind: str) -> None:
    template = shipped_template(kind)
    assert template is not None and template.source.startswith("shipped")
    runs = plan_runs(
        job_id=7, kind=kind, items=3, inputs=["a.png", "b.png", "c.png"], template=template
    )
    assert [r.index for r in runs] == [0, 1, 2]
    for run in runs:
        assert "{{" not in _text(run.graph), run.graph
        assert _values(run.graph, "SaveImage", "filename_prefix") == [
            f"comfyvn/job7/run{run.index}"
        ]
        assert run.output_prefix == f"comfyvn/job7/run{run.index}"
    # the template itself is untouched (the next job fills it again)
    assert "{{input_image}}" in _text(dict(template.graph))


def test_super_res_and_remix_run_once_per_input_image() -> None:
    for kind in ("cg_super_res", "cg_remix"):
        runs = plan_runs(
            job_id=1,
            kind=kind,
            items=40,
            inputs=["bg/a.png", "bg/b.png"],
            template=shipped_template(kind),
        )
        assert [r.input for r in runs] == ["bg/a.png", "bg/b.png"]
        assert [_values(r.graph, "LoadImage", "image") for r in runs] == [
            ["bg/a.png"],
            ["bg/b.png"],
        ]


def test_remix_prompt_is_the_tasks_else_the_templates_default() -> None:
    template = shipped_template("cg_remix")
    assert template is not None and template.default_prompt
    default = plan_runs(job_id=1, kind="cg_remix", items=1, inputs=["a.png"], template=template)
    assert template.default_prompt in _values(default[0].graph, "CLIPTextEncode", "text")
    mine = plan_runs(
        job_id=1,
        kind="cg_remix",
        items=1,
        inputs=["a.png"],
        template=template,
        task={"prompt": "rainy night, neon"},
    )
    assert "rainy night, neon" in _values(mine[0].graph, "CLIPTextEncode", "text")
    assert template.default_prompt not in _values(mine[0].graph, "CLIPTextEncode", "text")


def test_sprites_run_per_item_with_their_own_prompt_and_consecutive_integer_seeds() -> None:
    template = shipped_template("sprite_generation")
    runs = plan_runs(
        job_id=12,
        kind="sprite_generation",
        items=3,
        inputs=["ref/hero.png"],
        template=template,
        task={"prompts": ["smiling", "angry", "sad"]},
    )
    assert [r.input for r in runs] == ["ref/hero.png"] * 3
    seeds = [_values(r.graph, "KSampler", "seed")[0] for r in runs]
    assert all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    assert seeds == [base_seed(12), base_seed(12) + 1, base_seed(12) + 2]
    prompts = [_values(r.graph, "CLIPTextEncode", "text") for r in runs]
    assert [p[0] for p in prompts] == ["smiling", "angry", "sad"]
    same = plan_runs(
        job_id=12,
        kind="sprite_generation",
        items=3,
        inputs=["ref/hero.png"],
        template=template,
        task={"prompts": ["smiling", "angry", "sad"], "vary_seed": False},
    )
    assert [_values(r.graph, "KSampler", "seed")[0] for r in same] == [base_seed(12)] * 3
    # without prompts: the default prompt and the item's number, so each item differs
    plain = plan_runs(
        job_id=12, kind="sprite_generation", items=2, inputs=["ref/hero.png"], template=template
    )
    texts = [_values(r.graph, "CLIPTextEncode", "text")[0] for r in plain]
    assert texts[0] != texts[1] and all(t.startswith(template.default_prompt) for t in texts)


def test_base_seed_is_stable_for_a_job_and_differs_between_jobs() -> None:
    assert base_seed(3) == base_seed(3)
    assert len({base_seed(i) for i in range(1, 200)}) == 199
    assert all(0 <= base_seed(i) < 2**32 for i in range(1, 50))


def test_a_workflow_job_runs_items_times_with_seeds_offset_unless_told_not_to() -> None:
    graph = json.loads((EXAMPLES / "sdxl_txt2img.json").read_text("utf-8"))
    seed_nodes = [k for k, n in graph.items() if isinstance(n["inputs"].get("seed"), int)]
    assert seed_nodes, "the example graph has a KSampler seed"
    first = graph[seed_nodes[0]]["inputs"]["seed"]
    runs = plan_runs(job_id=4, kind="comfyui_workflow", items=3, workflow=graph)
    assert [r.graph[seed_nodes[0]]["inputs"]["seed"] for r in runs] == [first, first + 1, first + 2]
    same = plan_runs(
        job_id=4, kind="comfyui_workflow", items=3, workflow=graph, task={"vary_seed": False}
    )
    assert [r.graph[seed_nodes[0]]["inputs"]["seed"] for r in same] == [first] * 3
    assert graph[seed_nodes[0]]["inputs"]["seed"] == first  # the job's graph is not changed


def test_kinds_without_a_shipped_template_name_the_setting_to_set() -> None:
    for kind in set(TEMPLATE_KINDS) - set(SHIPPED_KINDS):
        assert shipped_template(kind) is None
        assert resolve_template(kind, None) is None
        with pytest.raises(InputError, match=f"settings set workflows.{kind} FILE"):
            plan_runs(job_id=1, kind=kind, items=1, inputs=["line1.txt"], template=None)


def test_a_users_template_is_used_with_the_shipped_default_prompt() -> None:
    mine = json.loads(json.dumps(dict(shipped_template("cg_remix").graph)))  # type: ignore[union-attr]
    mine["6"]["inputs"]["steps"] = 40
    template = resolve_template("cg_remix", mine)
    assert template is not None and template.source == "your setting workflows.cg_remix"
    assert template.default_prompt == shipped_template("cg_remix").default_prompt  # type: ignore[union-attr]
    run = plan_runs(job_id=2, kind="cg_remix", items=1, inputs=["x.png"], template=template)[0]
    assert _values(run.graph, "KSampler", "steps") == [40]
    voice = resolve_template("voice_synthesis", voice_template())
    assert voice is not None
    runs = plan_runs(
        job_id=2, kind="voice_synthesis", items=2, inputs=["l1.txt", "l2.txt"], template=voice
    )
    assert [r.graph["1"]["inputs"]["audio"] for r in runs] == ["l1.txt", "l2.txt"]


def test_a_job_without_inputs_cannot_run() -> None:
    with pytest.raises(InputError, match="no input image"):
        plan_runs(
            job_id=1,
            kind="cg_super_res",
            items=3,
            inputs=[],
            template=shipped_template("cg_super_res"),
        )


@pytest.mark.parametrize(
    ("kind", "graph", "message"),
    [
        ("cg_remix", {"nodes": [], "links": []}, "UI workflow"),
        ("cg_remix", [1, 2], "JSON object of nodes"),
        (
            "cg_super_res",
            {"1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}}},
            r'must hold "\{\{input_image\}\}"',
        ),
        (
            "voice_synthesis",
            {"1": {"class_type": "LoadAudio", "inputs": {"audio": "{{input_image}}"}}},
            r'must hold "\{\{input_file\}\}"',
        ),
        (
            "cg_super_res",
            {
                "1": {
                    "class_type": "LoadImage",
                    "inputs": {"image": "{{input_image}}", "x": "{{character}}"},
                }
            },
            r"unknown placeholder \{\{character\}\}",
        ),
        (
            "sprite_generation",
            {
                "1": {"class_type": "LoadImage", "inputs": {"image": "{{input_image}}"}},
                "2": {"class_type": "Note", "inputs": {"text": "seed {{seed}}"}},
            },
            "must be the whole value",
        ),
        (
            "comfyui_workflow",
            {"1": {"class_type": "LoadImage", "inputs": {}}},
            "runs its own graph",
        ),
    ],
)
def test_a_bad_template_is_refused_saying_why_and_where(
    kind: str, graph: Any, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        check_template(kind, graph)
    assert info.value.message.startswith(f"workflows.{kind}: ")


def test_placeholders_in_finds_them_inside_text() -> None:
    graph = {
        "1": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "a portrait, {{prompt}}", "clip": ["2", 1]},
        }
    }
    assert placeholders_in(graph) == {"prompt"}
    run = plan_runs(
        job_id=1,
        kind="cg_remix",
        items=1,
        inputs=["a.png"],
        template=resolve_template(
            "cg_remix",
            {
                **graph,
                "2": {
                    "class_type": "CheckpointLoaderSimple",
                    "inputs": {"ckpt_name": "m.safetensors"},
                },
                "3": {"class_type": "LoadImage", "inputs": {"image": "{{input_image}}"}},
            },
        ),
        task={"prompt": "smiling"},
    )[0]
    assert run.graph["1"]["inputs"]["text"] == "a portrait, smiling"
    assert run.graph["1"]["inputs"]["clip"] == ["2", 1]


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([], None),
        (["succeeded", "running"], None),
        (["succeeded", "pending"], None),
        (["succeeded", "succeeded"], "completed"),
        (["succeeded", "failed"], "failed"),
        (["failed", "cancelled"], "cancelled"),
    ],
)
def test_a_jobs_outcome_follows_from_its_runs(statuses: list[str], outcome: str | None) -> None:
    assert job_outcome(statuses) == outcome


def test_a_summarys_prompts_reach_the_runs_of_its_job() -> None:
    from comfyvn_gui.core.summary import parse_summary

    summaries = EXAMPLES.parent / "summaries"
    data = json.loads((summaries / "moonlit-academy.json").read_text("utf-8"))
    sprites = next(t for t in data["tasks"] if t["kind"] == "sprite_generation")
    sprites["prompts"] = [f"hana, pose {n}" for n in range(sprites["items"])]
    _, drafts = parse_summary(data)
    draft = next(d for d in drafts if d.workload.kind == "sprite_generation")
    assert draft.source["task"] == {"prompts": sprites["prompts"]}
    runs = plan_runs(
        job_id=5,
        kind=draft.workload.kind,
        items=draft.workload.items,
        inputs=sprites["assets"][:1],
        template=resolve_template("sprite_generation", None),
        task=draft.source["task"],
    )
    assert len(runs) == sprites["items"]
    texts = [_values(r.graph, "CLIPTextEncode", "text") for r in runs]
    assert [t for t in texts[3] if t.startswith("hana")] == ["hana, pose 3"]
