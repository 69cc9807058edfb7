"""Entry point of ``comfyvn-gui``: a command runs the CLI; no command opens the desktop app.

This module sits above both skins so that neither imports the other (import-linter layers).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from . import cli

    args = cli.build_parser().parse_args(argv)  # --help / --version / usage errors end here
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
