"""Entry point of ``comfyvn-gui``: a command runs the CLI; no command opens the desktop app.

This module sits above the skins so that none imports another (import-linter layers); it
also starts the HTTP API (``serve``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The options of the desktop app itself; anything else goes through the command line parser.
_GUI_OPTIONS = ("--screenshot", "--page")


def _only_gui_options(argv: list[str]) -> bool:
    """True for ``[]`` or only ``--screenshot PNG`` / ``--page P``: open the window straight
    away, without importing the command line's parser (and pydantic) first — start-up time."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if any(arg.startswith(f"{opt}=") for opt in _GUI_OPTIONS):
            i += 1
        elif arg in _GUI_OPTIONS and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            i += 2
        else:
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _only_gui_options(argv):
        from .gui import app

        return app.main(argv)
    from . import cli

    args = cli.build_parser().parse_args(argv)  # --help / --version / usage errors end here
    if args.command == "serve":
        from .api.server import serve  # FastAPI and uvicorn only for the server

        return serve(host=args.host, port=args.port, monitor=not args.no_monitor)
    if args.command is not None:
        return cli.run(args)
    from .gui import app  # Qt is imported only when the window is wanted

    gui_args = []
    if args.screenshot:
        gui_args += ["--screenshot", args.screenshot]
    if args.page:
        gui_args += ["--page", args.page]
    return app.main(gui_args)


if __name__ == "__main__":
    sys.exit(main())
