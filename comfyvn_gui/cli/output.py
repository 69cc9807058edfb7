"""How the command line writes (tables, JSON, notes on stderr) and reads (JSON files, answers)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from comfyvn_gui.core import json_input, wording
from comfyvn_gui.core.errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class Output:
    def __init__(self, as_json: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.as_json = as_json
        self.stdout = stdout
        self.stderr = stderr

    def json(self, data: Any) -> None:
        # Strict JSON (no NaN / Infinity, which other parsers refuse); JSON escapes controls.
        self.stdout.write(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")

    def line(self, text: str = "") -> None:
        self.stdout.write(wording.printable(text) + "\n")

    def note(self, text: str) -> None:
        self.stderr.write(wording.printable(text) + "\n")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        cells = [[wording.printable(str(c)) for c in r] for r in rows]
        widths = [len(h) for h in headers]
        for r in cells:
            widths = [max(w, len(c)) for w, c in zip(widths, r, strict=True)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        self.line(fmt.format(*headers).rstrip())
        self.line(fmt.format(*("-" * w for w in widths)).rstrip())
        for r in cells:
            self.line(fmt.format(*r).rstrip())


def _read_json_source(source: str, stdin: TextIO, what: str) -> Any:
    try:
        data = stdin.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {source!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {source!r} is not UTF-8 text") from None
    return json_input.loads(data, where=f"{what} {source!r}")


def _confirm(question: str, stdin: TextIO, out: Output) -> bool:
    out.stderr.write(f"{question} [y/N] ")
    out.stderr.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def _ask(question: str, out: Output, stdin: TextIO) -> str:
    out.stderr.write(question)
    out.stderr.flush()
    return stdin.readline().strip()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
