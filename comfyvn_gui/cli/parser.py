"""The command line's grammar: every command, option and its help."""

from __future__ import annotations

import argparse
from typing import NamedTuple

from comfyvn_gui import __version__

# == gui.app.PAGE_CHOICES (a test checks)
PAGES = ("remote-gpu", "jobs", "advisor", "workflows", "running", "offers")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON on stdout"
    )

    p = argparse.ArgumentParser(
        prog="comfyvn-gui",
        description=(
            "Run ComfyVN importer work on the right GPU. With no command, opens the desktop app."
        ),
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"comfyvn-gui {__version__}")
    p.add_argument("--screenshot", metavar="PNG", help="render the main window to PNG and exit")
    p.add_argument("--page", choices=PAGES, help="page to show (with --screenshot)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    prov = sub.add_parser("providers", help="manage GPU providers", parents=[common])
    ps = prov.add_subparsers(dest="action", metavar="ACTION", required=True)
    ps.add_parser("templates", help="the curated provider catalog", parents=[common])
    ps.add_parser("list", help="registered providers", parents=[common])
    show = ps.add_parser("show", help="one provider in full", parents=[common])
    show.add_argument("id", metavar="ID", help="the provider's id (as `providers list` shows)")

    create = ps.add_parser(
        "create",
        help="add a provider from a template",
        parents=[common],
        description=(
            "Add a provider from a curated template. Secrets come from --config-file (a JSON "
            'object of settings and secrets, e.g. {"api_key": "..."}), or from a prompt '
            "when run in a terminal."
        ),
    )
    create.add_argument(
        "template_id", metavar="TEMPLATE_ID", help="a template id (as `providers templates` shows)"
    )
    create.add_argument(
        "--id",
        dest="provider_id",
        metavar="ID",
        help="the new provider's id (default: the template id)",
    )
    create.add_argument("--name", help="the name shown in the app (default: the template's)")
    create.add_argument(
        "--base-url", metavar="URL", help="the provider's API or ComfyUI address, where it has one"
    )
    create.add_argument("--gpu", help="GPU catalog name (default: the template's)")
    create.add_argument("--config-file", metavar="FILE|-", help="JSON config, '-' for stdin")
    create.add_argument("--no-prompt", action="store_true", help="never prompt, even in a terminal")

    register = ps.add_parser(
        "register",
        help="create or update from a provider entry",
        parents=[common],
        description=(
            "Create or update a provider from a provider entry (JSON). A secret field set to "
            "null clears it; an absent one keeps the stored value."
        ),
    )
    register.add_argument(
        "--config-file", metavar="FILE|-", required=True, help="the entry as JSON, '-' for stdin"
    )

    remove = ps.add_parser("remove", help="remove a provider and its secrets", parents=[common])
    target = remove.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", metavar="ID", help="the provider to remove")
    target.add_argument(
        "--all", action="store_true", help="remove every provider and keyring entry of the home"
    )
    remove.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    for name, what in (
        ("validate", "check credentials with a real call (no ids: every provider)"),
        ("health", "check that providers can take work now (no ids: every enabled provider)"),
    ):
        chk = ps.add_parser(name, help=what, parents=[common])
        chk.add_argument("ids", nargs="*", metavar="ID", help="provider ids (default: every one)")
        chk.add_argument("--all", action="store_true", help="every provider (the default)")
        chk.add_argument(
            "--timeout", type=float, metavar="S", help="deadline of each check in seconds"
        )
        if name == "health":
            chk.add_argument(
                "--watch",
                action="store_true",
                help="keep watching (the health monitor) and print every change; Ctrl+C stops",
            )

    trust = ps.add_parser(
        "trust-host",
        help="pin an SSH provider's host key",
        parents=[common],
        description=(
            "Pin the host key of an SSH provider. Compare the fingerprint that `providers "
            "validate` reported (untrusted_host) with the one your administrator gave you "
            "first; a different key later is refused as host_key_mismatch."
        ),
    )
    trust.add_argument("id", metavar="ID", help="the SSH provider")
    trust.add_argument(
        "--fingerprint",
        required=True,
        metavar="SHA256:...",
        help="the host key's fingerprint, as `providers validate` reported it",
    )

    export = ps.add_parser("export", help="export the registry as JSON", parents=[common])
    export.add_argument(
        "--include-secrets",
        action="store_true",
        help="also export the secrets from the keyring (keep the file private)",
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")

    imp = ps.add_parser("import", help="import an export or a list of providers", parents=[common])
    imp.add_argument(
        "file", metavar="FILE|-", help="an export or a JSON list of providers, '-' for stdin"
    )
    imp.add_argument(
        "--replace", action="store_true", help="delete every provider first (after a backup)"
    )
    imp.add_argument("--no-overwrite", action="store_true", help="skip providers whose id exists")
    imp.add_argument("--dry-run", action="store_true", help="say what it would do; change nothing")
    imp.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    st = sub.add_parser("settings", help="read or change settings", parents=[common])
    ss = st.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = ss.add_parser("get", help="all settings, or one", parents=[common])
    get.add_argument("key", nargs="?", metavar="KEY", help="one setting (default: all)")
    set_ = ss.add_parser("set", help="change a setting", parents=[common])
    set_.add_argument("key", metavar="KEY", help="the setting, e.g. health.interval_s")
    set_.add_argument("value", metavar="VALUE", help="its new value")
    unset = ss.add_parser("unset", help="back to the default", parents=[common])
    unset.add_argument("key", metavar="KEY", help="the setting")

    adv = sub.add_parser(
        "advise",
        help="where a workload would run, what it costs and why (a what-if: records nothing)",
        parents=[common],
        description=(
            "Advise where a workload should run. The request is a JSON object with a "
            "'workload' (kind, sizes, latency, budget_usd, residency ...) and optionally "
            "'local', 'health' and 'providers' replacing the live values (see "
            "docs/schemas/advice-request.schema.json). Prints the advice object as JSON; "
            "exit 0 also when no provider can run it."
        ),
    )
    adv.add_argument("--request", metavar="FILE|-", required=True, help="'-' for stdin")
    adv.add_argument(
        "--text", action="store_true", help="print a summary for people instead of JSON"
    )

    jobs = sub.add_parser(
        "jobs", help="the queue of importer jobs and their advice", parents=[common]
    )
    js = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)
    jadd = js.add_parser(
        "add",
        help="queue a workload (JSON, optionally with a title), advised",
        parents=[common],
    )
    jadd.add_argument("file", metavar="FILE|-", help="the workload as JSON, '-' for stdin")
    jlist = js.add_parser("list", help="the jobs, with the advice next to each", parents=[common])
    jlist.add_argument("--status", action="append", help="only jobs with this status")
    jshow = js.add_parser(
        "show", help="one job: its advice, alternatives and audit trail", parents=[common]
    )
    jshow.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jsum = js.add_parser(
        "import-summary",
        help="one advised job per unit of work of an importer summary (all or nothing)",
        parents=[common],
    )
    jsum.add_argument("file", metavar="FILE|-", help="an importer summary (JSON), '-' for stdin")
    jsum.add_argument(
        "--project-dir",
        metavar="DIR",
        help="the folder the summary's asset paths are relative to (default: the summary "
        "file's folder; none for -); its files are looked up when a job is dispatched",
    )
    jpick = js.add_parser(
        "pick",
        help="run a queued job on the provider you choose (recorded in its audit trail)",
        parents=[common],
    )
    jpick.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jpick.add_argument("provider", nargs="?", help="a registered provider id")
    jpick.add_argument(
        "--advisor", action="store_true", help="drop your pick: back to the advisor's choice"
    )
    jcancel = js.add_parser(
        "cancel",
        help="cancel a job: a queued one at once, a running one on its provider (the driver "
        "keeps what finished)",
        parents=[common],
    )
    jcancel.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jdisp = js.add_parser(
        "dispatch",
        help="run a queued job on its provider, once you acknowledged its warnings",
        parents=[common],
        description="Check the job (provider, residency, workflow, input files), show the "
        "warnings you must acknowledge (data leaving this computer, residency, licences, "
        "DPIA), then hand it to the dispatch driver, which uploads and runs it. Without a "
        "terminal, --yes is needed when there are warnings.",
    )
    jdisp.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jdisp.add_argument(
        "--provider", metavar="P", help="pick this provider first (its warnings are shown)"
    )
    jdisp.add_argument(
        "--project-dir", metavar="DIR", help="the folder the job's input files are under"
    )
    jdisp.add_argument(
        "--yes", action="store_true", help="acknowledge the job's warnings without asking"
    )
    jwatch = js.add_parser(
        "watch",
        help="follow a dispatched job until it ends (Ctrl+C leaves it running)",
        parents=[common],
    )
    jwatch.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jout = js.add_parser(
        "outputs", help="the files a dispatched job produced, and their folder", parents=[common]
    )
    jout.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jrm = js.add_parser(
        "remove",
        help="delete a queued or ended job (its outputs stay on disk; its trail is kept)",
        parents=[common],
    )
    jrm.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jretry = js.add_parser(
        "retry",
        help="put a failed or cancelled job back in the queue, advised afresh",
        parents=[common],
    )
    jretry.add_argument("id", type=int, metavar="ID", help="the job's id (as `jobs list` shows)")
    jre = js.add_parser(
        "readvise",
        help="advise the queued jobs again now (health and registry changes do it by themselves)",
        parents=[common],
    )
    jre.add_argument(
        "--because", metavar="TEXT", help="what changed (recorded with each changed decision)"
    )

    sub.add_parser(
        "gpus",
        help="this computer's GPUs (NVML): VRAM, free VRAM, load",
        parents=[common],
        description="This computer's NVIDIA GPUs; with --json a list (empty: no local GPU).",
    )

    srv = sub.add_parser(
        "serve",
        help="the local HTTP API (token in config/api-token)",
        description="Serve the local HTTP API until Ctrl+C. Every request needs the bearer "
        "token kept in the home's config/api-token.",
    )
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=_port, default=8765, help="port (default 8765)")
    srv.add_argument(
        "--no-monitor", action="store_true", help="do not run the periodic health monitor"
    )

    run_p = sub.add_parser(
        "running",
        help="every machine, pod and key this home holds at a provider; stop orphans",
        description="List what this home holds at every machine provider (machines, pods, "
        "one-time SSH keys, start-up scripts, a cache volume, serverless requests) with age "
        "and cost so far; orphans (no job owns them) and leaked ones (their job ended but "
        "they were not released) are marked. Exit 1 when a provider could not be listed.",
        parents=[common],
    )
    rs = run_p.add_subparsers(dest="action", metavar="ACTION")
    rstop = rs.add_parser(
        "stop",
        help="release one resource (REF as listed) or every orphan (--orphans)",
        description="Release a resource this home holds: REF as `running` lists it "
        "(provider:id), or every orphan and leaked one with --orphans. A resource a job in "
        "flight uses is refused: cancel the job instead.",
        parents=[common],
    )
    rwhich = rstop.add_mutually_exclusive_group(required=True)
    rwhich.add_argument("ref", nargs="?", metavar="REF", help="provider:id as listed")
    rwhich.add_argument("--orphans", action="store_true", help="every orphan and leaked one")
    rstop.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    off = sub.add_parser(
        "offers",
        help="every GPU you can rent now across your providers, cheapest first",
        description="One row per offer (provider, GPU, VRAM, region, $/hr, billing, where the "
        "price comes from and how old it is), across your providers and the templates you have "
        "not added (marked 'not configured'), cheapest first. Answered from the prices kept in "
        "the home and the catalog; --refresh fetches live prices first (the network, with your "
        "stored credentials). Exit 1 when a refresh failed for a provider.",
        parents=[common],
    )
    off.add_argument("--vram", type=_amount, metavar="GB", help="at least this much VRAM per GPU")
    off.add_argument("--gpu", metavar="GPU", help="this GPU (e.g. A100 matches 40 and 80 GB)")
    off.add_argument("--zone", metavar="ZONE", help="in this residency zone (us, eu, ...)")
    off.add_argument("--max-price", type=_amount, metavar="USD", help="at most this $/hr")
    off.add_argument("--spot", action="store_true", help="include interruptible (spot) offers")
    off.add_argument(
        "--refresh", action="store_true", help="fetch live prices from the providers first"
    )

    sub.add_parser(
        "driver",
        help="the dispatch driver (started for you by the commands that dispatch)",
        description="Run this home's dispatch driver until no job is in flight; exits at "
        "once if one runs already.",
        parents=[common],
    )

    sub.add_parser(
        "about", help="version, folders and which keyring holds the secrets", parents=[common]
    )

    desk = sub.add_parser(
        "desktop",
        help="add the app to your desktop's menu, or take it out (Linux)",
        description="Install the menu entry, the icon and the AppStream metadata for you, "
        "under $XDG_DATA_HOME (default ~/.local/share), starting this installation of the "
        "app; or remove them.",
        parents=[common],
    )
    dks = desk.add_subparsers(dest="action", metavar="ACTION", required=True)
    dinst = dks.add_parser(
        "install", help="install the menu entry, icon and metadata", parents=[common]
    )
    dinst.add_argument(
        "--exec",
        dest="exec_path",
        metavar="PATH",
        help="the program the entry starts (default: the one you are running)",
    )
    duninst = dks.add_parser(
        "uninstall", help="remove what `desktop install` installed", parents=[common]
    )
    for dp in (dinst, duninst):
        dp.add_argument(
            "--data-dir",
            metavar="DIR",
            help="install under DIR instead of $XDG_DATA_HOME (default ~/.local/share)",
        )

    sch = sub.add_parser(
        "schemas", help="write the JSON Schemas of the public objects", parents=[common]
    )
    sch.add_argument(
        "--out", metavar="DIR", default="docs/schemas", help="the folder (default docs/schemas)"
    )
    sch.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    _describe(p)
    return p


class Command(NamedTuple):
    """One command of the grammar (``providers create``): its words, parser, the line its
    parent lists it with, and whether it needs an action word after it (``providers``)."""

    path: tuple[str, ...]
    parser: argparse.ArgumentParser
    line: str | None
    needs_action: bool


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    """Every command below ``parser``, depth first (the reference, the help and the guide's
    tests walk the grammar with this)."""
    found: list[Command] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, child in action.choices.items():
            below = [a for a in child._actions if isinstance(a, argparse._SubParsersAction)]
            needs = bool(below) and bool(below[0].required)
            found.append(Command((*path, name), child, helps.get(name), needs))
            found += commands(child, (*path, name))
    return found


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every command without a description its one-line help as one, so that each
    ``COMMAND --help`` says what the command does (the parent lists the same line)."""
    for command in commands(parser):
        line = command.line
        if command.parser.description is None and line:
            command.parser.description = line[0].upper() + line[1:] + "."


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e6 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of at least 0")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port
