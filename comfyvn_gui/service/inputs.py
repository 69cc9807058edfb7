"""A job's files: its inputs, looked up in its project folder when it is dispatched, and the
folder its outputs go to.

An importer summary names its assets by paths relative to the project folder
(docs/import-summary.md); a job keeps them in ``source.inputs`` (``{"id", "count"}``; an id
ending in ``/`` is a folder standing for ``count`` files) and the folder in
``source.project_dir`` (``jobs import-summary`` sets it to the summary's folder, or
``--project-dir``). Import never looks at the files: they may be elsewhere until dispatch,
where :func:`job_inputs` finds every one, or refuses naming the missing ones, before anything
is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from comfyvn_gui.core.errors import InputError

__all__ = ["check_project_dir", "job_inputs", "output_folder", "run_inputs"]

#: At most this many missing files are named in the message (all are counted).
_NAMED = 5


def check_project_dir(value: Any, *, where: str = "project_dir") -> str:
    """An absolute folder path as given (it may not exist yet); else an :class:`InputError`."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where} must be a folder path", fields=[where])
    path = Path(os.path.expanduser(value.strip()))
    if not path.is_absolute():
        raise InputError(
            f"{where} must be an absolute folder path (the folder the summary's asset paths "
            f"are relative to), got {value!r}",
            fields=[where],
        )
    return str(path)


def _relative(asset_id: Any, job_id: int) -> PurePosixPath:
    text = asset_id if isinstance(asset_id, str) else ""
    rel = PurePosixPath(text)
    if not text or rel.is_absolute() or "\\" in text or ".." in rel.parts:
        raise InputError(
            f"job {job_id} names an input {asset_id!r} that is not a path inside its project "
            "folder; import its summary again",
            fields=["source.inputs"],
        )
    return rel


def _files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def job_inputs(
    job_id: int, source: Mapping[str, Any], project_dir: str | None = None
) -> list[Path]:
    """The files job ``job_id`` reads, in the summary's order (a folder's files sorted by
    name), from ``project_dir`` or the folder recorded at import. Every one must be a file
    inside that folder; else nothing is returned and the :class:`InputError` names them."""
    entries = source.get("inputs") or []
    if not entries:
        return []
    folder_text = project_dir or source.get("project_dir")
    if not folder_text:
        raise InputError(
            f"job {job_id} has no project folder, so its {len(entries)} input(s) cannot be "
            "found: give --project-dir DIR (the folder its summary's asset paths are "
            "relative to)",
            fields=["project_dir"],
        )
    root = Path(check_project_dir(folder_text))
    if not root.is_dir():
        raise InputError(
            f"the project folder {root} of job {job_id} does not exist: give the right one "
            "with --project-dir DIR",
            fields=["project_dir"],
        )
    real_root = root.resolve()
    found: list[Path] = []
    missing: list[str] = []
    for entry in entries:
        asset_id = entry.get("id") if isinstance(entry, Mapping) else entry
        rel = _relative(asset_id, job_id)
        path = root.joinpath(*rel.parts)
        if not path.resolve().is_relative_to(real_root):
            raise InputError(
                f"job {job_id}'s input {asset_id} leads outside its project folder {root} "
                "(a link): copy the file into the folder",
                fields=["source.inputs"],
            )
        if str(asset_id).endswith("/"):
            count = int(entry.get("count", 1)) if isinstance(entry, Mapping) else 1
            if not path.is_dir():
                missing.append(str(asset_id))
                continue
            files = _files_of(path)
            if len(files) != count:
                raise InputError(
                    f"job {job_id}: the summary says {asset_id} holds {count} files, but "
                    f"{path} holds {len(files)}: import the summary again after the folder "
                    "changed",
                    fields=["source.inputs"],
                )
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            missing.append(str(asset_id))
    if missing:
        named = ", ".join(missing[:_NAMED]) + (
            f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
        )
        raise InputError(
            f"job {job_id}: {len(missing)} input file(s) not found in {root}: {named}; put "
            "them there or give the right folder with --project-dir DIR",
            fields=["source.inputs"],
        )
    return found


def output_folder(
    job_id: int, source: Mapping[str, Any], data_dir: Path, project_dir: str | None = None
) -> Path:
    """Where a job's outputs go: ``<project folder>/comfyvn-output/<job id>/``, or
    ``<home>/data/outputs/<job id>/`` for a job without a project folder."""
    folder_text = project_dir or source.get("project_dir")
    if folder_text:
        return Path(check_project_dir(folder_text)) / "comfyvn-output" / str(job_id)
    return data_dir / "outputs" / str(job_id)


def run_inputs(
    job_id: int, kind: str, source: Mapping[str, Any], project_dir: str | None = None
) -> list[Path]:
    """The files a job's runs upload (:func:`job_inputs`); none for a ComfyUI workflow job,
    whose graph names its own files."""
    if kind == "comfyui_workflow":
        return []
    return job_inputs(job_id, source, project_dir)
