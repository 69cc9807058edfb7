"""``--help`` of every command is complete: each command says what it does, each option and
argument what it takes, and each ``--help`` runs (the reference, docs/reference/cli.md, is
generated from the same parser)."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from comfyvn_gui.cli import build_parser
from comfyvn_gui.cli.parser import commands

COMMANDS = [(c.path, c.parser, c.line) for c in commands(build_parser())]


def test_the_parser_has_every_command() -> None:
    names = {" ".join(path) for path, _parser, _help in COMMANDS}
    assert {
        "providers create",
        "jobs dispatch",
        "running stop",
        "offers",
        "desktop install",
    } <= names
    assert len(names) >= 40


@pytest.mark.parametrize(
    ("path", "parser", "line"), COMMANDS, ids=[" ".join(p) for p, _a, _b in COMMANDS]
)
def test_each_command_says_what_it_does_and_what_each_option_takes(
    path: tuple[str, ...], parser: argparse.ArgumentParser, line: str | None
) -> None:
    assert line, f"`{' '.join(path)}` has no line in its parent's list of commands"
    assert parser.description, f"`{' '.join(path)} --help` says nothing about the command"
    undocumented = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not action.help
    ]
    assert undocumented == []
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*path, "--help"])
    assert exited.value.code == 0
    assert out.getvalue().startswith(f"usage: comfyvn-gui {' '.join(path)}")


def test_the_command_lines_pages_are_the_windows() -> None:
    """``comfyvn-gui --screenshot X --page P`` offers every page the window has."""
    from comfyvn_gui.cli import PAGES
    from comfyvn_gui.gui.app import PAGE_CHOICES

    assert PAGES == PAGE_CHOICES
