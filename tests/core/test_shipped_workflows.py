"""The shipped default workflow templates (resources/workflows): each graph is a ComfyUI
API-format graph of core nodes only, wired correctly, holding exactly the placeholders and
model files its manifest entry names."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "resources" / "workflows"
MANIFEST = WORKFLOWS_DIR / "templates.toml"

KINDS = ["cg_super_res", "cg_remix", "sprite_generation"]

# Core ComfyUI node classes the templates may use: class -> {required input name: type}.
# Checked against comfyanonymous/ComfyUI, INPUT_TYPES()["required"] of each class:
#   nodes.py: CLIPTextEncode, VAEDecode, VAEEncode, CheckpointLoaderSimple, KSampler,
#             SaveImage, LoadImage (all registered in nodes.py NODE_CLASS_MAPPINGS)
#   comfy_extras/nodes_upscale_model.py: UpscaleModelLoader, ImageUpscaleWithModel
#             (a built-in extra: listed in nodes.py init_builtin_extra_nodes)
# "COMBO" is a pick from a list (model files, input images, sampler and scheduler names).
CORE_NODES: dict[str, dict[str, str]] = {
    "LoadImage": {"image": "COMBO"},
    "CheckpointLoaderSimple": {"ckpt_name": "COMBO"},
    "CLIPTextEncode": {"text": "STRING", "clip": "CLIP"},
    "VAEEncode": {"pixels": "IMAGE", "vae": "VAE"},
    "VAEDecode": {"samples": "LATENT", "vae": "VAE"},
    "KSampler": {
        "model": "MODEL",
        "seed": "INT",
        "steps": "INT",
        "cfg": "FLOAT",
        "sampler_name": "COMBO",
        "scheduler": "COMBO",
        "positive": "CONDITIONING",
        "negative": "CONDITIONING",
        "latent_image": "LATENT",
        "denoise": "FLOAT",
    },
    "SaveImage": {"images": "IMAGE", "filename_prefix": "STRING"},
    "UpscaleModelLoader": {"model_name": "COMBO"},
    "ImageUpscaleWithModel": {"upscale_model": "UPSCALE_MODEL", "image": "IMAGE"},
}

# RETURN_TYPES of the same classes, same sources: a link [node, i] carries outputs[i].
CORE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "LoadImage": ("IMAGE", "MASK"),
    "CheckpointLoaderSimple": ("MODEL", "CLIP", "VAE"),
    "CLIPTextEncode": ("CONDITIONING",),
    "VAEEncode": ("LATENT",),
    "VAEDecode": ("IMAGE",),
    "KSampler": ("LATENT",),
    "SaveImage": (),
    "UpscaleModelLoader": ("UPSCALE_MODEL",),
    "ImageUpscaleWithModel": ("IMAGE",),
}

# Values that comfy/samplers.py lists in KSAMPLER_NAMES / SCHEDULER_NAMES (a subset).
SAMPLER_NAMES = {"euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde", "ddim"}
SCHEDULER_NAMES = {"normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform"}

# (class_type, input) -> ComfyUI model folder the named file is loaded from.
MODEL_INPUTS = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
}

# Where each placeholder must sit for dispatch's substitution to mean what it should.
PLACEHOLDER_SLOTS = {
    "input_image": ("LoadImage", "image"),
    "prompt": ("CLIPTextEncode", "text"),
    "seed": ("KSampler", "seed"),
    "output_prefix": ("SaveImage", "filename_prefix"),
}

PLACEHOLDER = re.compile(r"^\{\{([a-z_]+)\}\}$")


def load_manifest() -> dict[str, Any]:
    with MANIFEST.open("rb") as f:
        return tomllib.load(f)


def load_graph(kind: str) -> dict[str, Any]:
    entry = load_manifest()[kind]
    return json.loads((WORKFLOWS_DIR / entry["file"]).read_text(encoding="utf-8"))


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def placeholders_in(graph: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(placeholder name, node id, class_type, input name) for every whole-string placeholder."""
    found = []
    for node_id, node in graph.items():
        for name, value in node["inputs"].items():
            if isinstance(value, str) and (m := PLACEHOLDER.match(value)):
                found.append((m.group(1), node_id, node["class_type"], name))
    return found


def nodes_of(graph: dict[str, Any], class_type: str) -> list[dict[str, Any]]:
    return [n for n in graph.values() if n["class_type"] == class_type]


# -- the manifest -------------------------------------------------------------------------


def test_manifest_lists_the_three_kinds_and_every_json_file() -> None:
    manifest = load_manifest()
    assert sorted(manifest) == sorted(KINDS)
    files = {entry["file"] for entry in manifest.values()}
    assert files == {p.name for p in WORKFLOWS_DIR.glob("*.json")}
    for kind, entry in manifest.items():
        assert (WORKFLOWS_DIR / entry["file"]).is_file(), kind
        assert isinstance(entry["title"], str) and entry["title"].strip(), kind
        assert isinstance(entry["description"], str) and entry["description"].strip(), kind
        placeholders = entry["placeholders"]
        assert len(placeholders) == len(set(placeholders)), f"{kind}: duplicate placeholders"
        assert set(placeholders) <= set(PLACEHOLDER_SLOTS), kind
        assert isinstance(entry["models"], dict) and entry["models"], kind


def test_the_readme_documents_every_placeholder_and_model_file() -> None:
    readme = (WORKFLOWS_DIR / "README.md").read_text(encoding="utf-8")
    for name in PLACEHOLDER_SLOTS:
        assert f"{{{{{name}}}}}" in readme, name
    for entry in load_manifest().values():
        for files in entry["models"].values():
            for file in files:
                assert file in readme, file
    assert "settings set workflows.<kind>" in readme


# -- each graph ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_graph_is_api_format(kind: str) -> None:
    graph = load_graph(kind)
    assert isinstance(graph, dict) and graph
    assert "nodes" not in graph and "links" not in graph, "UI format, not API format"
    for node_id, node in graph.items():
        assert node_id.isdigit(), node_id
        assert isinstance(node.get("class_type"), str), node_id
        assert isinstance(node.get("inputs"), dict), node_id
        title = node.get("_meta", {}).get("title")
        assert isinstance(title, str) and title.strip(), f"node {node_id} has no _meta.title"


@pytest.mark.parametrize("kind", KINDS)
def test_graph_uses_only_core_nodes_with_their_required_inputs(kind: str) -> None:
    graph = load_graph(kind)
    for node_id, node in graph.items():
        cls = node["class_type"]
        assert cls in CORE_NODES, f"node {node_id}: {cls} is not a verified core ComfyUI node"
        missing = set(CORE_NODES[cls]) - set(node["inputs"])
        assert not missing, f"node {node_id} ({cls}) lacks required inputs {sorted(missing)}"
        unknown = set(node["inputs"]) - set(CORE_NODES[cls])
        assert not unknown, f"node {node_id} ({cls}) has unknown inputs {sorted(unknown)}"


@pytest.mark.parametrize("kind", KINDS)
def test_links_point_at_existing_nodes_and_carry_the_right_type(kind: str) -> None:
    graph = load_graph(kind)
    for node_id, node in graph.items():
        cls = node["class_type"]
        for name, value in node["inputs"].items():
            want = CORE_NODES[cls][name]
            if not is_link(value):
                assert not isinstance(value, list), f"node {node_id}.{name}: malformed link {value}"
                continue
            src_id, index = value
            assert src_id in graph, f"node {node_id}.{name} links to missing node {src_id}"
            assert src_id != node_id, f"node {node_id}.{name} links to itself"
            outputs = CORE_OUTPUTS[graph[src_id]["class_type"]]
            assert 0 <= index < len(outputs), f"node {node_id}.{name}: no output {index}"
            assert outputs[index] == want, (
                f"node {node_id}.{name} wants {want}, gets {outputs[index]} from {value}"
            )


@pytest.mark.parametrize("kind", KINDS)
def test_widget_values_have_the_right_types(kind: str) -> None:
    graph = load_graph(kind)
    for node_id, node in graph.items():
        cls = node["class_type"]
        for name, value in node["inputs"].items():
            want = CORE_NODES[cls][name]
            where = f"node {node_id} ({cls}).{name}"
            if want not in {"INT", "FLOAT", "STRING", "COMBO"}:
                assert is_link(value), f"{where} must be linked to a {want} output"
                continue
            if isinstance(value, str) and PLACEHOLDER.match(value):
                continue  # checked against its slot in test_placeholders_sit_where_dispatch_fills
            if want == "INT":
                assert isinstance(value, int) and not isinstance(value, bool), where
                assert value >= 0, where
            elif want == "FLOAT":
                assert isinstance(value, int | float) and not isinstance(value, bool), where
            else:
                assert isinstance(value, str) and value, where
    for sampler in nodes_of(graph, "KSampler"):
        inputs = sampler["inputs"]
        assert inputs["sampler_name"] in SAMPLER_NAMES
        assert inputs["scheduler"] in SCHEDULER_NAMES
        assert 1 <= inputs["steps"] <= 150
        assert 1.0 <= inputs["cfg"] <= 15.0
        # img2img: below 1.0 keeps the input's composition; at 1.0 it would be ignored.
        assert 0.0 < inputs["denoise"] < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_placeholders_match_the_manifest(kind: str) -> None:
    graph = load_graph(kind)
    found = [name for name, *_ in placeholders_in(graph)]
    assert sorted(set(found)) == sorted(load_manifest()[kind]["placeholders"])
    # No placeholder-looking text anywhere else (e.g. inside a longer string, misspelt).
    strings = [v for n in graph.values() for v in n["inputs"].values() if isinstance(v, str)]
    stray = [v for v in strings if ("{{" in v or "}}" in v) and not PLACEHOLDER.match(v)]
    assert not stray, f"malformed or embedded placeholders: {stray}"


@pytest.mark.parametrize("kind", KINDS)
def test_placeholders_sit_where_dispatch_fills_them(kind: str) -> None:
    for name, node_id, cls, input_name in placeholders_in(load_graph(kind)):
        assert (cls, input_name) == PLACEHOLDER_SLOTS[name], (
            f"{{{{{name}}}}} is in node {node_id} {cls}.{input_name}"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_model_files_match_the_manifest(kind: str) -> None:
    graph = load_graph(kind)
    in_graph: dict[str, set[str]] = {}
    for node in graph.values():
        for name, value in node["inputs"].items():
            folder = MODEL_INPUTS.get((node["class_type"], name))
            if folder is not None:
                in_graph.setdefault(folder, set()).add(value)
    manifest_models = load_manifest()[kind]["models"]
    assert {folder: set(files) for folder, files in manifest_models.items()} == in_graph


@pytest.mark.parametrize("kind", KINDS)
def test_default_prompt_is_given_exactly_where_the_prompt_is_filled(kind: str) -> None:
    entry = load_manifest()[kind]
    if "prompt" in entry["placeholders"]:
        prompt = entry.get("default_prompt")
        assert isinstance(prompt, str) and prompt.strip()
        assert "{{" not in prompt
    else:
        assert "default_prompt" not in entry


@pytest.mark.parametrize("kind", KINDS)
def test_exactly_one_save_image_with_the_output_prefix(kind: str) -> None:
    saves = nodes_of(load_graph(kind), "SaveImage")
    assert len(saves) == 1
    assert saves[0]["inputs"]["filename_prefix"] == "{{output_prefix}}"


@pytest.mark.parametrize("kind", KINDS)
def test_graph_has_no_cycles_and_feeds_the_save(kind: str) -> None:
    graph = load_graph(kind)
    (save_id,) = [i for i, n in graph.items() if n["class_type"] == "SaveImage"]
    # Walk back from the SaveImage: every node must contribute to it, and no cycle.
    reached: set[str] = set()
    stack: list[tuple[str, frozenset[str]]] = [(save_id, frozenset())]
    while stack:
        node_id, path = stack.pop()
        assert node_id not in path, f"cycle through node {node_id}"
        reached.add(node_id)
        for value in graph[node_id]["inputs"].values():
            if is_link(value):
                stack.append((value[0], path | {node_id}))
    assert reached == set(graph), f"nodes not feeding the output: {set(graph) - reached}"


def test_kinds_use_their_intended_nodes() -> None:
    assert {n["class_type"] for n in load_graph("cg_super_res").values()} == {
        "LoadImage",
        "UpscaleModelLoader",
        "ImageUpscaleWithModel",
        "SaveImage",
    }
    remix = nodes_of(load_graph("cg_remix"), "KSampler")
    assert len(remix) == 1 and remix[0]["inputs"]["seed"] == 42  # fixed: no seed placeholder
    sprite = nodes_of(load_graph("sprite_generation"), "KSampler")
    assert len(sprite) == 1 and sprite[0]["inputs"]["seed"] == "{{seed}}"
    for kind in ("cg_remix", "sprite_generation"):
        graph = load_graph(kind)
        (sampler,) = nodes_of(graph, "KSampler")
        # img2img: the latent comes from the input image through VAEEncode.
        src = graph[sampler["inputs"]["latent_image"][0]]
        assert src["class_type"] == "VAEEncode"
        assert graph[src["inputs"]["pixels"][0]]["class_type"] == "LoadImage"
        # The negative prompt is fixed text, the positive one the placeholder.
        assert graph[sampler["inputs"]["positive"][0]]["inputs"]["text"] == "{{prompt}}"
        negative = graph[sampler["inputs"]["negative"][0]]["inputs"]["text"]
        assert "{{" not in negative and negative.strip()


@pytest.mark.parametrize("kind", KINDS)
def test_filled_graph_has_no_placeholders_left(kind: str) -> None:
    """Filling the placeholders as dispatch does leaves a graph ComfyUI would take."""
    values: dict[str, Any] = {
        "input_image": "cg_001.png",
        "prompt": "a prompt",
        "seed": 123456789,
        "output_prefix": "comfyvn/job7/run1",
    }

    def fill(value: Any) -> Any:
        if isinstance(value, str) and (m := PLACEHOLDER.match(value)):
            return values[m.group(1)]
        return value

    graph = load_graph(kind)
    filled = {
        i: {**n, "inputs": {k: fill(v) for k, v in n["inputs"].items()}} for i, n in graph.items()
    }
    assert "{{" not in json.dumps(filled)
    for sampler in nodes_of(filled, "KSampler"):
        assert isinstance(sampler["inputs"]["seed"], int)
