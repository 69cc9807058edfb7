"""``comfyvn-gui`` command line: a thin skin over :mod:`comfyvn_gui.service`.

Exit codes: 0 ok, 1 the operation failed, 2 bad input (a one-line reason on stderr).
``--json`` prints machine-readable JSON on stdout. Secrets are read only from a file, stdin
or a prompt — never from the command line, where other users and shell history see them.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from .core.errors import ComfyVNError, InputError
from .core.models import ProviderInput
from .core.redaction import RedactingFilter, redact
from .service import Service

if TYPE_CHECKING:
    from .core.advisor import Advice

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
PAGES = ("remote-gpu", "jobs", "advisor")


# -- parser -----------------------------------------------------------------------------------


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
    show.add_argument("id")

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
    create.add_argument("template_id", metavar="TEMPLATE_ID")
    create.add_argument("--id", dest="provider_id", metavar="ID")
    create.add_argument("--name")
    create.add_argument("--base-url", metavar="URL")
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
    register.add_argument("--config-file", metavar="FILE|-", required=True)

    remove = ps.add_parser("remove", help="remove a provider and its secrets", parents=[common])
    target = remove.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?")
    target.add_argument(
        "--all", action="store_true", help="remove every provider and keyring entry of the home"
    )
    remove.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    for name, what in (
        ("validate", "check credentials with a real call (no ids: every provider)"),
        ("health", "check that providers can take work now (no ids: every enabled provider)"),
    ):
        chk = ps.add_parser(name, help=what, parents=[common])
        chk.add_argument("ids", nargs="*", metavar="ID")
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
    trust.add_argument("id")
    trust.add_argument("--fingerprint", required=True, metavar="SHA256:...")

    export = ps.add_parser("export", help="export the registry as JSON", parents=[common])
    export.add_argument("--include-secrets", action="store_true")
    export.add_argument("-o", "--output", metavar="FILE")

    imp = ps.add_parser("import", help="import an export or a list of providers", parents=[common])
    imp.add_argument("file", metavar="FILE|-")
    imp.add_argument(
        "--replace", action="store_true", help="delete every provider first (after a backup)"
    )
    imp.add_argument("--no-overwrite", action="store_true", help="skip providers whose id exists")
    imp.add_argument("--dry-run", action="store_true", help="say what it would do; change nothing")
    imp.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    st = sub.add_parser("settings", help="read or change settings", parents=[common])
    ss = st.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = ss.add_parser("get", help="all settings, or one", parents=[common])
    get.add_argument("key", nargs="?")
    set_ = ss.add_parser("set", help="change a setting", parents=[common])
    set_.add_argument("key")
    set_.add_argument("value")
    unset = ss.add_parser("unset", help="back to the default", parents=[common])
    unset.add_argument("key")

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
    jadd.add_argument("file", metavar="FILE|-")
    jlist = js.add_parser("list", help="the jobs, with the advice next to each", parents=[common])
    jlist.add_argument("--status", action="append", help="only jobs with this status")
    jshow = js.add_parser(
        "show", help="one job: its advice, alternatives and audit trail", parents=[common]
    )
    jshow.add_argument("id", type=int)
    jsum = js.add_parser(
        "import-summary",
        help="one advised job per unit of work of an importer summary (all or nothing)",
        parents=[common],
    )
    jsum.add_argument("file", metavar="FILE|-")
    jpick = js.add_parser(
        "pick",
        help="run a queued job on the provider you choose (recorded in its audit trail)",
        parents=[common],
    )
    jpick.add_argument("id", type=int)
    jpick.add_argument("provider", nargs="?", help="a registered provider id")
    jpick.add_argument(
        "--advisor", action="store_true", help="drop your pick: back to the advisor's choice"
    )
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

    sub.add_parser(
        "about", help="version, folders and which keyring holds the secrets", parents=[common]
    )

    sch = sub.add_parser(
        "schemas", help="write the JSON Schemas of the public objects", parents=[common]
    )
    sch.add_argument("--out", metavar="DIR", default="docs/schemas")
    sch.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    return p


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


# -- output helpers -------------------------------------------------------------------------


class Output:
    def __init__(self, as_json: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.as_json = as_json
        self.stdout = stdout
        self.stderr = stderr

    def json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

    def line(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def note(self, text: str) -> None:
        self.stderr.write(text + "\n")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        cells = [[str(c) for c in r] for r in rows]
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
        text = stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {source!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {source!r} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{what} {source!r} is not valid JSON ({exc})") from None


def _confirm(question: str, stdin: TextIO, out: Output) -> bool:
    out.stderr.write(f"{question} [y/N] ")
    out.stderr.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def _entry_row(svc: Service, p: Any) -> list[Any]:
    missing = svc.missing_fields(p)
    if not p.enabled:
        state = "disabled"
    elif missing:
        state = "needs " + ", ".join(missing)
    elif p.active:
        state = "active"
    else:
        state = "not validated"
    return [p.id, p.template_id, p.name, p.gpu or svc.template(p.template_id).default_gpu, state]


# -- commands -------------------------------------------------------------------------------


def _providers(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    action = args.action
    if action == "templates":
        profiles = svc.templates()
        if out.as_json:
            out.json([p.model_dump(mode="json") for p in profiles])
            return EXIT_OK
        rows = []
        for p in profiles:
            gpu = svc.catalog.gpu(p.default_gpu)
            vram = f"{gpu.vram_gb:g} GB" if gpu else f"{p.vram_floor_gb:g} GB"
            rows.append(
                [
                    p.id,
                    p.name,
                    p.kind,
                    p.default_gpu,
                    vram,
                    p.pricing.hint,
                    ", ".join(f.name for f in p.auth_fields) or "-",
                ]
            )
        out.table(["ID", "NAME", "KIND", "GPU", "VRAM", "COST", "AUTH FIELDS"], rows)
        return EXIT_OK

    if action == "list":
        entries = svc.list_providers()
        if out.as_json:
            out.json([p.model_dump(mode="json") for p in entries])
            return EXIT_OK
        out.table(["ID", "TEMPLATE", "NAME", "GPU", "STATE"], [_entry_row(svc, p) for p in entries])
        return EXIT_OK

    if action == "show":
        entry = svc.get_provider(args.id)
        if out.as_json:
            out.json(entry.model_dump(mode="json"))
            return EXIT_OK
        profile = svc.template(entry.template_id)
        out.line(f"{entry.name} ({entry.id})")
        out.line(f"  template:  {profile.name} [{entry.template_id}]")
        out.line(f"  enabled:   {'yes' if entry.enabled else 'no'}")
        out.line(f"  active:    {'yes' if entry.active else 'no (not validated here yet)'}")
        out.line(f"  gpu:       {entry.gpu or profile.default_gpu}")
        price = entry.meta.get("hourly_usd", profile.pricing.hourly_usd)
        cost = f"${price:g}/hr" if isinstance(price, int | float) else profile.pricing.hint
        billing = profile.billing
        assumed = ", assumed" if billing.assumed else ""
        out.line(
            f"  cost:      {cost} (prices as of {profile.pricing.prices_as_of}; billed per "
            f"{_minutes(billing.increment_minutes)}, minimum {_minutes(billing.minimum_minutes)}"
            f"{assumed})"
        )
        out.line(f"  zones:     {', '.join(profile.zones) or '-'}")
        out.line(f"  policy:    {profile.policy_highlight}")
        if entry.base_url:
            out.line(f"  base url:  {entry.base_url}")
        for k, v in sorted(entry.config.items()):
            out.line(f"  {k + ':':<10} {json.dumps(v) if not isinstance(v, str) else v}")
        secrets = [f.name for f in profile.all_fields if f.secret]
        for name in secrets:
            state = "stored in the OS keyring" if name in entry.secrets_set else "not set"
            out.line(f"  {name + ':':<10} {state}")
        missing = svc.missing_fields(entry)
        if missing:
            out.line(f"  missing:   {', '.join(missing)}")
        for k, v in sorted(entry.meta.items()):
            out.line(f"  meta.{k}: {v}")
        return EXIT_OK

    if action == "create":
        payload: dict[str, Any] = {}
        if args.config_file:
            data = _read_json_source(args.config_file, stdin, "config file")
            if not isinstance(data, dict):
                raise InputError("the config file must hold a JSON object")
            if data and set(data) <= set(ProviderInput.model_fields):
                payload.update(data)  # a partial provider entry
            else:
                payload["config"] = data  # the provider's config (settings and secrets)
        elif not args.no_prompt and stdin.isatty():
            payload["config"] = _prompt_fields(svc, args.template_id, out, stdin)
        for key, value in (
            ("id", args.provider_id),
            ("name", args.name),
            ("base_url", args.base_url),
            ("gpu", args.gpu),
        ):
            if value is not None:
                payload[key] = value
        entry = svc.create_provider(args.template_id, payload)
        if out.as_json:
            out.json(entry.model_dump(mode="json"))
        else:
            stored = ", ".join(entry.secrets_set) or "no secrets"
            out.line(f"created {entry.id} ({stored} stored in the OS keyring)")
            missing = svc.missing_fields(entry)
            if missing:
                out.note(f"still missing: {', '.join(missing)} (use `providers register`)")
        return EXIT_OK

    if action == "register":
        data = _read_json_source(args.config_file, stdin, "provider entry")
        entry, created = svc.register_provider(data)
        if out.as_json:
            out.json(entry.model_dump(mode="json"))
        else:
            out.line(f"{'created' if created else 'updated'} {entry.id}")
        return EXIT_OK

    if action == "remove":
        if args.all:
            victims = [p.id for p in svc.list_providers() if p.id != "local"]
            if (
                stdin.isatty()
                and not args.yes
                and not _confirm(
                    f"Remove {len(victims)} provider(s) ({', '.join(victims) or 'none'}) and every "
                    "stored credential of this home?",
                    stdin,
                    out,
                )
            ):
                out.note("nothing was removed")
                return EXIT_FAILED
            gone = svc.remove_all_providers()
            if out.as_json:
                out.json({"removed": gone})
            else:
                out.line(f"removed {len(gone)} provider(s); the keyring holds nothing of this home")
            return EXIT_OK
        entry = svc.remove_provider(args.id)
        if out.as_json:
            out.json({"removed": [entry.id]})
        else:
            out.line(f"removed {entry.id} and its stored credentials")
        return EXIT_OK

    if action == "health" and args.watch:
        return _watch(svc, out)

    if action in ("validate", "health"):
        return _checks(action, args, svc, out)

    if action == "trust-host":
        pinned = svc.trust_host(args.id, args.fingerprint)
        if out.as_json:
            out.json({"provider": args.id, **pinned.model_dump(mode="json")})
        else:
            out.line(f"pinned {pinned.fingerprint} for {args.id} ({pinned.host})")
        return EXIT_OK

    if action == "export":
        doc = svc.export_providers(include_secrets=args.include_secrets)
        text = json.dumps(doc, indent=2) + "\n"
        if args.output:
            from .store.paths import atomic_write_text

            atomic_write_text(Path(args.output), text, mode=0o600)
            out.note(f"exported {len(doc['providers'])} provider(s) to {args.output}")
        else:
            out.stdout.write(text)
        if args.include_secrets:
            out.note("warning: this export holds credentials in plain text; keep it private")
        return EXIT_OK

    if action == "import":
        data = _read_json_source(args.file, stdin, "import file")
        overwrite = not args.no_overwrite
        plan = svc.plan_import(data, replace=args.replace, overwrite=overwrite)
        lines = plan.describe()
        if args.dry_run:
            if out.as_json:
                out.json(plan.model_dump(mode="json"))
            else:
                for line in lines or ["nothing to import"]:
                    out.line(line)
            return EXIT_OK
        if args.replace:
            for line in lines:
                out.note(line)
            if (
                stdin.isatty()
                and not args.yes
                and plan.delete
                and not _confirm("Go ahead?", stdin, out)
            ):
                out.note("nothing was imported")
                return EXIT_FAILED
        report = svc.import_providers(data, replace=args.replace, overwrite=overwrite)
        if out.as_json:
            out.json(report.plan.model_dump(mode="json"))
        else:
            out.line(
                f"imported {len(report.imported)} provider(s): "
                f"{', '.join(report.imported) or 'none'}"
                + (f"; skipped {', '.join(report.plan.skip)}" if report.plan.skip else "")
            )
            if report.imported:
                out.note("imported providers are not active until validated on this machine")
            if report.plan.backup:
                out.note(f"the previous registry was saved to {report.plan.backup}")
        return EXIT_OK
    raise AssertionError(action)


def _checks(kind: str, args: argparse.Namespace, svc: Service, out: Output) -> int:
    """`sky check`-style: every provider at once, its status, why, what to fix, how long."""
    if args.all and args.ids:
        raise InputError("give provider ids or --all, not both")
    if args.timeout is not None and not 0 < args.timeout <= 600:
        raise InputError("--timeout must be between 0 and 600 seconds", fields=["timeout"])
    if not out.as_json:
        out.note(
            f"{'Validating' if kind == 'validate' else 'Checking the health of'} "
            f"{', '.join(args.ids) if args.ids else 'all providers'} ..."
        )
    entries = {p.id: p for p in svc.list_providers()}
    results = svc.run_checks(kind, args.ids or None, timeout_s=args.timeout)  # type: ignore[arg-type]
    if out.as_json:
        out.json([r.model_dump(mode="json") for r in results])
    else:
        good = {"valid", "healthy"}
        rows = []
        for r in results:
            mark = "ok" if r.status in good else ("~" if r.status == "degraded" else "!!")
            fix = ", ".join(r.fields) or "-"
            ms = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
            who = r.detail.get("identity")
            name = r.provider if entries[r.provider].enabled else f"{r.provider} (disabled)"
            rows.append([mark, name, r.status, fix, ms, str(who) if who else "-"])
        out.table(["", "PROVIDER", "STATUS", "FIX", "TIME", "IDENTITY"], rows)
        out.line()
        for r in results:
            out.line(f"{r.provider}: {r.message}")
        skipped = [p for p in entries if p not in {r.provider for r in results}]
        if skipped and not args.ids:
            out.line(
                f"not checked (disabled; enable them or name them to check): {', '.join(skipped)}"
            )
    if kind == "validate":
        return EXIT_OK if all(r.status == "valid" for r in results) else EXIT_FAILED
    return EXIT_FAILED if any(r.status == "unhealthy" for r in results) else EXIT_OK


def _watch(svc: Service, out: Output) -> int:
    """Run the health monitor in the foreground: one line per check, until interrupted."""
    import asyncio

    def show(results: list[Any]) -> None:
        for r in results:
            if out.as_json:
                out.stdout.write(json.dumps(r.model_dump(mode="json")) + "\n")
            else:
                out.line(f"{r.checked_at:%H:%M:%S} {r.provider}: {r.status} - {r.message}")
            out.stdout.flush()

    out.note(
        f"watching {', '.join(svc.monitor.watched()) or 'no provider (enable and validate one)'}"
        f" every {svc.get_setting('health.interval_s')} s; Ctrl+C stops"
    )
    asyncio.run(svc.monitor.run_forever(asyncio.Event(), show))
    return EXIT_OK


def _minutes(value: float) -> str:
    if value == 0:
        return "none"
    if value < 1:
        return f"{value * 60:g} s"
    return f"{value:g} min"


def _prompt_fields(svc: Service, template_id: str, out: Output, stdin: TextIO) -> dict[str, Any]:
    """Ask for each auth field in a terminal; secrets are read without echo."""
    profile = svc.template(template_id)
    config: dict[str, Any] = {}
    for f in profile.auth_fields:
        label = f"{f.label} ({f.name}{', optional' if not f.required else ''})"
        if f.kind == "json_file":
            path = _ask(f"{label} - path to the JSON key file: ", out, stdin)
            if path:
                try:
                    config[f.name] = Path(path).expanduser().read_text(encoding="utf-8")
                except OSError as exc:
                    raise InputError(
                        f"cannot read {path!r}: {exc.strerror}", fields=[f.name]
                    ) from None
        elif f.secret:
            value = getpass.getpass(f"{label} (hidden): ", stream=out.stderr)
            if value:
                config[f.name] = value
        else:
            hint = (
                f" [{'/'.join(f.choices[:6])}{'...' if len(f.choices) > 6 else ''}]"
                if f.choices
                else ""
            )
            value = _ask(f"{label}{hint}: ", out, stdin)
            if value:
                config[f.name] = value
    return config


def _ask(question: str, out: Output, stdin: TextIO) -> str:
    out.stderr.write(question)
    out.stderr.flush()
    return stdin.readline().strip()


def _settings(args: argparse.Namespace, svc: Service, out: Output) -> int:
    from .core.settings import SETTINGS

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
                    [k, json.dumps(v), SETTINGS[k].help if k in SETTINGS else ""]
                    for k, v in values.items()
                ],
            )
        return EXIT_OK
    if args.action == "set":
        value = svc.set_setting(args.key, args.value)
        if out.as_json:
            out.json({args.key: value})
        else:
            out.line(f"{args.key} = {json.dumps(value)}")
        return EXIT_OK
    value = svc.unset_setting(args.key)
    if out.as_json:
        out.json({args.key: value})
    else:
        out.line(f"{args.key} reset to {json.dumps(value)}")
    return EXIT_OK


def _advise(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    data = _read_json_source(args.request, stdin, "advice request")
    advice = svc.advise(data)
    if not args.text:
        out.json(advice.model_dump(mode="json"))
        return EXIT_OK
    out.line(f"choice:    {advice.choice or 'none'}")
    _advice_lines(advice, out, policy=True)
    return EXIT_OK


def _advice_lines(advice: Advice, out: Output, *, policy: bool) -> None:
    """An advice for people: cost, reason, needs, (policy,) warnings, alternatives."""
    if advice.choice:
        out.line(f"cost:      {advice.estimated_cost} (~{_minutes(advice.estimated_minutes or 0)})")
    out.line(f"reason:    {advice.reason}")
    req = advice.requirements
    out.line(f"needs:     {req.vram_gb:g} GB VRAM, {req.gpu_hours:g} GPU-hours on the A10G")
    if policy and advice.policy_hint:
        out.line(f"policy:    {advice.policy_hint}")
    for w in advice.warnings:
        out.line(f"warning:   [{w.code}] {w.message}")
    rows = [
        [
            a.provider,
            "-"
            if a.estimated_cost_usd is None or not a.eligible
            else f"${a.estimated_cost_usd:.2f}",
            a.excluded_because or a.note or "",
        ]
        for a in advice.alternatives
    ]
    if rows:
        out.line()
        out.table(["ALTERNATIVE", "COST", "WHY NOT"], rows)


def _job_rows(jobs: Sequence[Any]) -> list[list[Any]]:
    from .service.jobs import jobs_summary

    rows = []
    for r in jobs_summary(jobs):
        warn = ", ".join(str(c) for c in r["warnings"]) or "-"
        who = " (your pick)" if r["decided_by"] == "user" else ""
        rows.append(
            [
                r["id"],
                _clip(r["title"], 60),
                r["kind"],
                r["status"],
                f"{r['provider'] or 'none'}{who}",
                r["estimated_cost"] or "-",
                _clip(warn, 60),
            ]
        )
    return rows


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _show_job(svc: Service, job: Any, out: Output) -> None:
    from .service.jobs import advice_of

    events = svc.job_events(job.id)
    advice = advice_of(job)
    if out.as_json:
        out.json(
            {
                **job.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
        return
    compute = job.compute
    out.line(f"job {job.id}: {job.title}")
    out.line(f"kind:      {job.kind} ({job.workload.asset_type}, {job.workload.items} items)")
    out.line(f"status:    {job.status}")
    if compute is not None and advice is not None:
        who = "you" if compute.decided_by == "user" else "the advisor"
        out.line(
            f"provider:  {compute.provider or 'none'} (decided by {who}, "
            f"{compute.decided_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        _advice_lines(advice, out, policy=False)
    out.line()
    out.line("audit trail:")
    for e in events:
        out.line(f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<8} {e.action:<12} {e.message}")


def _jobs(args: argparse.Namespace, svc: Service, out: Output, stdin: TextIO) -> int:
    if args.action in ("add", "import-summary"):
        what = "workload" if args.action == "add" else "import summary"
        data = _read_json_source(args.file, stdin, what)
        jobs = [svc.add_job(data)] if args.action == "add" else svc.import_summary(data)
        if out.as_json:
            out.json([j.model_dump(mode="json") for j in jobs])
        else:
            out.table(
                ["ID", "JOB", "KIND", "STATUS", "PROVIDER", "COST", "WARNINGS"], _job_rows(jobs)
            )
        return EXIT_OK
    if args.action == "list":
        jobs = svc.list_jobs(args.status)
        if out.as_json:
            from .service.jobs import jobs_summary

            out.json(list(jobs_summary(jobs)))
        elif not jobs:
            out.line(
                "No jobs queued. Add one with `comfyvn-gui jobs add FILE` or "
                "`comfyvn-gui jobs import-summary FILE`."
            )
        else:
            out.table(
                ["ID", "JOB", "KIND", "STATUS", "PROVIDER", "COST", "WARNINGS"], _job_rows(jobs)
            )
        return EXIT_OK
    if args.action == "show":
        _show_job(svc, svc.get_job(args.id), out)
        return EXIT_OK
    if args.action == "pick":
        if args.advisor == bool(args.provider):
            raise InputError(
                "give a provider id, or --advisor to go back to the advisor's choice",
                fields=["provider"],
            )
        job = svc.pick_provider(args.id, None if args.advisor else args.provider)
        if out.as_json:
            out.json(job.model_dump(mode="json"))
        else:
            compute = job.compute
            assert compute is not None
            out.line(
                f"job {job.id} runs on {compute.provider or 'no provider'} "
                f"(decided by {'you' if compute.decided_by == 'user' else 'the advisor'})"
            )
        return EXIT_OK
    changes = svc.readvise(args.because or "asked from the command line")
    if out.as_json:
        out.json(changes)
    elif not changes:
        out.line("no decision changed")
    else:
        for ch in changes:
            out.line(
                f"job {ch['job']}: {ch['previous'] or 'none'} -> {ch['provider'] or 'none'} "
                f"because {ch['because']}"
            )
    return EXIT_OK


def _gpus(svc: Service, out: Output) -> int:
    from .providers.local import describe

    snap = svc.local_snapshot(fresh=True)
    if out.as_json:
        out.json([g.model_dump(mode="json") for g in snap.gpus])
        return EXIT_OK
    if not snap.gpus:
        out.line(describe(snap)[0].upper() + describe(snap)[1:])
        return EXIT_OK
    out.table(
        ["INDEX", "GPU", "VRAM GB", "FREE GB", "LOAD"],
        [
            [
                g.index if g.index is not None else i,
                g.name,
                f"{g.vram_total_gb:g}",
                f"{g.vram_free_gb:g}",
                f"{g.utilization:.0%}",
            ]
            for i, g in enumerate(snap.gpus)
        ],
    )
    if snap.driver_version:
        out.line(f"driver {snap.driver_version}")
    return EXIT_OK


def _schemas(args: argparse.Namespace, out: Output) -> int:
    from .core.schemas import stale_schemas, write_schemas

    folder = Path(args.out)
    if args.check:
        stale = stale_schemas(folder)
        if stale:
            out.note(f"stale schemas in {folder}: {', '.join(stale)}; run `comfyvn-gui schemas`")
            return EXIT_FAILED
        out.line(f"schemas in {folder} are current")
        return EXIT_OK
    for path in write_schemas(folder):
        out.line(str(path))
    return EXIT_OK


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
        if args.command == "schemas":
            return _schemas(args, out)
        svc = Service()
        if args.command == "providers":
            return _providers(args, svc, out, stdin)
        if args.command == "settings":
            return _settings(args, svc, out)
        if args.command == "advise":
            return _advise(args, svc, out, stdin)
        if args.command == "jobs":
            return _jobs(args, svc, out, stdin)
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
