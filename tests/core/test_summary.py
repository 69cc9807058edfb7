"""The importer summary (docs/import-summary.md): the shipped samples, each rule, each error.

Pure: parse_summary reads JSON data and gives drafts, nothing else is touched.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.advisor import requirements_for
from comfyvn_gui.core.catalog import load_catalog, resources_dir
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.summary import (
    OPEN_LICENSES,
    Asset,
    ImportSummary,
    JobDraft,
    is_open_source,
    parse_summary,
)

SAMPLES = resources_dir() / "examples" / "summaries"
WORKFLOWS = resources_dir() / "examples" / "workflows"
DOC = Path(__file__).resolve().parents[2] / "docs" / "import-summary.md"
CATALOG = load_catalog()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return data


def drafts_of(data: Any) -> list[JobDraft]:
    return parse_summary(data)[1]


def base(**changes: Any) -> dict[str, Any]:
    """A small valid summary: two CGs, a sprite, a voice folder, a script; one task."""
    data: dict[str, Any] = {
        "format": "comfyvn.import-summary",
        "version": 1,
        "project": {"name": "Test VN", "tags": []},
        "assets": [
            {"id": "cg/a.png", "type": "cg", "width": 1920, "height": 1080, "license": "MIT"},
            {"id": "cg/b.png", "type": "cg", "width": 2048, "height": 2048, "license": "MIT"},
            {"id": "sprites/s.png", "type": "sprite", "width": 1024, "height": 1536},
            {"id": "voice/", "type": "audio", "count": 10, "audio_seconds": 60.0},
            {"id": "script.txt", "type": "text", "characters": 1000, "license": "CC0-1.0"},
        ],
        "tasks": [{"kind": "cg_super_res", "select": {"type": "cg"}}],
    }
    data.update(changes)
    return data


def error_of(data: Any) -> InputError:
    with pytest.raises(InputError) as exc:
        parse_summary(data)
    return exc.value


def assert_error(data: Any, field: str, *phrases: str) -> InputError:
    err = error_of(data)
    assert field in err.fields, (err.fields, err.message)
    assert f"{field}:" in err.message or field in ("format",), err.message
    for phrase in phrases:
        assert phrase in err.message, err.message
    return err


# --------------------------------------------------------------------------------------------
# The shipped samples
# --------------------------------------------------------------------------------------------


def test_moonlit_academy_sample() -> None:
    summary, drafts = parse_summary(load("moonlit-academy.json"))
    assert summary.project.name == "Moonlit Academy"
    assert [d.workload.kind for d in drafts] == [
        "cg_super_res",
        "sprite_generation",
        "voice_synthesis",
        "comfyui_workflow",
        "translation",
    ]
    assert all(d.workload.residency == ["eu"] for d in drafts)
    assert all(d.workload.title == d.title for d in drafts)
    assert all(d.source["project"] == "Moonlit Academy" for d in drafts)

    res, sprites, voice, workflow, translation = drafts

    assert res.title == "Moonlit Academy — CG super-res (5 CGs)"
    w = res.workload
    assert (w.asset_type, w.items, w.width, w.height) == ("cg", 5, 2048, 2048)
    assert (w.latency, w.budget_usd) == ("batch", 2.0)  # latency from defaults, own budget
    assert w.total_bytes == 6815744 + 7340032 + 3145728 + 3670016 + 7077888
    assert w.audio_seconds is None and w.characters is None
    assert w.licenses.non_open_source is True
    assert w.licenses.notes == (
        "3 of 5 assets are not open source: cg/bg_rooftop_dusk.png (proprietary), "
        "cg/ev_01_fireworks.png (proprietary), cg/ev_02_confession.png (no licence)"
    )
    assert res.source["unit"] == "tasks[0]"
    assert res.source["asset_count"] == 5
    assert res.source["assets"][0] == "cg/bg_school_night.png"

    assert sprites.title == "Moonlit Academy — Hana: 8 new expressions"
    w = sprites.workload
    assert (w.asset_type, w.items, w.width, w.height) == ("sprite", 8, 1024, 1536)
    assert (w.latency, w.budget_usd) == ("interactive", 5.0)  # own latency, default budget
    assert w.licenses.non_open_source is False and w.licenses.notes is None

    assert voice.title == "Moonlit Academy — Voice synthesis (420 lines, 52.5 min of audio)"
    w = voice.workload
    assert (w.asset_type, w.items, w.width, w.height) == ("audio", 420, None, None)
    assert w.audio_seconds == 3150.0
    assert w.characters == 7380 + 5600 + 5950
    assert w.licenses.notes == (
        "320 of 420 assets are not open source: voice/hana/ (180 files, All rights reserved), "
        "voice/ren/ (140 files, All rights reserved)"
    )

    graph = json.loads((WORKFLOWS / "sdxl_upscale_chain.json").read_text(encoding="utf-8"))
    assert workflow.title == (
        "Moonlit Academy — ComfyUI: Festival CGs (SDXL + 4x upscale) (24 images)"
    )
    w = workflow.workload
    assert w.workflow == graph
    assert (w.items, w.cached_graphs, w.asset_type) == (24, True, "cg")
    assert w.licenses.notes == (
        "1 of 1 asset is not open source: cg/ev_01_fireworks.png (proprietary)"
    )
    assert workflow.source == {
        "project": "Moonlit Academy",
        "unit": "workflows[0]",
        "assets": ["cg/ev_01_fireworks.png"],
        "asset_count": 1,
        "inputs": [{"id": "cg/ev_01_fireworks.png"}],
    }

    assert translation.title == "Moonlit Academy — Script translation ja -> en, fr (2 languages)"
    w = translation.workload
    assert (w.asset_type, w.items, w.characters) == ("text", 3120 * 2, 48210 * 2)
    assert w.licenses.non_open_source is True
    assert translation.source["unit"] == "translations[0]"


def test_indie_demo_sample() -> None:
    drafts = drafts_of(load("indie-demo.json"))
    assert [d.workload.kind for d in drafts] == ["cg_remix", "translation"]
    remix, translation = drafts
    assert remix.title == "Paper Lanterns (demo) — Night versions of the backgrounds"
    assert (remix.workload.items, remix.workload.width, remix.workload.height) == (3, 1920, 1080)
    assert translation.title == (
        "Paper Lanterns (demo) — Demo script translation en -> ja (1 language)"
    )
    assert (translation.workload.characters, translation.workload.items) == (12400, 410)
    assert translation.workload.budget_usd == 1.0
    for d in drafts:
        assert d.workload.residency is None  # no residency tag: the advisor's setting applies
        assert d.workload.latency is None  # no defaults: the advisor's setting applies
        assert d.workload.licenses.non_open_source is False
        assert d.workload.licenses.notes is None


def test_voice_pack_uk_sample() -> None:
    assert (SAMPLES / "voice-pack-uk.json").stat().st_size < 30_000
    drafts = drafts_of(load("voice-pack-uk.json"))
    assert [d.workload.kind for d in drafts] == ["voice_synthesis", "voice_synthesis"]
    ch1, rest = drafts
    assert ch1.title == "Harbour Lights: English voice pack — Chapter 1 voice lines"
    assert (ch1.workload.items, ch1.workload.audio_seconds) == (200, 1480.0)
    assert ch1.workload.budget_usd == 10.0
    assert ch1.source["asset_count"] == 3
    assert rest.title == (
        "Harbour Lights: English voice pack — Voice synthesis (442 lines, 54.5 min of audio)"
    )
    assert rest.workload.items == 442
    assert rest.workload.audio_seconds == pytest.approx(3268.3)
    assert rest.workload.budget_usd == 15.0
    assert rest.workload.licenses.notes is not None
    assert rest.workload.licenses.notes.startswith("332 of 442 assets are not open source: ")
    assert rest.workload.licenses.notes.endswith(" and 1 more")
    assert all(d.workload.residency == ["uk"] for d in drafts)
    assert all(d.workload.licenses.non_open_source for d in drafts)


@pytest.mark.parametrize("name", ["moonlit-academy.json", "indie-demo.json", "voice-pack-uk.json"])
def test_every_sample_draft_can_be_estimated(name: str) -> None:
    for draft in drafts_of(load(name)):
        needs = requirements_for(draft.workload, CATALOG)
        assert needs.vram_gb > 0 and needs.gpu_hours > 0


def test_the_documented_example_parses() -> None:
    block = re.search(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    drafts = drafts_of(json.loads(block.group(1)))
    assert [d.title for d in drafts] == [
        "Moonlit Academy — CG super-res (4 CGs)",
        "Moonlit Academy — Hana: 8 new expressions",
        "Moonlit Academy — Voice synthesis (280 lines, 36.2 min of audio)",
        "Moonlit Academy — ComfyUI: Festival CG (24 images)",
        "Moonlit Academy — Script translation ja -> en, fr (2 languages)",
    ]
    assert drafts[0].workload.licenses.notes == (
        "2 of 4 assets are not open source: cg/bg_rooftop_dusk.png (proprietary), "
        "cg/ev_02_confession.png (no licence)"
    )


def test_parsing_leaves_the_input_alone() -> None:
    data = load("moonlit-academy.json")
    before = copy.deepcopy(data)
    summary, _ = parse_summary(data)
    assert data == before
    assert summary.model_dump(mode="json", exclude_defaults=True)["project"] == data["project"]


# --------------------------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------------------------


def test_schema_describes_every_field() -> None:
    schema = ImportSummary.model_json_schema()
    assert schema["title"] == "ComfyVN import summary"
    assert schema["properties"]["format"]["const"] == "comfyvn.import-summary"
    assert schema["properties"]["version"]["const"] == 1
    assert set(schema["required"]) == {"format", "version", "project"}
    assert schema["additionalProperties"] is False
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    for model, definition in schema["$defs"].items():
        assert definition.get("description"), model
        assert definition["additionalProperties"] is False, model
        for name, prop in definition["properties"].items():
            assert prop.get("description"), f"{model}.{name}"
    assert schema["$defs"]["Asset"]["dependentRequired"] == {
        "width": ["height"],
        "height": ["width"],
    }
    task = schema["$defs"]["Task"]["properties"]
    prompt = task["prompt"]["anyOf"][0]
    assert (prompt["type"], prompt["minLength"], prompt["maxLength"]) == ("string", 1, 2000)
    prompts = task["prompts"]["anyOf"][0]
    assert (prompts["minItems"], prompts["maxItems"]) == (1, 10_000)
    assert prompts["items"]["maxLength"] == 2000
    assert task["vary_seed"]["anyOf"][0]["type"] == "boolean"
    workflow_seed = schema["$defs"]["WorkflowJob"]["properties"]["vary_seed"]
    assert workflow_seed["anyOf"][0]["type"] == "boolean"
    assert "vary_seed" not in schema["$defs"]["WorkflowJob"].get("required", [])
    languages = schema["$defs"]["TranslationJob"]["properties"]["target_languages"]
    assert languages["minItems"] == 1
    assert "pattern" in languages["items"]


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "residency"),
    [
        ([], None),
        (["client:acme", "nsfw:false"], None),
        (["residency:eu"], ["eu"]),
        (["Residency:EU", "residency:uk", "residency:eu"], ["eu", "uk"]),
        (["residency: asia "], ["asia"]),
        (["residency:any"], []),
        (["RESIDENCY:Any", "client:acme"], []),
    ],
)
def test_residency_from_tags(tags: list[str], residency: list[str] | None) -> None:
    data = base()
    data["project"]["tags"] = tags
    assert [d.workload.residency for d in drafts_of(data)] == [residency]


def test_defaults_apply_unless_a_unit_overrides_them() -> None:
    data = base(
        defaults={"latency": "interactive", "budget_usd": 3.5},
        tasks=[
            {"kind": "cg_super_res", "assets": ["cg/a.png"]},
            {"kind": "cg_remix", "assets": ["cg/b.png"], "latency": "batch", "budget_usd": 0},
        ],
        workflows=[{"name": "w", "workflow": {"1": {"class_type": "X", "inputs": {}}}}],
        translations=[
            {"name": "UI", "source_language": "en", "target_languages": ["de"], "characters": 5}
        ],
    )
    got = [(d.workload.latency, d.workload.budget_usd) for d in drafts_of(data)]
    assert got == [("interactive", 3.5), ("batch", 0.0), ("interactive", 3.5), ("interactive", 3.5)]


def test_translation_characters_are_multiplied_by_target_languages() -> None:
    data = base(
        tasks=[],
        translations=[
            {
                "name": "Script",
                "source_language": "ja",
                "target_languages": ["en", "fr", "de"],
                "characters": 20000,
                "lines": 500,
            },
            {
                "name": "UI strings",
                "source_language": "en",
                "target_languages": ["ja", "ko", "zh-Hans", "pt-BR", "es", "it"],
                "assets": ["script.txt"],
            },
        ],
    )
    script, ui = drafts_of(data)
    assert script.title == "Test VN — Script translation ja -> en, fr, de (3 languages)"
    assert (script.workload.characters, script.workload.items) == (60000, 1500)
    assert (ui.workload.characters, ui.workload.items) == (6000, 6)
    assert ui.title == (
        "Test VN — UI strings translation en -> ja, ko, zh-Hans, pt-BR and 2 more (6 languages)"
    )


def test_explicit_characters_win_over_the_assets() -> None:
    data = base(
        tasks=[],
        translations=[
            {
                "name": "Script",
                "source_language": "en",
                "target_languages": ["ja"],
                "characters": 42,
                "assets": ["script.txt"],
            }
        ],
    )
    assert drafts_of(data)[0].workload.characters == 42


@pytest.mark.parametrize(
    "graph",
    [
        json.loads((WORKFLOWS / "sdxl_txt2img.json").read_text(encoding="utf-8")),
        {
            "prompt": json.loads((WORKFLOWS / "xtts_voice.json").read_text(encoding="utf-8")),
            "client_id": "comfyvn-importer",
        },
    ],
    ids=["api-format", "prompt-wrapper"],
)
def test_the_graph_reaches_the_workload_unchanged(graph: dict[str, Any]) -> None:
    data = base(tasks=[], workflows=[{"name": "g", "workflow": graph, "asset_type": "audio"}])
    (draft,) = drafts_of(data)
    assert draft.workload.workflow == graph
    assert draft.title == "Test VN — ComfyUI: g (1 audio clip)"
    requirements_for(draft.workload, CATALOG)  # the estimator reads it as given


def test_a_task_that_makes_new_assets_gives_items() -> None:
    data = base(
        tasks=[
            {"kind": "sprite_generation", "items": 12, "width": 1024, "height": 1536},
            {"kind": "sprite_generation", "items": 3, "asset_type": "cg", "assets": []},
            {"kind": "voice_synthesis", "items": 40, "select": {"type": "audio", "prefix": "x/"}},
        ]
    )
    new, cgs, voice = drafts_of(data)
    assert new.title == "Test VN — Sprite generation (12 sprites)"
    assert (new.workload.items, new.workload.width, new.workload.height) == (12, 1024, 1536)
    assert new.workload.asset_type == "sprite"
    assert new.source == {"project": "Test VN", "unit": "tasks[0]", "assets": [], "asset_count": 0}
    assert new.workload.licenses.non_open_source is False
    assert (cgs.title, cgs.workload.asset_type) == ("Test VN — Sprite generation (3 CGs)", "cg")
    assert voice.title == "Test VN — Voice synthesis (40 lines)"


def test_task_sizes_come_from_the_largest_image_unless_given() -> None:
    data = base(
        tasks=[
            {"kind": "cg_bake", "assets": ["cg/a.png", "cg/b.png"]},
            {"kind": "cg_bake", "assets": ["cg/b.png"], "width": 640, "height": 480},
            {"kind": "cg_super_res", "select": {"type": "cg", "prefix": "cg/a"}},
        ]
    )
    sizes = [(d.workload.width, d.workload.height) for d in drafts_of(data)]
    assert sizes == [(2048, 2048), (640, 480), (1920, 1080)]


GRAPH = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}


@pytest.mark.parametrize(
    ("task", "carried"),
    [
        (
            {"kind": "cg_super_res", "select": {"type": "cg"}, "prompt": "  sharper, 4k  "},
            {"prompt": "sharper, 4k"},
        ),
        ({"kind": "cg_remix", "assets": ["cg/a.png"], "prompt": "rain"}, {"prompt": "rain"}),
        (
            {"kind": "sprite_generation", "items": 2, "prompt": "Hana", "vary_seed": False},
            {"prompt": "Hana", "vary_seed": False},
        ),
        (
            {"kind": "sprite_generation", "items": 2, "prompts": ["smiling", " angry\n"]},
            {"prompts": ["smiling", "angry"]},
        ),
        (
            {"kind": "sprite_generation", "assets": ["sprites/s.png"], "prompts": ["one"]},
            {"prompts": ["one"]},
        ),
        ({"kind": "sprite_generation", "items": 3, "vary_seed": True}, {"vary_seed": True}),
        ({"kind": "sprite_generation", "items": 1, "prompt": "x" * 2000}, {"prompt": "x" * 2000}),
    ],
    ids=[
        "super-res",
        "remix",
        "sprite-prompt",
        "sprite-prompts",
        "prompts-by-assets",
        "seed",
        "2000",
    ],
)
def test_task_prompts_and_seed_reach_the_draft_source(
    task: dict[str, Any], carried: dict[str, Any]
) -> None:
    (draft,) = drafts_of(base(tasks=[task]))
    assert draft.source["task"] == carried
    assert draft.source["unit"] == "tasks[0]"


@pytest.mark.parametrize("vary_seed", [False, True])
def test_workflow_vary_seed_reaches_the_draft_source(vary_seed: bool) -> None:
    unit = {"name": "w", "workflow": GRAPH, "items": 4, "vary_seed": vary_seed}
    (draft,) = drafts_of(base(tasks=[], workflows=[unit]))
    assert draft.source == {
        "project": "Test VN",
        "unit": "workflows[0]",
        "assets": [],
        "asset_count": 0,
        "task": {"vary_seed": vary_seed},
    }
    assert draft.workload.items == 4


def test_units_without_prompts_or_seed_have_no_task_in_their_source() -> None:
    data = base(
        tasks=[
            {"kind": "sprite_generation", "items": 2},
            {"kind": "cg_remix", "select": {"type": "cg"}, "prompt": None, "vary_seed": None},
        ],
        workflows=[{"name": "w", "workflow": GRAPH, "items": 2}],
        translations=[
            {"name": "UI", "source_language": "en", "target_languages": ["de"], "characters": 5}
        ],
    )
    drafts = drafts_of(data)
    assert len(drafts) == 4
    assert all("task" not in d.source for d in drafts)
    assert all(
        set(d.source) - {"inputs"} == {"project", "unit", "assets", "asset_count"} for d in drafts
    )


def test_prompts_do_not_change_the_estimate() -> None:
    plain = {"kind": "sprite_generation", "items": 2, "width": 1024, "height": 1024}
    prompted = {**plain, "prompts": ["a", "b"], "vary_seed": False}
    first, second = drafts_of(base(tasks=[plain, prompted]))
    assert first.workload == second.workload.model_copy(update={"title": first.workload.title})


def test_the_documented_prompt_example_parses() -> None:
    doc = DOC.read_text(encoding="utf-8")
    section = doc.split("**Prompts and seeds.**")[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    sprites, remix, workflow = drafts_of(json.loads(block.group(1)))
    assert sprites.source["task"]["prompts"][0] == "Hana, smiling"
    assert len(sprites.source["task"]["prompts"]) == sprites.workload.items == 8
    assert remix.source["task"] == {"prompt": "the same scene in heavy rain, visual novel CG"}
    assert workflow.source["task"] == {"vary_seed": False}


def test_source_lists_at_most_fifty_assets() -> None:
    assets = [{"id": f"cg/{i:03}.png", "type": "cg", "license": "CC0-1.0"} for i in range(60)]
    (draft,) = drafts_of(base(assets=assets))
    assert draft.source["asset_count"] == 60
    assert draft.source["assets"] == [f"cg/{i:03}.png" for i in range(50)]
    # every input is kept for dispatch, not only the 50 shown
    assert draft.source["inputs"] == [{"id": f"cg/{i:03}.png"} for i in range(60)]
    assert draft.title == "Test VN — CG super-res (60 CGs)"
    assert draft.workload.items == 60


def test_licence_notes_name_five_and_count_the_rest() -> None:
    assets = [{"id": f"cg/{i}.png", "type": "cg", "license": "proprietary"} for i in range(8)]
    assets += [{"id": "cg/open.png", "type": "cg", "license": "cc-by-4.0"}]
    (draft,) = drafts_of(base(assets=assets))
    assert draft.workload.licenses.notes == (
        "8 of 9 assets are not open source: cg/0.png (proprietary), cg/1.png (proprietary), "
        "cg/2.png (proprietary), cg/3.png (proprietary), cg/4.png (proprietary) and 3 more"
    )


@pytest.mark.parametrize(
    ("fields", "open_source", "why"),
    [
        ({"license": "CC0-1.0"}, True, None),
        ({"license": " apache-2.0 "}, True, None),
        ({"license": "Public-Domain"}, True, None),
        ({"license": "CC-BY-NC-4.0"}, False, "CC-BY-NC-4.0"),
        ({"license": "All rights reserved"}, False, "All rights reserved"),
        ({}, False, "no licence"),
        ({"open_source": True}, True, None),
        ({"license": "Studio licence v2", "open_source": True}, True, None),
        ({"license": "MIT", "open_source": False}, False, "MIT, marked not open source"),
        ({"open_source": False}, False, "marked not open source"),
    ],
)
def test_open_source_from_the_flag_or_the_licence(
    fields: dict[str, Any], open_source: bool, why: str | None
) -> None:
    asset = {"id": "cg/x.png", "type": "cg", **fields}
    assert is_open_source(Asset.model_validate(asset)) is open_source
    (draft,) = drafts_of(base(assets=[asset]))
    assert draft.workload.licenses.non_open_source is not open_source
    expected = None if why is None else f"1 of 1 asset is not open source: cg/x.png ({why})"
    assert draft.workload.licenses.notes == expected


def test_the_open_licence_list_is_the_documented_one() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert "cc-by-4.0" in OPEN_LICENSES and "proprietary" not in OPEN_LICENSES
    section = doc.split("**Open source or not.**")[1].split("Anything else")[0]
    assert {m.lower() for m in re.findall(r"`([^`]+)`", section)} - {"open_source", "license"} == (
        set(OPEN_LICENSES)
    )


# --------------------------------------------------------------------------------------------
# Errors: each names its dotted path in the message and in fields
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        ([], "got an array"),
        ("summary", "got a string"),
        (None, "got null"),
    ],
)
def test_a_summary_is_an_object(data: Any, phrase: str) -> None:
    err = error_of(data)
    assert err.fields == ["format"]
    assert phrase in err.message and "comfyvn.import-summary" in err.message


def test_format_is_required_and_exact() -> None:
    data = base()
    del data["format"]
    assert_error(data, "format", "required field is missing")
    assert_error(base(format="comfyvn.advice-request"), "format", "not a ComfyVN import summary")


@pytest.mark.parametrize("version", [2, 0, "1", 1.5, True])
def test_other_versions_say_which_are_supported(version: Any) -> None:
    err = assert_error(base(version=version), "version", "not supported", "reads version 1")
    assert err.fields == ["version"]


def test_version_is_required() -> None:
    data = base()
    del data["version"]
    assert_error(data, "version", "required field is missing")


def test_unknown_fields_are_errors() -> None:
    assert_error(base(extras=1), "extras", "unknown field")
    data = base()
    data["assets"][0]["licence"] = "MIT"
    assert_error(data, "assets.0.licence", "unknown field")


def test_bad_values_name_their_path() -> None:
    data = base()
    data["assets"][3]["width"] = -5
    data["assets"][3]["height"] = 10
    err = error_of(data)
    assert "assets.3.width: Input should be greater than or equal to 1" in err.message
    assert "assets.3.width" in err.fields


def test_unknown_kinds_are_errors() -> None:
    data = base()
    data["tasks"].append({"kind": "upscale", "items": 1})
    assert_error(data, "tasks.1.kind", "'cg_super_res'")


def test_no_work_is_an_error() -> None:
    err = error_of(base(tasks=[]))
    assert err.message.startswith("the summary has no work in it")
    assert err.fields == ["tasks", "workflows", "translations"]


def test_project_name_is_required_and_not_blank() -> None:
    assert_error(base(project={"tags": []}), "project.name", "required field is missing")
    assert_error(base(project={"name": "   "}), "project.name", "blank")


def test_duplicate_asset_ids_are_errors() -> None:
    data = base()
    data["assets"].append({"id": "cg/a.png", "type": "cg"})
    assert_error(data, "assets.5.id", "'cg/a.png' is already the id of assets.0")


@pytest.mark.parametrize(
    ("asset_id", "phrase"),
    [
        ("/home/me/cg/a.png", "absolute path"),
        ("C:/vn/cg/a.png", "absolute path"),
        ("cg\\a.png", "backslashes"),
        ("../other/a.png", "outside the project folder"),
        (" cg/a.png", "white space"),
        ("", "at least 1 character"),
    ],
)
def test_asset_ids_are_relative_paths(asset_id: str, phrase: str) -> None:
    data = base()
    data["assets"].append({"id": asset_id, "type": "cg"})
    assert_error(data, "assets.5.id", phrase)


def test_width_and_height_come_together() -> None:
    data = base()
    del data["assets"][1]["height"]
    assert_error(data, "assets.1.height", "give both width and height")
    data = base(tasks=[{"kind": "sprite_generation", "items": 2, "height": 512}])
    assert_error(data, "tasks.0.width", "give both width and height")
    data = base(tasks=[], workflows=[{"name": "w", "workflow": {"1": {}}, "width": 512}])
    assert_error(data, "workflows.0.height", "give both width and height")


def test_unknown_asset_references_are_errors() -> None:
    data = base()
    data["tasks"] = [
        {"kind": "cg_remix", "assets": ["cg/a.png"]},
        {"kind": "cg_remix", "items": 1},
        {"kind": "cg_remix", "assets": ["cg/a.png", "zzz/nope.png"]},
    ]
    assert_error(data, "tasks.2.assets.1", "unknown asset 'zzz/nope.png'", "entry of assets")
    data["tasks"][2]["assets"][1] = "cg/b.pgn"
    assert_error(data, "tasks.2.assets.1", "did you mean 'cg/b.png'?")


def test_an_asset_listed_twice_is_an_error() -> None:
    data = base(tasks=[{"kind": "cg_remix", "assets": ["cg/a.png", "cg/b.png", "cg/a.png"]}])
    assert_error(data, "tasks.0.assets.2", "listed twice", "tasks.0.assets.0")


def test_a_task_with_nothing_to_do_is_an_error() -> None:
    assert_error(base(tasks=[{"kind": "cg_bake"}]), "tasks.0.assets", "gives no items")
    assert_error(base(tasks=[{"kind": "cg_bake", "assets": []}]), "tasks.0.assets", "no items")
    data = base(tasks=[{"kind": "cg_bake", "select": {"type": "cg", "prefix": "cgx/"}}])
    assert_error(data, "tasks.0.select", "selects no assets", "'cgx/'")


def test_assets_and_select_exclude_each_other() -> None:
    data = base(tasks=[{"kind": "cg_bake", "assets": ["cg/a.png"], "select": {"type": "cg"}}])
    assert_error(data, "tasks.0.select", "not both")


def test_mixed_asset_types_are_an_error() -> None:
    data = base(tasks=[{"kind": "cg_remix", "assets": ["cg/a.png", "sprites/s.png", "cg/b.png"]}])
    assert_error(data, "tasks.0.assets", "mix types (2 cg, 1 sprite)", "one task per type")


def test_the_kind_must_fit_the_asset_type() -> None:
    data = base(tasks=[{"kind": "voice_synthesis", "select": {"type": "cg"}}])
    assert_error(data, "tasks.0.select", "works on audio assets, not cg")
    data = base(tasks=[{"kind": "cg_remix", "assets": ["cg/a.png"], "asset_type": "sprite"}])
    assert_error(data, "tasks.0.asset_type", "assets are cg")
    data = base(tasks=[{"kind": "cg_super_res", "items": 4, "asset_type": "audio"}])
    assert_error(data, "tasks.0.asset_type", "works on cg or sprite assets, not audio")
    data = base(tasks=[{"kind": "voice_synthesis", "items": 4, "select": {"type": "text"}}])
    assert_error(data, "tasks.0.select", "works on audio assets, not text")


@pytest.mark.parametrize(
    ("tags", "field", "phrase"),
    [
        (["client:x", "residency:EU west"], "project.tags.1", "does not name a residency zone"),
        (["residency:"], "project.tags.0", "does not name a residency zone"),
        (["residency:eu", "residency:any"], "project.tags.1", "contradicts"),
    ],
)
def test_bad_residency_tags_are_errors(tags: list[str], field: str, phrase: str) -> None:
    data = base()
    data["project"]["tags"] = tags
    assert_error(data, field, phrase)


def test_translation_errors() -> None:
    unit = {"name": "Script", "source_language": "ja", "target_languages": ["en"]}
    assert_error(base(tasks=[], translations=[unit]), "translations.0.characters", "required")
    no_chars = {**unit, "assets": ["cg/a.png"]}
    err = assert_error(base(tasks=[], translations=[no_chars]), "translations.0.characters")
    assert "none of the assets" in err.message
    assert "translations.0.assets" in err.fields  # cg is not something to translate
    same = {**unit, "characters": 10, "target_languages": ["en", "JA"]}
    assert_error(base(tasks=[], translations=[same]), "translations.0.target_languages.1")
    twice = {**unit, "characters": 10, "target_languages": ["en", "fr", "en"]}
    assert_error(base(tasks=[], translations=[twice]), "translations.0.target_languages.2")
    none = {**unit, "characters": 10, "target_languages": []}
    assert_error(base(tasks=[], translations=[none]), "translations.0.target_languages")
    bad = {**unit, "characters": 10, "source_language": "Japanese!"}
    assert_error(base(tasks=[], translations=[bad]), "translations.0.source_language", "BCP 47")


def test_a_bad_graph_names_the_workflow() -> None:
    data = base(tasks=[], workflows=[{"name": "w", "workflow": {}}])
    assert_error(data, "workflows.0.workflow", "the workflow graph is empty")
    del data["workflows"][0]["workflow"]
    assert_error(data, "workflows.0.workflow", "required field is missing")


@pytest.mark.parametrize(
    ("task", "field", "message"),
    [
        (
            {"kind": "voice_synthesis", "select": {"type": "audio"}, "prompt": "calm"},
            "tasks.0.prompt",
            "Voice synthesis takes no prompt (only sprite_generation, cg_remix and cg_super_res "
            "tasks do): remove prompt",
        ),
        (
            {"kind": "cg_bake", "select": {"type": "cg"}, "prompt": "calm"},
            "tasks.0.prompt",
            "CG bake takes no prompt (only sprite_generation, cg_remix and cg_super_res tasks "
            "do): remove prompt",
        ),
        (
            {"kind": "cg_remix", "select": {"type": "cg"}, "prompts": ["a", "b"]},
            "tasks.0.prompts",
            "CG remix takes no prompts (only sprite_generation tasks take one prompt per item): "
            "use prompt (one prompt for every image) instead",
        ),
        (
            {"kind": "cg_super_res", "select": {"type": "cg"}, "prompts": ["a", "b"]},
            "tasks.0.prompts",
            "CG super-res takes no prompts (only sprite_generation tasks take one prompt per "
            "item): use prompt (one prompt for every image) instead",
        ),
        (
            {"kind": "comfyui_workflow", "items": 2, "prompts": ["a", "b"]},
            "tasks.0.prompts",
            "ComfyUI workflow takes no prompts (only sprite_generation tasks take one prompt per "
            "item): remove prompts",
        ),
        (
            {"kind": "cg_super_res", "select": {"type": "cg"}, "vary_seed": False},
            "tasks.0.vary_seed",
            "CG super-res takes no vary_seed (only sprite_generation tasks and workflows vary "
            "the seed per item): remove vary_seed",
        ),
        (
            {"kind": "comfyui_workflow", "items": 2, "vary_seed": True},
            "tasks.0.vary_seed",
            "ComfyUI workflow takes no vary_seed (only sprite_generation tasks and workflows "
            "vary the seed per item): remove vary_seed (or queue the graph under workflows, "
            "where vary_seed is allowed)",
        ),
        (
            {"kind": "sprite_generation", "items": 2, "prompt": "Hana", "prompts": ["a", "b"]},
            "tasks.0.prompts",
            "give either prompt (the same prompt for every item) or prompts (one per item), "
            "not both",
        ),
    ],
    ids=[
        "prompt-voice",
        "prompt-bake",
        "prompts-remix",
        "prompts-super-res",
        "prompts-workflow-task",
        "seed-super-res",
        "seed-workflow-task",
        "prompt-and-prompts",
    ],
)
def test_task_prompt_fields_only_on_the_kinds_that_use_them(
    task: dict[str, Any], field: str, message: str
) -> None:
    err = error_of(base(tasks=[task]))
    assert err.fields == [field]
    assert err.message == f"{field}: {message}"


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"kind": "cg_remix", "select": {"type": "cg"}, "prompt": " \n\t "}, "tasks.0.prompt"),
        ({"kind": "cg_remix", "select": {"type": "cg"}, "prompt": ""}, "tasks.0.prompt"),
        (
            {"kind": "sprite_generation", "items": 3, "prompts": ["a", "b", "  "]},
            "tasks.0.prompts.2",
        ),
    ],
    ids=["white-space", "empty", "one-of-prompts"],
)
def test_a_blank_prompt_is_refused(task: dict[str, Any], field: str) -> None:
    err = error_of(base(tasks=[task]))
    assert err.fields == [field]
    assert err.message == (
        f"{field}: is blank: write the prompt's text, or leave prompt / prompts out to use the "
        "workflow's default prompt"
    )


def test_a_prompt_is_at_most_2000_characters() -> None:
    task = {"kind": "cg_remix", "select": {"type": "cg"}, "prompt": "x" * 2001}
    err = error_of(base(tasks=[task]))
    assert err.message == (
        "tasks.0.prompt: is 2,001 characters long: a prompt is at most 2,000 characters, "
        "so shorten it"
    )
    task = {"kind": "sprite_generation", "items": 2, "prompts": ["ok", "y" * 2500]}
    assert_error(base(tasks=[task]), "tasks.0.prompts.1", "is 2,500 characters long")
    task = {"kind": "cg_remix", "select": {"type": "cg"}, "prompt": f"  {'x' * 2000}  "}
    assert drafts_of(base(tasks=[task]))[0].source["task"] == {"prompt": "x" * 2000}


def test_prompts_must_match_the_number_of_items() -> None:
    prompts = [f"expression {n}" for n in range(7)]
    err = error_of(base(tasks=[{"kind": "sprite_generation", "items": 8, "prompts": prompts}]))
    assert err.fields == ["tasks.0.prompts"]
    assert err.message == (
        "tasks.0.prompts: lists 7 prompts but items is 8: give exactly one prompt per item "
        "(list 8 prompts, or set items to 7)"
    )
    data = base(tasks=[{"kind": "sprite_generation", "items": 1, "prompts": ["a", "b"]}])
    assert error_of(data).message == (
        "tasks.0.prompts: lists 2 prompts but items is 1: give exactly one prompt per item "
        "(list 1 prompt, or set items to 2)"
    )


def test_prompts_counted_against_the_assets_when_items_is_not_given() -> None:
    data = base()
    data["assets"].append({"id": "sprites/t/", "type": "sprite", "count": 3})
    data["tasks"] = [{"kind": "sprite_generation", "select": {"type": "sprite"}, "prompts": ["a"]}]
    err = error_of(data)
    assert err.message == (
        "tasks.0.prompts: lists 1 prompt but the task has 4 items (from its assets): give "
        "exactly one prompt per item, in the order of the assets"
    )
    data["tasks"][0]["prompts"] = ["a", "b", "c", "d"]
    assert drafts_of(data)[0].source["task"] == {"prompts": ["a", "b", "c", "d"]}


def test_prompts_hold_one_to_ten_thousand_entries() -> None:
    task: dict[str, Any] = {"kind": "sprite_generation", "items": 20_000, "prompts": []}
    err = error_of(base(tasks=[task]))
    assert err.message == (
        "tasks.0.prompts: lists no prompts: give one prompt per item, or leave prompts out to "
        "use the default prompt"
    )
    task["prompts"] = ["p"] * 10_001
    assert error_of(base(tasks=[task])).message == (
        "tasks.0.prompts: lists 10,001 prompts: at most 10,000 are allowed; split the task "
        "into several, or use prompt (one prompt for every item) instead"
    )
    task["prompts"] = ["p"] * 10_000
    assert error_of(base(tasks=[task])).message == (
        "tasks.0.prompts: lists 10,000 prompts but items is 20,000: a task lists at most "
        "10,000 prompts, so split it into tasks of at most 10,000 items, or use prompt (one "
        "prompt for every item) instead"
    )
    task["items"] = 10_000
    assert len(drafts_of(base(tasks=[task]))[0].source["task"]["prompts"]) == 10_000


def test_prompt_problems_are_reported_with_the_others() -> None:
    data = base(
        tasks=[
            {"kind": "voice_synthesis", "select": {"type": "audio"}, "prompt": "calm"},
            {"kind": "cg_remix", "assets": ["cg/nope.png"]},
            {"kind": "sprite_generation", "items": 2, "prompts": ["a"]},
        ],
        workflows=[{"name": "w", "workflow": GRAPH, "vary_seed": "sometimes"}],
    )
    err = error_of(data)
    assert err.fields == ["workflows.0.vary_seed"]  # the document is checked first
    del data["workflows"]
    err = error_of(data)
    assert err.fields == ["tasks.0.prompt", "tasks.1.assets.0", "tasks.2.prompts"]
    assert "tasks.2.prompts: lists 1 prompt but items is 2" in err.message


def test_a_bad_derived_figure_names_the_unit() -> None:
    data = base()
    data["assets"] = [
        {"id": "cg/a.png", "type": "cg", "bytes": 6 * 10**13},
        {"id": "cg/b.png", "type": "cg", "bytes": 6 * 10**13},
    ]
    assert_error(data, "tasks.0.total_bytes", "less than or equal to")


# --------------------------------------------------------------------------------------------
# All or nothing
# --------------------------------------------------------------------------------------------


def test_a_bad_last_unit_fails_the_whole_summary() -> None:
    data = load("moonlit-academy.json")
    data["translations"].append(
        {"name": "UI", "source_language": "ja", "target_languages": ["en"], "assets": ["ui.po"]}
    )
    result: tuple[ImportSummary, list[JobDraft]] | None = None
    with pytest.raises(InputError) as exc:
        result = parse_summary(data)
    assert result is None
    assert exc.value.fields == ["translations.1.assets.0"]


def test_every_problem_is_reported_at_once() -> None:
    data = base()
    data["assets"].append({"id": "cg/a.png", "type": "cg"})
    data["tasks"] = [
        {"kind": "cg_remix", "assets": ["cg/nope.png"]},
        {"kind": "cg_bake"},
        {"kind": "cg_super_res", "select": {"type": "cg"}},
        {"kind": "voice_synthesis", "select": {"type": "text"}},
    ]
    err = error_of(data)
    assert err.fields == ["assets.5.id", "tasks.0.assets.0", "tasks.1.assets", "tasks.3.select"]
    for shown in err.fields[:3]:
        assert f"{shown}:" in err.message
    assert "tasks.3.select" not in err.message and err.message.endswith("(and 1 more)")
