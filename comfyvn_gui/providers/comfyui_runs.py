"""A job's runs on one ComfyUI server: preflight, upload, queue, follow, download.

:func:`execute` is what every ComfyUI target shares (local, LAN, an SSH tunnel, a machine the
app rented): in DESIGN's order (the consent gate is the caller's) it

1. plans the runs (``core.runs.plan_runs``) with the names the inputs will have on the server
   (``comfyvn-job<id>-<n>-<file name>``, so jobs never overwrite each other's inputs);
2. preflights them: every node class installed, every model file of the template in its
   folder; a miss is a :class:`ComfyUIError` ``missing`` naming each, before any upload;
3. uploads each input once (its sha256 recorded);
4. queues the runs one at a time and follows each; a run that fails does not stop the next
   (the job is ``failed`` with the good outputs kept);
5. downloads each run's outputs into ``out_dir`` as they come (size-capped, names checked),
   checks that images decode (Pillow, with its decompression-bomb limit), and writes
   ``outputs.json`` (file, sha256, bytes, run, node) after every run, so what finished is listed
   even if the rest is cancelled.

Cancelling the task cancels the prompt on the server (dequeued or interrupted) before the
cancellation goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from comfyvn_gui.core.runs import RunPlan, WorkflowTemplate, job_outcome, plan_runs

from .comfyui import ComfyUIClient, ComfyUIError, RunEvent, RunState

__all__ = [
    "ExecutionReport",
    "OutputRecord",
    "RunRecord",
    "check_image",
    "execute",
    "planned",
    "resumed_report",
    "upload_name",
    "write_manifest",
]

#: Pillow refuses images with more pixels than this (a decompression bomb).
MAX_IMAGE_PIXELS = 256 * 2**20
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class OutputRecord:
    file: str  # relative to the output folder
    sha256: str
    bytes: int
    run: int
    node: str


@dataclass
class RunRecord:
    index: int
    status: str  # pending | running | succeeded | failed | cancelled
    prompt_id: str | None = None
    input: str | None = None
    error: str | None = None
    outputs: list[OutputRecord] = field(default_factory=list)


@dataclass
class ExecutionReport:
    """What happened to each run, the inputs' hashes and the job's outcome."""

    runs: list[RunRecord]
    inputs: dict[str, str]  # uploaded name -> sha256
    outcome: str | None
    billed_s: float | None = None  # seconds the provider bills for (serverless), when known

    @property
    def outputs(self) -> list[OutputRecord]:
        return [o for r in self.runs for o in r.outputs]


def upload_name(job_id: int, index: int, path: Path) -> str:
    """The name an input has on the server: the job, its place, and its own name made safe."""
    stem = _UNSAFE.sub("_", path.stem).strip("._")[:80] or "input"
    suffix = _UNSAFE.sub("", path.suffix)[:10]
    return f"comfyvn-job{job_id}-{index}-{stem}{suffix}"


def check_image(path: Path) -> None:
    """A downloaded image decodes and has at most :data:`MAX_IMAGE_PIXELS` pixels (a
    decompression bomb is refused before it is decoded); else it is removed and refused."""
    if path.suffix.lower() not in _IMAGE_SUFFIXES:
        return
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # (Pillow itself refuses over twice this)
    try:
        with Image.open(path) as img:  # (reads the header only)
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"{img.width}x{img.height} pixels, over the {MAX_IMAGE_PIXELS:,} allowed"
                )
            img.verify()
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        path.unlink(missing_ok=True)
        raise ComfyUIError(
            "bad_output", f"the output {path.name} is not an image this app can read ({exc})"
        ) from None


def write_manifest(out_dir: Path, report: ExecutionReport) -> None:
    doc = {
        "format": "comfyvn-gui.outputs",
        "schema_version": 1,
        "outcome": report.outcome,
        "inputs": report.inputs,
        "outputs": [asdict(o) for o in report.outputs],
        "runs": [
            {"index": r.index, "status": r.status, "prompt_id": r.prompt_id, "error": r.error}
            for r in report.runs
        ],
    }
    tmp = out_dir / ".outputs.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    os.replace(tmp, out_dir / "outputs.json")


def planned(
    job_id: int,
    kind: str,
    items: int,
    inputs: Sequence[Path],
    template: WorkflowTemplate | None,
    workflow: Mapping[str, Any] | None,
    task: Mapping[str, Any] | None,
) -> tuple[list[str], list[RunPlan]]:
    """The inputs' names on the server (:func:`upload_name`) and the job's runs planned with
    them (``core.runs.plan_runs``)."""
    names = [upload_name(job_id, i, p) for i, p in enumerate(inputs)]
    return names, plan_runs(
        job_id=job_id,
        kind=kind,
        items=items,
        inputs=names,
        template=template,
        workflow=workflow,
        task=task,
    )


def resumed_report(
    plans: Sequence[RunPlan], previous: Sequence[RunRecord], *, billed_s: float | None = None
) -> ExecutionReport:
    """The report a job's runs start from: a run that succeeded before is kept as it was (its
    outputs are on disk); the others are pending, keeping the id of a request the server may
    still hold (a resumed driver follows it instead of sending it again)."""
    before = {r.index: r for r in previous}
    return ExecutionReport(
        runs=[
            before[p.index]
            if p.index in before and before[p.index].status == "succeeded"
            else RunRecord(
                p.index,
                "pending",
                input=p.input,
                prompt_id=before[p.index].prompt_id if p.index in before else None,
            )
            for p in plans
        ],
        inputs={},
        outcome=None,
        billed_s=billed_s,
    )


async def execute(
    client: ComfyUIClient,
    *,
    job_id: int,
    kind: str,
    items: int,
    inputs: Sequence[Path],
    out_dir: Path,
    template: WorkflowTemplate | None = None,
    workflow: Mapping[str, Any] | None = None,
    task: Mapping[str, Any] | None = None,
    on_event: Callable[[int, RunEvent], Awaitable[None] | None] | None = None,
    run_deadline: Callable[[int], float | None] = lambda _i: None,
    previous: Sequence[RunRecord] = (),
    on_change: Callable[[ExecutionReport], Awaitable[None] | None] | None = None,
    cancel_remote: Callable[[], bool] = lambda: True,
) -> ExecutionReport:
    """Run a job's runs on ``client``'s server (see the module's text). ``on_event`` hears
    each run's ComfyUI messages; ``run_deadline(index)`` gives a run's monotonic deadline.

    Resuming (a driver that took the job over): ``previous`` is what the runs' records said;
    a run that succeeded is kept as it is (its outputs are on disk), a run whose prompt the
    server still holds (queued, running or in its history) is followed, not queued again;
    the others run afresh. ``on_change`` hears the report whenever a run's record changes (a
    prompt queued, a run ended): the caller keeps it, so a later driver can resume.
    ``cancel_remote()`` False: a cancellation leaves the prompt on the server (the job was
    taken over by another driver, which follows it)."""
    names, plans = planned(job_id, kind, items, inputs, template, workflow, task)
    models = dict(template.models) if template is not None else {}
    problems = await client.preflight([p.graph for p in plans], models)
    if problems:
        raise ComfyUIError("missing", "this ComfyUI cannot run the job: " + "; ".join(problems))

    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    by_name = dict(zip(names, inputs, strict=True))
    report = resumed_report(plans, previous)

    async def changed() -> None:
        if on_change is not None:
            result = on_change(report)
            if asyncio.iscoroutine(result):
                await result

    todo = [p for p, r in zip(plans, report.runs, strict=True) if r.status != "succeeded"]
    needed = [n for n in dict.fromkeys(p.input for p in todo) if n is not None]
    for name in needed:
        data = await asyncio.to_thread(by_name[name].read_bytes)
        await client.upload_image(name, data)
        report.inputs[name] = hashlib.sha256(data).hexdigest()

    for plan, record in zip(plans, report.runs, strict=True):
        if record.status == "succeeded":
            continue
        record.status = "running"
        await changed()
        try:

            async def heard(event: RunEvent, index: int = plan.index) -> None:
                if on_event is not None:
                    result = on_event(index, event)
                    if asyncio.iscoroutine(result):
                        await result

            pending: list[asyncio.Future[None]] = []

            def queued(
                prompt_id: str,
                record: RunRecord = record,
                pending: list[asyncio.Future[None]] = pending,
            ) -> None:
                record.prompt_id = prompt_id
                if on_change is not None:
                    pending.append(asyncio.ensure_future(changed()))

            state: RunState | None = None
            if record.prompt_id is not None and await _still_known(client, record.prompt_id):
                state = await client.wait(
                    record.prompt_id, on_event=heard, deadline=run_deadline(plan.index)
                )
            if state is None:
                state = await client.run_prompt(
                    plan.graph, on_queued=queued, on_event=heard, deadline=run_deadline(plan.index)
                )
            for fut in pending:
                await fut
        except asyncio.CancelledError:
            record.status = "cancelled"
            if record.prompt_id is not None and cancel_remote():
                await asyncio.shield(_cancel_quietly(client, record.prompt_id))
            report.outcome = "cancelled"
            await asyncio.to_thread(write_manifest, out_dir, report)
            raise
        except ComfyUIError as exc:
            record.status, record.error = "failed", exc.message
            await asyncio.to_thread(write_manifest, out_dir, report)
            await changed()
            continue
        for out in state.outputs:
            try:
                path, digest, size = await client.download(out, out_dir)
                await asyncio.to_thread(check_image, path)
            except ComfyUIError as exc:
                state.status, state.error = "failed", exc.message
                continue
            record.outputs.append(OutputRecord(path.name, digest, size, plan.index, out.node))
        record.status, record.error = state.status, state.error
        await asyncio.to_thread(write_manifest, out_dir, report)
        await changed()
    report.outcome = job_outcome([r.status for r in report.runs])
    await asyncio.to_thread(write_manifest, out_dir, report)
    return report


async def _still_known(client: ComfyUIClient, prompt_id: str) -> bool:
    """The server still holds the prompt (queued, running, or ended in its history): a
    resumed run follows it instead of queueing it again."""
    try:
        if await client.queue_state(prompt_id) != "unknown":
            return True
        return await client.history(prompt_id) is not None
    except ComfyUIError:
        return False


async def _cancel_quietly(client: ComfyUIClient, prompt_id: str) -> None:
    try:
        await client.cancel(prompt_id)
    except ComfyUIError:
        pass  # (the server is gone: nothing runs there any more)
