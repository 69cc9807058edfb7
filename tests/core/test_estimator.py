"""The estimator: VRAM and A10G GPU-hours per workload kind, and reading ComfyUI graphs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from comfyvn_gui.core.catalog import WORKLOAD_KINDS, load_catalog, resources_dir
from comfyvn_gui.core.estimator import estimate, read_graph
from comfyvn_gui.core.workload import Requirements, Workload

WORKFLOWS = resources_dir() / "examples" / "workflows"
EXAMPLES = (
    "sd15_txt2img.json",
    "sdxl_txt2img.json",
    "flux_dev_txt2img.json",
    "sdxl_upscale_chain.json",
    "xtts_voice.json",
)
IMAGE_KINDS = ("sprite_generation", "cg_remix", "cg_super_res", "cg_bake")


def graph(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WORKFLOWS / name).read_text(encoding="utf-8"))
    return data


def run(kind: str = "comfyui_workflow", **fields: Any) -> Requirements:
    return estimate(Workload(kind=kind, **fields))


def of_graph(g: dict[str, Any], **fields: Any) -> Requirements:
    return run("comfyui_workflow", workflow=g, **fields)


def text(req: Requirements) -> str:
    return "\n".join(req.assumptions)


# --------------------------------------------------------------------------------------------
# The seed's example and the image kinds
# --------------------------------------------------------------------------------------------


def test_seed_example_cg_super_res_40_items_of_2048() -> None:
    req = run("cg_super_res", items=40, width=2048, height=2048)
    assert req.vram_gb == 12.0
    assert req.gpu_hours == pytest.approx(0.98, rel=0.10)
    assert req.source == "estimate"
    assert "About 88 s per 2048x2048 CG on the A10G" in text(req)
    assert "4x super-resolution" in text(req)
    assert "no width/height given" not in text(req)


def test_super_res_default_size_is_stated() -> None:
    req = run("cg_super_res")
    assert "Assumed 1920x1080 px per CG (no width/height given)." in req.assumptions
    given = run("cg_super_res", width=1920, height=1080)
    assert (given.vram_gb, given.gpu_hours) == (req.vram_gb, req.gpu_hours)
    assert not any("1920x1080 px per" in a for a in given.assumptions)


def test_super_res_vram_is_capped_for_huge_items() -> None:
    huge = run("cg_super_res", width=8192, height=8192)
    assert huge.vram_gb == 24.0
    assert "Capped the VRAM estimate at 24 GB" in text(huge)
    tiny = run("cg_super_res", width=64, height=64)
    assert tiny.vram_gb == 6.5  # the 6 GB base plus a sliver, rounded up to 0.5 GB
    assert "Capped" not in text(tiny)


def test_sprite_generation_defaults() -> None:
    req = run("sprite_generation")
    assert req.vram_gb == 8.0
    t = text(req)
    assert "Assumed 1024x1024 px per sprite (no width/height given)." in req.assumptions
    assert "SDXL-class" in t
    assert "30 sampler steps" in t
    assert "About 13 s per 1024x1024 sprite on the A10G" in t
    # a few seconds per megapixel per item: 1 item is well under a minute
    assert 5 / 3600 < req.gpu_hours < 30 / 3600


def test_asset_type_names_the_item() -> None:
    req = run("sprite_generation", asset_type="cg")
    assert "Assumed 1024x1024 px per CG (no width/height given)." in req.assumptions


def test_cg_remix_defaults() -> None:
    req = run("cg_remix")
    assert 9.5 <= req.vram_gb <= 11.0
    assert "Assumed 1920x1080 px per CG (no width/height given)." in req.assumptions
    assert "image-to-image" in text(req)


def test_cg_bake_needs_more_than_sprites() -> None:
    bake = run("cg_bake")
    assert bake.vram_gb == 16.0
    assert "Assumed 2048x2048 px per CG (no width/height given)." in bake.assumptions
    assert "80 step-equivalents" in text(bake)
    sprite_same_size = run("sprite_generation", width=2048, height=2048)
    assert bake.vram_gb > sprite_same_size.vram_gb
    assert bake.gpu_hours > 2 * sprite_same_size.gpu_hours


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_vram_and_time_grow_with_pixels(kind: str) -> None:
    small = run(kind, width=512, height=512)
    large = run(kind, width=2048, height=2048)
    assert small.vram_gb < large.vram_gb
    assert small.gpu_hours < large.gpu_hours
    assert not any("no width/height given" in a for a in small.assumptions + large.assumptions)


@pytest.mark.parametrize("kind", WORKLOAD_KINDS)
def test_time_is_linear_in_items(kind: str) -> None:
    one = run(kind, items=100)
    ten = run(kind, items=1000)
    assert ten.gpu_hours == pytest.approx(10 * one.gpu_hours, rel=2e-3)
    assert ten.vram_gb == one.vram_gb


@pytest.mark.parametrize("side", [300, 777, 1500, 2500])
@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_vram_is_rounded_up_to_half_gb(kind: str, side: int) -> None:
    v = run(kind, width=side, height=side).vram_gb
    assert v * 2 == int(v * 2)
    assert v >= 2.0


def test_tiny_work_is_never_zero_hours() -> None:
    req = run("translation", characters=1)
    assert req.gpu_hours == round(1 / 3600, 4)
    assert req.gpu_hours > 0


# --------------------------------------------------------------------------------------------
# Voice and translation
# --------------------------------------------------------------------------------------------


def test_voice_from_audio_seconds() -> None:
    req = run("voice_synthesis", items=10, audio_seconds=100.0)
    assert req.vram_gb == 6.0
    t = text(req)
    assert "XTTS-v2 / F5-TTS" in t
    assert "real-time factor 0.3" in t
    assert "WAV" not in t
    assert "no audio_seconds" not in t
    assert req.gpu_hours == round((100 * 0.3 + 10 * 0.5) / 3600, 4)


def test_voice_from_total_bytes_equals_audio_seconds() -> None:
    seconds = run("voice_synthesis", items=50, audio_seconds=2000.0)
    from_bytes = run("voice_synthesis", items=50, total_bytes=2000 * 88_200)
    assert (from_bytes.vram_gb, from_bytes.gpu_hours) == (seconds.vram_gb, seconds.gpu_hours)
    t = text(from_bytes)
    assert "16-bit 44.1 kHz mono WAV" in t
    assert "88,200 bytes per second" in t
    assert "176,400,000 bytes" in t


def test_voice_without_length_assumes_ten_seconds_per_line() -> None:
    req = run("voice_synthesis", items=6)
    assert "Assumed 10 s of speech per voice line" in text(req)
    assert req.gpu_hours == run("voice_synthesis", items=6, audio_seconds=60.0).gpu_hours


def test_translation_from_characters() -> None:
    req = run("translation", items=100, characters=150_000)
    assert req.vram_gb == 8.0
    t = text(req)
    assert "7-8B-parameter language model quantised to 4 bits" in t
    assert "150 characters per second" in t
    assert "1 byte" not in t and "200 characters per line" not in t
    assert req.gpu_hours == round((150_000 / 150 + 100 * 0.25) / 3600, 4)


def test_translation_from_total_bytes_equals_characters() -> None:
    chars = run("translation", items=100, characters=90_000)
    from_bytes = run("translation", items=100, total_bytes=90_000)
    assert from_bytes.gpu_hours == chars.gpu_hours
    assert "Took 1 byte as about 1 character" in text(from_bytes)
    assert "90,000 characters" in text(from_bytes)


def test_translation_default_characters_per_line() -> None:
    req = run("translation", items=50)
    assert "Assumed 200 characters per line" in text(req)
    assert req.gpu_hours == run("translation", items=50, characters=10_000).gpu_hours


def test_translation_of_voice_lines_ignores_audio_bytes() -> None:
    req = run("translation", asset_type="audio", items=50, total_bytes=500_000_000)
    assert "Assumed 200 characters per line" in text(req)
    assert "audio files" in text(req)
    assert req.gpu_hours == run("translation", asset_type="audio", items=50).gpu_hours
    with_chars = run("translation", asset_type="audio", items=50, characters=30_000)
    assert with_chars.gpu_hours > req.gpu_hours


# --------------------------------------------------------------------------------------------
# Explicit figures
# --------------------------------------------------------------------------------------------


def test_both_figures_explicit() -> None:
    req = run("cg_super_res", items=40, width=2048, height=2048, vram_gb=10.0, gpu_hours=2.5)
    assert (req.vram_gb, req.gpu_hours, req.source) == (10.0, 2.5, "explicit")
    assert req.assumptions == [
        "VRAM need given in the request: 10 GB.",
        "GPU time given in the request: 2.5 hours on the A10G.",
    ]


def test_vram_explicit_time_estimated() -> None:
    estimated = run("sprite_generation", items=20)
    req = run("sprite_generation", items=20, vram_gb=12.0)
    assert (req.vram_gb, req.source) == (12.0, "partly_explicit")
    assert req.gpu_hours == estimated.gpu_hours
    assert "VRAM need given in the request: 12 GB." in req.assumptions
    t = text(req)
    assert "GB of working memory per megapixel" not in t  # the VRAM heuristic is not used
    assert "About 13 s per 1024x1024 sprite" in t  # the time heuristic is


def test_time_explicit_vram_estimated() -> None:
    req = run("voice_synthesis", gpu_hours=0.0)
    assert (req.vram_gb, req.gpu_hours, req.source) == (6.0, 0.0, "partly_explicit")
    assert "GPU time given in the request: 0 hours on the A10G." in req.assumptions
    assert "real-time factor" not in text(req)
    assert "XTTS-v2 / F5-TTS" in text(req)


def test_explicit_figures_still_read_the_graph() -> None:
    req = of_graph(graph("sdxl_txt2img.json"), vram_gb=9.0, gpu_hours=1.0)
    assert req.source == "explicit"
    assert req.graph is not None and req.graph.width == 1024
    with pytest.raises(ValueError, match="API Format"):
        of_graph({"nodes": [], "links": []}, vram_gb=9.0, gpu_hours=1.0)


# --------------------------------------------------------------------------------------------
# ComfyUI workflows
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_graphs_are_api_format(name: str) -> None:
    g = graph(name)
    assert g and all(isinstance(k, str) for k in g)
    for node in g.values():
        assert isinstance(node["class_type"], str)
        assert isinstance(node["inputs"], dict)
    summary = read_graph(g)
    assert summary.nodes == len(g)
    assert summary.models


def test_workflow_without_graph_assumes_sdxl() -> None:
    req = run("comfyui_workflow")
    assert "No workflow given: assumed an SDXL text-to-image graph at 1024x1024 px" in text(req)
    assert req.vram_gb == of_graph(graph("sdxl_txt2img.json")).vram_gb
    assert req.graph is None
    voice = run("comfyui_workflow", asset_type="audio")
    assert voice.vram_gb == run("voice_synthesis").vram_gb
    assert "text-to-speech" in text(voice)


def test_graph_ordering_sd15_sdxl_flux() -> None:
    sd15 = of_graph(graph("sd15_txt2img.json"))
    sdxl = of_graph(graph("sdxl_txt2img.json"))
    flux = of_graph(graph("flux_dev_txt2img.json"))
    assert sd15.vram_gb < sdxl.vram_gb < flux.vram_gb
    assert sd15.gpu_hours < sdxl.gpu_hours < flux.gpu_hours
    assert flux.vram_gb > 24  # fp16 Flux dev does not fit a 24 GB card with its activations
    assert "fp8 or GGUF version" in text(flux)
    assert "fp8 or GGUF version" not in text(sdxl)


def test_upscale_chain_needs_more_than_plain_sdxl() -> None:
    plain = of_graph(graph("sdxl_txt2img.json"))
    chain = of_graph(graph("sdxl_upscale_chain.json"))
    assert chain.vram_gb > plain.vram_gb
    assert chain.gpu_hours > plain.gpu_hours
    t = text(chain)
    assert "4x model upscale to 4096x4096 px" in t
    assert "20 steps at 2048x2048 px" in t


def test_upscale_without_second_pass_still_needs_more() -> None:
    chain = graph("sdxl_upscale_chain.json")
    for nid in ("12", "13", "14", "15"):
        del chain[nid]
    chain["16"]["inputs"]["images"] = ["11", 0]
    plain = of_graph(graph("sdxl_txt2img.json"))
    upscaled = of_graph(chain)
    assert upscaled.vram_gb > plain.vram_gb
    assert upscaled.graph is not None and upscaled.graph.upscale_factor == 4.0


def test_summary_of_sd15_graph() -> None:
    s = read_graph(graph("sd15_txt2img.json"))
    assert (s.nodes, s.width, s.height, s.batch_size, s.steps) == (7, 512, 512, 1, 20)
    assert s.upscale_factor is None
    assert [(m.node, m.class_type, m.name, m.family) for m in s.models] == [
        ("4", "CheckpointLoaderSimple", "v1-5-pruned-emaonly.safetensors", "sd15")
    ]


def test_summary_of_sdxl_and_chain_graphs() -> None:
    s = read_graph(graph("sdxl_txt2img.json"))
    assert (s.width, s.height, s.steps) == (1024, 1024, 20)
    assert [m.family for m in s.models] == ["sdxl"]
    c = read_graph(graph("sdxl_upscale_chain.json"))
    assert (c.width, c.height) == (1024, 1024)
    assert c.upscale_factor == 2.0  # 4x model upscale, then scaled by 0.5
    assert {m.family for m in c.models} == {"sdxl", "upscale"}


def test_summary_of_flux_graph() -> None:
    s = read_graph(graph("flux_dev_txt2img.json"))
    assert (s.width, s.height, s.batch_size) == (1024, 1024, 1)
    assert s.steps == 20  # from the BasicScheduler behind SamplerCustomAdvanced
    by_family = {m.family: m for m in s.models}
    assert set(by_family) == {"flux", "clip", "vae"}
    assert by_family["flux"].name == "flux1-dev.safetensors"
    assert 23.0 <= by_family["flux"].vram_gb <= 24.5
    clips = sorted(m.vram_gb for m in s.models if m.family == "clip")
    assert clips[-1] == pytest.approx(9.5, abs=0.2)  # T5-XXL fp16


def test_tts_graph_matches_voice_synthesis() -> None:
    g = graph("xtts_voice.json")
    assert "custom node pack" in g["2"]["_meta"]["title"]
    req = of_graph(g, asset_type="audio", items=20, audio_seconds=300.0)
    voice = run("voice_synthesis", items=20, audio_seconds=300.0)
    assert req.graph is not None
    assert [m.family for m in req.graph.models] == ["tts"]
    assert (req.vram_gb, req.gpu_hours) == (voice.vram_gb, voice.gpu_hours)
    assert "XTTS_v2_Loader" in text(req)


def test_batch_size_multiplies_work() -> None:
    g = graph("sdxl_txt2img.json")
    one = of_graph(g)
    g["5"]["inputs"]["batch_size"] = 4
    four = of_graph(g)
    assert four.graph is not None and four.graph.batch_size == 4
    assert four.vram_gb > one.vram_gb
    assert four.gpu_hours == pytest.approx(4 * one.gpu_hours, rel=0.01)


def test_items_multiply_graph_runs() -> None:
    g = graph("sdxl_upscale_chain.json")
    assert of_graph(g, items=500).gpu_hours == pytest.approx(
        50 * of_graph(g, items=10).gpu_hours, rel=2e-3
    )


def test_prompt_wrapper_is_unwrapped() -> None:
    g = graph("flux_dev_txt2img.json")
    wrapped = {"prompt": g, "client_id": "comfyvn-gui", "extra_data": {}}
    assert read_graph(wrapped) == read_graph(g)
    assert of_graph(wrapped).model_dump() == of_graph(g).model_dump()


def test_a_node_named_prompt_is_not_a_wrapper() -> None:
    g = graph("sd15_txt2img.json")
    g["prompt"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    assert read_graph(g).nodes == 8


def test_ui_format_is_rejected() -> None:
    ui = {
        "last_node_id": 9,
        "last_link_id": 9,
        "nodes": [{"id": 3, "type": "KSampler", "widgets_values": [1, "fixed", 20]}],
        "links": [[1, 4, 0, 3, 0, "MODEL"]],
        "version": 0.4,
    }
    with pytest.raises(ValueError, match=r"Save \(API Format\)") as info:
        read_graph(ui)
    assert "Dev mode" in str(info.value)
    with pytest.raises(ValueError, match="API Format"):
        of_graph(ui)


def test_node_without_class_type_is_rejected_by_id() -> None:
    g = graph("sdxl_txt2img.json")
    g["12"] = {"inputs": {"images": ["8", 0]}}
    with pytest.raises(ValueError, match=r"node '12' has no class_type"):
        read_graph(g)
    g["12"] = "SaveImage"
    with pytest.raises(ValueError, match=r"node '12' is not a node object"):
        read_graph(g)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"images": ["99", 0]}, r"node '12' \(SaveImage\), input 'images': links to node '99'"),
        ({"images": ["8", 0, 1]}, r"node '12' \(SaveImage\), input 'images': .* is not a link"),
        ({"images": ["8", "0"]}, r"input 'images': .* is not a link"),
        ({"images": ["12", 0]}, r"cycle through node '12' \(SaveImage\)"),
    ],
)
def test_malformed_links_are_rejected(inputs: dict[str, Any], message: str) -> None:
    g = graph("sdxl_txt2img.json")
    g["12"] = {"class_type": "SaveImage", "inputs": inputs}
    with pytest.raises(ValueError, match=message):
        read_graph(g)


@pytest.mark.parametrize(
    ("node", "name", "value"),
    [("5", "width", -512), ("5", "height", "tall"), ("5", "batch_size", 0), ("3", "steps", 0.5)],
)
def test_bad_literal_values_are_rejected(node: str, name: str, value: Any) -> None:
    g = graph("sdxl_txt2img.json")
    g[node]["inputs"][name] = value
    with pytest.raises(ValueError, match=rf"node '{node}' \(\w+\), input '{name}'"):
        read_graph(g)


def test_empty_and_non_object_graphs_are_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        read_graph({})
    with pytest.raises(ValueError, match="JSON object"):
        read_graph([1, 2])  # type: ignore[arg-type]


def test_linked_width_falls_back_with_an_assumption() -> None:
    g = graph("sdxl_txt2img.json")
    g["20"] = {"class_type": "PrimitiveInt", "inputs": {"value": 1536}}
    g["5"]["inputs"]["width"] = ["20", 0]
    req = of_graph(g)
    assert req.graph is not None
    assert req.graph.width is None and req.graph.height == 1024
    assert (
        "Node '5' (EmptyLatentImage) takes its width from another node; assumed 1024x1024 px "
        "(SDXL's native size)." in req.assumptions
    )
    plain = of_graph(graph("sdxl_txt2img.json"))
    assert (req.vram_gb, req.gpu_hours) == (plain.vram_gb, plain.gpu_hours)

    sized = of_graph(g, width=2048, height=2048)
    assert "assumed 2048x1024 px (the size in the request)" in text(sized)
    assert sized.vram_gb > req.vram_gb


def test_linked_steps_fall_back_to_twenty() -> None:
    g = graph("flux_dev_txt2img.json")
    g["40"] = {"class_type": "PrimitiveInt", "inputs": {"value": 50}}
    g["17"]["inputs"]["steps"] = ["40", 0]
    req = of_graph(g)
    assert req.graph is not None and req.graph.steps is None
    assert "Node '17' (BasicScheduler) does not state its steps" in text(req)
    assert "assumed 20" in text(req)
    assert req.gpu_hours == of_graph(graph("flux_dev_txt2img.json")).gpu_hours


def test_graph_size_wins_over_request_size() -> None:
    req = of_graph(graph("sdxl_txt2img.json"), width=512, height=512)
    assert "The graph sets its own image size (1024x1024 px)" in text(req)
    assert req.vram_gb == of_graph(graph("sdxl_txt2img.json")).vram_gb


def test_unknown_custom_nodes_are_listed() -> None:
    g = graph("sdxl_txt2img.json")
    custom = ["FaceDetailer", "Image Save", "WAS_Text_Concat", "CR Prompt", "Seed (rgthree)"]
    custom.append("IPAdapterAdvanced")
    for i, class_type in enumerate(custom):
        g[str(100 + i)] = {"class_type": class_type, "inputs": {"image": ["8", 0]}}
    req = of_graph(g)
    assert req.graph is not None and req.graph.nodes == 7 + len(custom)
    expected = (
        "Ignored 6 node types the estimator does not know: FaceDetailer, Image Save, "
        "WAS_Text_Concat, CR Prompt, Seed (rgthree) and 1 more"
    )
    assert expected in text(req)
    plain = of_graph(graph("sdxl_txt2img.json"))
    assert "Ignored" not in text(plain)
    assert (req.vram_gb, req.gpu_hours) == (plain.vram_gb, plain.gpu_hours)


def test_unknown_checkpoint_assumes_sdxl_class() -> None:
    g = graph("sd15_txt2img.json")
    g["4"]["inputs"]["ckpt_name"] = "my_merge_final.safetensors"
    req = of_graph(g)
    assert req.graph is not None and req.graph.models[0].family == "unknown"
    assert "Could not tell which model family 'my_merge_final.safetensors' is" in text(req)
    assert "SDXL-class" in text(req)
    assert req.vram_gb > of_graph(graph("sd15_txt2img.json")).vram_gb


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("v1-5-pruned-emaonly.safetensors", "sd15"),
        ("v2-1_768-ema-pruned.safetensors", "sd2"),
        ("sd_xl_base_1.0.safetensors", "sdxl"),
        ("ponyDiffusionV6XL.safetensors", "sdxl"),
        ("sd3_medium_incl_clips_t5xxlfp8.safetensors", "sd3"),
        ("flux1-dev-fp8.safetensors", "flux"),
    ],
)
def test_checkpoint_family_from_name(name: str, family: str) -> None:
    g = graph("sd15_txt2img.json")
    g["4"]["inputs"]["ckpt_name"] = name
    assert read_graph(g).models[0].family == family


@pytest.mark.parametrize(
    ("loader", "inputs"),
    [
        ("UNETLoader", {"unet_name": "flux1-dev.safetensors", "weight_dtype": "fp8_e4m3fn"}),
        ("UNETLoader", {"unet_name": "flux1-dev-fp8.safetensors", "weight_dtype": "default"}),
        ("UnetLoaderGGUF", {"unet_name": "flux1-dev-Q8_0.gguf"}),
        ("UnetLoaderGGUF", {"unet_name": "flux1-dev-Q4_K_S.gguf"}),
    ],
)
def test_quantised_flux_needs_less_than_fp16(loader: str, inputs: dict[str, str]) -> None:
    fp16 = of_graph(graph("flux_dev_txt2img.json"))
    g = graph("flux_dev_txt2img.json")
    g["12"] = {"class_type": loader, "inputs": inputs}
    quantised = of_graph(g)
    assert quantised.vram_gb < fp16.vram_gb
    assert quantised.vram_gb <= 16.5
    assert quantised.graph is not None
    assert [m.family for m in quantised.graph.models if m.node == "12"] == ["flux"]


def test_gguf_q4_needs_less_than_q8() -> None:
    def with_unet(name: str) -> float:
        g = graph("flux_dev_txt2img.json")
        g["11"]["inputs"]["clip_name1"] = "t5xxl_fp8_e4m3fn.safetensors"
        g["12"] = {"class_type": "UnetLoaderGGUF", "inputs": {"unet_name": name}}
        return of_graph(g).vram_gb

    assert with_unet("flux1-dev-Q4_K_S.gguf") < with_unet("flux1-dev-Q8_0.gguf")


def test_upscale_factor_from_model_name() -> None:
    g = graph("sdxl_upscale_chain.json")
    g["10"]["inputs"]["model_name"] = "RealESRGAN_x2plus.pth"
    s = read_graph(g)
    assert s.upscale_factor == 1.0  # 2x model, then scaled by 0.5
    assert of_graph(g).vram_gb < of_graph(graph("sdxl_upscale_chain.json")).vram_gb


def test_controlnet_and_lora_add_vram() -> None:
    plain = of_graph(graph("sdxl_txt2img.json")).vram_gb
    g = graph("sdxl_txt2img.json")
    g["20"] = {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "vn_character_style_xl.safetensors",
            "strength_model": 0.8,
            "strength_clip": 0.8,
            "model": ["4", 0],
            "clip": ["4", 1],
        },
    }
    g["3"]["inputs"]["model"] = ["20", 0]
    g["21"] = {
        "class_type": "ControlNetLoader",
        "inputs": {"control_net_name": "controlnet-openpose-sdxl-1.0.safetensors"},
    }
    req = of_graph(g)
    assert req.vram_gb > plain
    assert req.graph is not None
    assert {m.family for m in req.graph.models} == {"sdxl", "lora", "controlnet"}
    assert "Ignored" not in text(req)


def test_catalog_reference_is_named_and_numbers_match() -> None:
    w = Workload(kind="cg_super_res", items=40, width=2048, height=2048)
    with_catalog = estimate(w, load_catalog())
    assert (with_catalog.vram_gb, with_catalog.gpu_hours) == (12.0, estimate(w).gpu_hours)
    assert any("reference GPU, the A10G (24 GB)" in a for a in with_catalog.assumptions)


@pytest.mark.parametrize("kind", WORKLOAD_KINDS)
def test_estimates_are_deterministic(kind: str) -> None:
    fields: dict[str, Any] = {"items": 7}
    if kind == "comfyui_workflow":
        fields["workflow"] = graph("sdxl_upscale_chain.json")
    first = run(kind, **fields)
    again = run(kind, **copy.deepcopy(fields))
    assert first.model_dump() == again.model_dump()
    assert first.assumptions  # every estimate says what it rests on


def test_example_folder_holds_only_the_documented_graphs() -> None:
    names = sorted(p.name for p in Path(WORKFLOWS).iterdir())
    assert names == sorted(EXAMPLES)


def test_other_kinds_read_an_attached_workflow_but_keep_their_heuristics() -> None:
    plain = run("voice_synthesis", items=5)
    req = run("voice_synthesis", items=5, workflow=graph("xtts_voice.json"))
    assert (req.vram_gb, req.gpu_hours) == (plain.vram_gb, plain.gpu_hours)
    assert req.graph is not None and [m.family for m in req.graph.models] == ["tts"]
    assert "Read the attached workflow (4 nodes)" in text(req)
    assert plain.graph is None
    with pytest.raises(ValueError, match="API Format"):
        run("cg_super_res", workflow={"nodes": [], "links": []})
