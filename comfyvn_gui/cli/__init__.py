"""``comfyvn-gui`` command line: a thin skin over :mod:`comfyvn_gui.service`.

Exit codes: 0 ok, 1 the operation failed, 2 bad input (a one-line reason on stderr).
``--json`` prints machine-readable JSON on stdout. Secrets are read only from a file, stdin
or a prompt — never from the command line, where other users and shell history see them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from comfyvn_gui.core.errors import ComfyVNError, InputError
from comfyvn_gui.core.redaction import RedactingFilter, redact
from comfyvn_gui.service import Service

from .jobs import _advise, _jobs
from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, Output
from .parser import PAGES, build_parser
from .providers import _providers
from .system import _gpus, _schemas, _settings

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "PAGES", "build_parser", "main", "run"]


def run(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdin = stdin or sys.stdin
    out = Output(getattr(args, "json", False), stdout or sys.stdout, stderr or sys.stderr)
    logger = logging.getLogger("comfyvn_gui")
    handler = _log_handler(out.stderr)
    logger.addHandler(handler)
    try:
        svc = Service()
        if args.command == "schemas":
            return _schemas(args, svc, out)
        if args.command == "providers":
            return _providers(args, svc, out, stdin)
        if args.command == "settings":
            return _settings(args, svc, out, stdin)
        if args.command == "advise":
            return _advise(args, svc, out, stdin)
        if args.command == "jobs":
            return _jobs(args, svc, out, stdin)
        if args.command == "driver":
            return svc.driver().run()
        if args.command == "running":
            from .running import running_command

            return running_command(args, svc, out, stdin)
        if args.command == "offers":
            from .offers import offers_command

            return offers_command(args, svc, out)
        if args.command == "desktop":
            from .system import desktop_command

            return desktop_command(args, out)
        if args.command == "gpus":
            return _gpus(svc, out)
        if args.command == "serve":  # (started by __main__, which may import the API)
            out.note("comfyvn-gui: run the API with the `comfyvn-gui serve` command")
            return EXIT_FAILED
        if args.command == "about":
            info = svc.about()
            if out.as_json:
                out.json(info)
            else:
                width = max(len(k) for k in info) + 1
                for key, value in info.items():
                    out.line(f"{key + ':':<{width}} {value}")
            return EXIT_OK
        raise AssertionError(args.command)
    except ComfyVNError as exc:
        code = EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_FAILED
        # Domain messages never hold a secret (core's rule, checked with canaries); redact()
        # would only mask words after a field name ("config.api_key: *** key does not ...").
        message = exc.message
        out.note(f"comfyvn-gui: {message}")
        if out.as_json:
            out.json({"error": {"code": exc.code, "message": message, "fields": exc.fields}})
        return code
    except KeyboardInterrupt:
        out.note("comfyvn-gui: interrupted; nothing further was changed")
        return 130
    except BrokenPipeError:  # `comfyvn-gui ... | head`: the reader left; not an error to show
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:
        logging.getLogger("comfyvn_gui").debug("internal error", exc_info=True)
        out.note(
            f"comfyvn-gui: internal error ({type(exc).__name__}: {redact(str(exc))}); "
            "please report it"
        )
        return EXIT_FAILED
    finally:
        logger.removeHandler(handler)


def _log_handler(stream: TextIO) -> logging.Handler:
    """Warnings (everything with COMFYVN_GUI_DEBUG=1) on stderr, secrets redacted."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setLevel(logging.DEBUG if os.environ.get("COMFYVN_GUI_DEBUG") else logging.WARNING)
    handler.setFormatter(logging.Formatter("comfyvn-gui: %(levelname)s: %(message)s"))
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.error("a command is needed here (the desktop app starts from `comfyvn-gui`)")
    return run(args)
