"""The ComfyUI client and a job's runs on a ComfyUI server (tests/fakes/comfyui.py runs the
graphs for real: uploads, validation, the queue, the WebSocket, Pillow images)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from comfyvn_gui.core.runs import resolve_template, shipped_template
from comfyvn_gui.providers.comfyui import (
    ComfyUIClient,
    ComfyUIError,
    OutputFile,
    RunEvent,
    safe_name,
)
from comfyvn_gui.providers.comfyui_runs import ExecutionReport, execute, upload_name
from tests.fakes.comfyui import ComfyUIServer, running_comfyui
from tests.fakes.http import arun

T = TypeVar("T")


def run(make: Callable[[ComfyUIClient], Coroutine[Any, Any, T]], server: ComfyUIServer) -> T:
    async def main() -> T:
        async with httpx.AsyncClient() as http:
            return await make(ComfyUIClient(server.url, http))

    return arun(main())


def png(path: Path, size: tuple[int, int], colour: tuple[int, int, int] = (200, 80, 40)) -> Path:
    Image.new("RGB", size, colour).save(path, "PNG")
    return path


def sent(server: ComfyUIServer, method: str, path: str) -> int:
    return sum(1 for m, p in server.requests if m == method and p.removeprefix("/api") == path)


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "outputs.json").read_text("utf-8"))


def execute_job(server: ComfyUIServer, **kw: Any) -> ExecutionReport:
    return run(lambda client: execute(client, **kw), server)


# -- a job's runs end to end -------------------------------------------------------------------


def test_super_res_job_uploads_runs_and_keeps_4x_outputs_with_their_hashes(tmp_path: Path) -> None:
    a = png(tmp_path / "bg forest.png", (64, 48))
    b = png(tmp_path / "bg_city.png", (40, 30), (10, 20, 30))
    out = tmp_path / "out"
    with running_comfyui() as server:
        report = execute_job(
            server,
            job_id=7,
            kind="cg_super_res",
            items=2,
            inputs=[a, b],
            out_dir=out,
            template=shipped_template("cg_super_res"),
        )
        assert set(server.uploads) == {upload_name(7, 0, a), upload_name(7, 1, b)}
    assert report.outcome == "completed"
    assert [r.status for r in report.runs] == ["succeeded", "succeeded"]
    sizes = []
    for record in report.outputs:
        path = out / record.file
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == record.sha256 and len(data) == record.bytes
        with Image.open(path) as img:
            sizes.append(img.size)
    assert sorted(sizes) == [(160, 120), (256, 192)]
    doc = manifest(out)
    assert doc["outcome"] == "completed"
    assert {o["file"] for o in doc["outputs"]} == {o.file for o in report.outputs}
    assert doc["inputs"][upload_name(7, 0, a)] == hashlib.sha256(a.read_bytes()).hexdigest()
    assert upload_name(7, 0, a) == "comfyvn-job7-0-bg_forest.png"


def test_sprites_differ_per_item_and_progress_is_heard(tmp_path: Path) -> None:
    ref = png(tmp_path / "hero.png", (64, 64))
    events: list[tuple[int, str]] = []

    def heard(index: int, event: RunEvent) -> None:
        events.append((index, event.type))

    with running_comfyui() as server:
        report = execute_job(
            server,
            job_id=3,
            kind="sprite_generation",
            items=3,
            inputs=[ref],
            out_dir=tmp_path / "out",
            template=shipped_template("sprite_generation"),
            task={"prompts": ["smiling", "angry", "sad"]},
            on_event=heard,
        )
        assert sent(server, "POST", "/upload/image") == 1  # one reference, uploaded once
    assert report.outcome == "completed" and len(report.outputs) == 3
    assert len({o.sha256 for o in report.outputs}) == 3
    for index in range(3):
        kinds = [k for i, k in events if i == index]
        assert "execution_start" in kinds and "progress" in kinds, kinds


def test_the_same_seed_gives_the_same_image(tmp_path: Path) -> None:
    src = png(tmp_path / "cg.png", (64, 64))
    with running_comfyui() as server:
        first = execute_job(
            server,
            job_id=1,
            kind="cg_remix",
            items=1,
            inputs=[src],
            out_dir=tmp_path / "a",
            template=shipped_template("cg_remix"),
        )
        second = execute_job(
            server,
            job_id=1,
            kind="cg_remix",
            items=1,
            inputs=[src],
            out_dir=tmp_path / "b",
            template=shipped_template("cg_remix"),
            task={"prompt": "another prompt"},
        )
        again = execute_job(
            server,
            job_id=1,
            kind="cg_remix",
            items=1,
            inputs=[src],
            out_dir=tmp_path / "c",
            template=shipped_template("cg_remix"),
        )
    assert first.outputs[0].sha256 == again.outputs[0].sha256
    assert first.outputs[0].sha256 != second.outputs[0].sha256


# -- preflight: nothing is sent when the server cannot run the job ------------------------------


def test_a_missing_model_is_named_before_anything_is_uploaded(tmp_path: Path) -> None:
    src = png(tmp_path / "cg.png", (32, 32))
    with running_comfyui(models={"checkpoints": ["sd_xl_base_1.0.safetensors"]}) as server:
        with pytest.raises(ComfyUIError) as info:
            execute_job(
                server,
                job_id=2,
                kind="cg_super_res",
                items=1,
                inputs=[src],
                out_dir=tmp_path / "out",
                template=shipped_template("cg_super_res"),
            )
        assert sent(server, "POST", "/upload/image") == 0 and sent(server, "POST", "/prompt") == 0
    assert info.value.code == "missing"
    assert (
        "RealESRGAN_x4plus.pth" in info.value.message
        and "models/upscale_models" in info.value.message
    )
    assert not (tmp_path / "out").exists()


def test_a_node_class_not_installed_is_named(tmp_path: Path) -> None:
    graph = dict(shipped_template("cg_super_res").graph)  # type: ignore[union-attr]
    graph["9"] = {"class_type": "FaceDetailerPlus", "inputs": {"image": ["1", 0]}}
    template = resolve_template("cg_super_res", graph)
    src = png(tmp_path / "cg.png", (32, 32))
    with running_comfyui() as server:
        with pytest.raises(ComfyUIError, match=r"node class FaceDetailerPlus \(node 9\)") as info:
            execute_job(
                server,
                job_id=2,
                kind="cg_super_res",
                items=1,
                inputs=[src],
                out_dir=tmp_path / "out",
                template=template,
            )
        assert sent(server, "POST", "/upload/image") == 0
    assert info.value.code == "missing"


def test_a_refused_graph_names_the_node_and_the_input() -> None:
    graph = dict(shipped_template("cg_remix").graph)  # type: ignore[union-attr]
    graph = json.loads(json.dumps(graph).replace("{{input_image}}", "never-uploaded.png"))
    graph = json.loads(
        json.dumps(graph).replace("{{prompt}}", "x").replace("{{output_prefix}}", "p")
    )
    with running_comfyui() as server:
        with pytest.raises(ComfyUIError) as info:
            run(lambda client: client.queue_prompt(graph), server)
    assert info.value.code == "rejected"
    assert info.value.node == "2" and info.value.input == "image"
    assert "node 2 (LoadImage), input image" in info.value.message


# -- failures and cancellation -----------------------------------------------------------------


def test_a_run_that_fails_keeps_the_good_outputs_and_says_which_failed(tmp_path: Path) -> None:
    good = png(tmp_path / "good.png", (32, 32))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with running_comfyui() as server:
        report = execute_job(
            server,
            job_id=5,
            kind="cg_super_res",
            items=2,
            inputs=[good, bad],
            out_dir=tmp_path / "out",
            template=shipped_template("cg_super_res"),
        )
    assert report.outcome == "failed"
    assert [r.status for r in report.runs] == ["succeeded", "failed"]
    assert "LoadImage" in (report.runs[1].error or "")
    doc = manifest(tmp_path / "out")
    assert doc["outcome"] == "failed" and [o["run"] for o in doc["outputs"]] == [0]
    assert (tmp_path / "out" / doc["outputs"][0]["file"]).is_file()


def test_a_node_that_raises_fails_its_run_with_the_servers_reason(tmp_path: Path) -> None:
    src = png(tmp_path / "cg.png", (32, 32))
    with running_comfyui(
        fail_node_class="ImageUpscaleWithModel", fail_message="CUDA out of memory"
    ) as server:
        report = execute_job(
            server,
            job_id=5,
            kind="cg_super_res",
            items=1,
            inputs=[src],
            out_dir=tmp_path / "out",
            template=shipped_template("cg_super_res"),
        )
    assert report.outcome == "failed"
    error = report.runs[0].error or ""
    assert "node 3 (ImageUpscaleWithModel) failed" in error and "CUDA out of memory" in error


def test_cancelling_interrupts_the_running_prompt_and_lists_what_finished(tmp_path: Path) -> None:
    src = png(tmp_path / "hero.png", (32, 32))
    started: list[str] = []

    async def scenario(client: ComfyUIClient) -> None:
        def heard(index: int, event: RunEvent) -> None:
            if event.type == "execution_start":
                started.append(str(event.data["prompt_id"]))

        task = asyncio.create_task(
            execute(
                client,
                job_id=9,
                kind="sprite_generation",
                items=3,
                inputs=[src],
                out_dir=tmp_path / "out",
                template=shipped_template("sprite_generation"),
                on_event=heard,
            )
        )
        deadline = time.monotonic() + 10
        while len(started) < 2:  # the first run done, the second running
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with running_comfyui(node_delay_s=0.15) as server:
        run(scenario, server)
        entry = server.wait_until_done(started[1])
        queue = httpx.get(f"{server.url}/queue").json()
        assert queue["queue_running"] == [] and queue["queue_pending"] == []
        assert entry["status"]["status_str"] == "error"  # interrupted
        assert sent(server, "POST", "/prompt") == 2  # the third run was never queued
    doc = manifest(tmp_path / "out")
    assert doc["outcome"] == "cancelled"
    assert [r["status"] for r in doc["runs"]] == ["succeeded", "cancelled", "pending"]
    assert [o["run"] for o in doc["outputs"]] == [0]


def test_a_server_that_dies_mid_run_fails_the_job_saying_so(tmp_path: Path) -> None:
    src = png(tmp_path / "hero.png", (32, 32))
    server = ComfyUIServer(node_delay_s=0.2).start()
    try:

        def heard(index: int, event: RunEvent) -> None:
            if event.type == "execution_start":
                server.kill()

        report = execute_job(
            server,
            job_id=4,
            kind="sprite_generation",
            items=2,
            inputs=[src],
            out_dir=tmp_path / "out",
            template=shipped_template("sprite_generation"),
            on_event=heard,
        )
    finally:
        server.stop()
    assert report.outcome == "failed"
    assert all(r.status == "failed" for r in report.runs)
    assert "cannot reach ComfyUI" in (report.runs[0].error or "")


def test_without_the_websocket_the_history_is_polled(tmp_path: Path) -> None:
    graph = json.loads(
        json.dumps(dict(shipped_template("cg_super_res").graph)).replace(  # type: ignore[union-attr]
            "{{output_prefix}}", "comfyvn/job1/run0"
        )
    )

    async def scenario(client: ComfyUIClient) -> Any:
        buf = io.BytesIO()
        Image.new("RGB", (20, 10)).save(buf, "PNG")
        name = await client.upload_image("in.png", buf.getvalue())
        prompt_id = await client.queue_prompt(
            json.loads(json.dumps(graph).replace("{{input_image}}", name))
        )
        return await client.wait(prompt_id, use_websocket=False, deadline=time.monotonic() + 20)

    with running_comfyui() as server:
        state = run(scenario, server)
        assert not any(p.startswith("/ws") for _, p in server.requests)
    assert state.status == "succeeded"
    assert [o.subfolder for o in state.outputs] == ["comfyvn/job1"]


# -- outputs are never trusted ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../evil.png", "a/b.png", "..", "", ".hidden", "x\\y.png", "a\nb"]
)
def test_a_servers_file_name_is_never_a_path(name: str) -> None:
    with pytest.raises(ComfyUIError, match="not a plain file name"):
        safe_name(name)


def test_an_output_over_the_cap_is_not_kept(tmp_path: Path) -> None:
    src = png(tmp_path / "cg.png", (64, 64))
    with running_comfyui() as server:
        report = execute_job(
            server,
            job_id=1,
            kind="cg_super_res",
            items=1,
            inputs=[src],
            out_dir=tmp_path / "out",
            template=shipped_template("cg_super_res"),
        )
        out = report.outputs[0]
        produced = OutputFile(
            out.node, Path(out.file).name.replace(" (1)", ""), "comfyvn/job1", "output"
        )
        small = tmp_path / "small"
        small.mkdir()
        with pytest.raises(ComfyUIError, match="over 0 MB") as info:
            run(lambda client: client.download(produced, small, max_bytes=1000), server)
    assert info.value.code == "bad_output"
    assert list(small.iterdir()) == []  # no partial file left


@pytest.mark.filterwarnings("default")  # (as the app runs: a warning is not an error)
def test_an_image_over_the_pixel_limit_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import comfyvn_gui.providers.comfyui_runs as runs

    # a 4x of 64x64 is 65,536 pixels: between 1x and 2x the limit, where Pillow only warns
    monkeypatch.setattr(runs, "MAX_IMAGE_PIXELS", 40_000)
    # The check sets Pillow's own limit from it: put Pillow's back too when the test ends (it
    # leaked 40,000 into every later test of the process: the icon tests' 512x512 PNG failed).
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    src = png(tmp_path / "cg.png", (64, 64))
    with running_comfyui() as server:
        report = execute_job(
            server,
            job_id=1,
            kind="cg_super_res",
            items=1,
            inputs=[src],
            out_dir=tmp_path / "out",
            template=shipped_template("cg_super_res"),
        )
    assert report.outcome == "failed" and report.outputs == []
    assert "is not an image this app can read" in (report.runs[0].error or "")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["outputs.json"]


class _DropFirst:
    """A TCP relay on 127.0.0.1 to ``to`` that resets its first connection at once and passes
    the others through: a connection lost under a read."""

    def __init__(self, to: int) -> None:
        import socket
        import threading

        self.to = to
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import struct
        import threading

        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == 1:  # reset (RST), not a clean close
                a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                a.close()
                continue
            b = socket.create_connection(("127.0.0.1", self.to), 5)
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: Any, dst: Any) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def test_a_read_that_lost_its_connection_is_asked_once_more_a_write_is_not() -> None:
    with running_comfyui() as server:
        relay = _DropFirst(server.port)
        try:

            async def read() -> Any:
                async with httpx.AsyncClient() as http:
                    return await ComfyUIClient(f"http://127.0.0.1:{relay.port}", http).object_info()

            assert "LoadImage" in arun(read())  # the first connection was reset
            assert relay.accepted == 2
        finally:
            relay.close()
        relay = _DropFirst(server.port)
        try:

            async def write() -> Any:
                async with httpx.AsyncClient() as http:
                    client = ComfyUIClient(f"http://127.0.0.1:{relay.port}", http)
                    return await client.upload_image("x.png", b"\x89PNG")

            with pytest.raises(ComfyUIError, match="cannot reach ComfyUI"):
                arun(write())
            assert relay.accepted == 1  # an upload is not sent twice
        finally:
            relay.close()
