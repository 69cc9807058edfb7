"""The user guide (docs/guide/) is true: its examples run, its commands parse, it covers every
command and every provider, and its links lead somewhere.

The guide's conventions (docs/guide/README.md, "About the examples"):
- a ```shell block runs: a page's shell blocks run in order with ``bash -e`` in a fresh home
  (``COMFYVN_GUI_HOME``), a fresh working folder, a real Secret Service and ``comfyvn-gui`` on
  the PATH; each must exit 0;
- a ```console block is not run (it needs a provider or the network), but each command line in
  it is parsed by the real command line parser and must be accepted;
- a ```text block is output, not checked.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from comfyvn_gui.cli import build_parser
from comfyvn_gui.cli.parser import commands
from comfyvn_gui.core.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(GUIDE.rglob("*.md"))
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def blocks(page: Path, kind: str) -> list[str]:
    return [body for tag, body in FENCE.findall(page.read_text(encoding="utf-8")) if tag == kind]


def command_lines(text: str) -> list[list[str]]:
    """Each ``comfyvn-gui ...`` command in ``text`` (after a ``$ `` prompt or a pipe), as argv
    without the program name."""
    commands = []
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip().removeprefix("$ ")
        for part in re.split(r"\s*(?:\|\||&&|\||;)\s*", line):
            if part.startswith("comfyvn-gui"):
                argv = shlex.split(part.split(" #", 1)[0], comments=False)
                argv = [a for a in argv if not a.startswith(">")]
                commands.append(argv[1:])
    return commands


def test_the_guide_has_pages() -> None:
    assert len(PAGES) >= 20, [p.name for p in PAGES]


@pytest.mark.parametrize(
    "page", [p for p in PAGES if blocks(p, "shell")], ids=lambda p: str(p.relative_to(GUIDE))
)
def test_a_pages_shell_examples_run_in_a_fresh_home(
    page: Path, tmp_path: Path, secret_service: dict[str, str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        COMFYVN_GUI_HOME=str(tmp_path / "home"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        QT_QPA_PLATFORM="offscreen",
        # what an example would reach by mistake: nothing (no proxy is running there)
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    for number, body in enumerate(blocks(page, "shell"), 1):
        res = subprocess.run(
            ["bash", "-e", "-c", body],
            capture_output=True,
            text=True,
            cwd=work,
            env=env,
            timeout=120,
        )
        assert res.returncode == 0, (
            f"{page.relative_to(ROOT)}, shell block {number} exited {res.returncode}:\n{body}\n"
            f"--- stdout\n{res.stdout[-2000:]}\n--- stderr\n{res.stderr[-2000:]}"
        )


def _parses(argv: list[str]) -> str | None:
    parser = build_parser()
    parser.exit_on_error = False

    def fail(message: str) -> None:
        raise argparse.ArgumentError(None, message)

    for command in commands(parser):  # the subcommands report through their own parsers
        command.parser.error = fail  # type: ignore[method-assign]
    parser.error = fail  # type: ignore[method-assign]
    try:
        parser.parse_args(argv)
    except argparse.ArgumentError as exc:
        return str(exc)
    except SystemExit as exc:  # --help
        return None if exc.code == 0 else f"exit {exc.code}"
    return None


def test_every_command_in_the_guide_is_one_the_command_line_accepts() -> None:
    problems = []
    for page in PAGES:
        for kind in ("console", "shell"):
            for body in blocks(page, kind):
                for argv in command_lines(body):
                    problem = _parses(argv)
                    if problem:
                        problems.append(
                            f"{page.relative_to(ROOT)}: comfyvn-gui {shlex.join(argv)}: {problem}"
                        )
    assert problems == []


def test_the_guide_shows_every_command() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
    text = re.sub(r"\s+", " ", text.replace("\\\n", " "))
    hidden = {"driver"}  # started by the commands that dispatch, never by hand
    missing = [
        cmd
        for cmd in (" ".join(c.path) for c in commands(build_parser()) if not c.needs_action)
        if cmd not in hidden and not re.search(rf"comfyvn-gui (--json )?{re.escape(cmd)}\b", text)
    ]
    assert missing == []


def test_the_guide_has_a_page_for_every_provider_template_linked_from_the_overview() -> None:
    overview = (GUIDE / "providers" / "README.md").read_text(encoding="utf-8")
    index = (GUIDE / "README.md").read_text(encoding="utf-8")
    for template in load_catalog().profiles:
        page = GUIDE / "providers" / f"{template}.md"
        assert page.is_file(), f"no guide page for {template}"
        assert f"({template}.md)" in overview, f"providers/README.md does not link {template}"
        assert f"(providers/{template}.md)" in index, f"README.md does not link {template}"


def test_every_link_in_the_guide_leads_to_a_file_that_exists() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
