"""``comfyvn-gui settings|gpus|schemas``: settings, this computer's GPUs, the JSON Schemas."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from comfyvn_gui.core import wording
from comfyvn_gui.service import Service

from .output import EXIT_FAILED, EXIT_OK, Output, _read_json_source


def _settings(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    from comfyvn_gui.core.settings import SETTINGS, spec_for

    if args.action == "get":
        if args.key:
            value = svc.get_setting(args.key)
            if out.as_json:
                out.json({args.key: value})
            else:
                out.line(json.dumps(value) if not isinstance(value, str) else value)
            return EXIT_OK
        values = svc.get_settings()
        if out.as_json:
            out.json(values)
        else:
            out.table(
                ["KEY", "VALUE", "DESCRIPTION"],
                [
                    [
                        k,
                        json.dumps(SETTINGS[k].summary(v) if k in SETTINGS else v),
                        SETTINGS[k].help if k in SETTINGS else "",
                    ]
                    for k, v in values.items()
                ],
            )
        return EXIT_OK
    if args.action == "set":
        spec = spec_for(args.key)
        given = args.value
        if spec.from_file and given.strip().lower() not in ("null", "none", ""):
            given = _read_json_source(given, stdin, f"the file for {spec.key}")
        value = svc.set_setting(spec.key, given)
        if out.as_json:
            out.json({args.key: value})
        else:
            out.line(f"{args.key} = {json.dumps(spec.summary(value))}")
        return EXIT_OK
    value = svc.unset_setting(args.key)
    if out.as_json:
        out.json({args.key: value})
    else:
        out.line(f"{args.key} reset to {json.dumps(value)}")
    return EXIT_OK


def _gpus(svc: Service, out: Output) -> int:
    snap = svc.local_snapshot(fresh=True)
    if out.as_json:
        out.json([g.model_dump(mode="json") for g in snap.gpus])
        return EXIT_OK
    if not snap.gpus:
        text = svc.describe_local(snap)
        out.line(text[0].upper() + text[1:])
        return EXIT_OK
    out.table(
        ["INDEX", "GPU", "VRAM GB", "FREE GB", "LOAD"],
        [
            [
                g.index if g.index is not None else i,
                g.name,
                wording.figure(g.vram_total_gb),
                wording.figure(g.vram_free_gb),
                wording.percent(g.utilization),
            ]
            for i, g in enumerate(snap.gpus)
        ],
    )
    if snap.driver_version:
        out.line(f"driver {snap.driver_version}")
    return EXIT_OK


def _schemas(args: argparse.Namespace, svc: Service, out: Output) -> int:
    folder = Path(args.out)
    if args.check:
        stale = svc.stale_schemas(folder)
        if stale:
            out.note(f"stale schemas in {folder}: {', '.join(stale)}; run `comfyvn-gui schemas`")
            return EXIT_FAILED
        out.line(f"schemas in {folder} are current")
        return EXIT_OK
    for path in svc.write_schemas(folder):
        out.line(str(path))
    return EXIT_OK


def desktop_command(args: argparse.Namespace, out: Output) -> int:
    from comfyvn_gui.service import desktop

    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.action == "install":
        argv = [str(Path(args.exec_path).expanduser())] if args.exec_path else None
        files = desktop.install_desktop_entry(data_dir, argv)
        verb = "installed"
    else:
        files = desktop.uninstall_desktop_entry(data_dir)
        verb = "removed"
    if out.as_json:
        out.json({verb: [str(f) for f in files]})
        return EXIT_OK
    for path in files:
        out.line(f"{verb} {path}")
    if not files:
        out.line("nothing to remove: the desktop entry is not installed there")
    elif verb == "installed":
        out.line(
            "The app is in your desktop's menu as ComfyVN GPU Manager (log out and in if not yet)."
        )
    return EXIT_OK
