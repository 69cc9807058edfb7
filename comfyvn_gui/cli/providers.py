"""``comfyvn-gui providers ...``: the registry, validation, health and host keys."""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from comfyvn_gui.core import wording
from comfyvn_gui.core.custom_terms import custom_terms
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.models import ProviderEntry, ProviderInput
from comfyvn_gui.service import Service

from .output import EXIT_FAILED, EXIT_OK, Output, _ask, _confirm, _read_json_source

if TYPE_CHECKING:
    from comfyvn_gui.core.advisor.models import Alternative


def _entry_row(svc: Service, p: Any) -> list[Any]:
    if svc.provider_problem(p) is not None:
        return [p.id, p.template_id, p.name, p.gpu or "-", "broken: template unknown (see below)"]
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
            vram = wording.vram(gpu.vram_gb if gpu else p.vram_floor_gb)
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
        problems = svc.provider_problems()
        if out.as_json:
            # A broken entry (unknown template) carries `problem`: the reason and the fix.
            out.json(
                [
                    p.model_dump(mode="json")
                    | ({"problem": problems[p.id]} if p.id in problems else {})
                    for p in entries
                ]
            )
            return EXIT_OK
        out.table(["ID", "TEMPLATE", "NAME", "GPU", "STATE"], [_entry_row(svc, p) for p in entries])
        for why in problems.values():
            out.line()
            out.line(why)
        return EXIT_OK

    if action == "show":
        entry = svc.get_provider(args.id)
        problem = svc.provider_problem(entry)
        if out.as_json:
            out.json(entry.model_dump(mode="json") | ({"problem": problem} if problem else {}))
            return EXIT_OK
        if problem is not None:
            out.line(f"{entry.name} ({entry.id})")
            out.line(f"  template:  {entry.template_id} (unknown to this version)")
            out.line(f"  problem:   {problem}")
            return EXIT_OK
        profile = svc.template(entry.template_id)
        out.line(f"{entry.name} ({entry.id})")
        out.line(f"  template:  {profile.name} [{entry.template_id}]")
        out.line(f"  enabled:   {'yes' if entry.enabled else 'no'}")
        out.line(f"  active:    {'yes' if entry.active else 'no (not validated here yet)'}")
        out.line(f"  gpu:       {entry.gpu or profile.default_gpu}")
        terms = custom_terms(profile, entry.config)  # a custom endpoint states its own
        priced = _advised_price(svc, entry)
        if priced is not None and priced.hourly_usd is not None:
            cost = wording.hourly_price(priced.hourly_usd)
            source = wording.price_origin(priced.price_source, priced.prices_as_of)
            if priced.machine:
                source += f", {priced.machine}"
        else:
            cost, source = (
                "no known price",
                (priced.price_note if priced else None)
                or ("set meta.hourly_usd" if terms is None else "state its price"),
            )
        billing = terms.billing if terms is not None else profile.billing
        assumed = ", assumed" if billing.assumed else ""
        out.line(
            f"  cost:      {cost} ({source}; billed per "
            f"{wording.minutes(billing.increment_minutes)}, "
            f"minimum {wording.minutes(billing.minimum_minutes)}"
            f"{assumed})"
        )
        zones = terms.zones if terms is not None else profile.zones
        out.line(f"  zones:     {', '.join(zones) or '-'}")
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
        if args.output:
            n = svc.export_providers_to(Path(args.output), include_secrets=args.include_secrets)
            out.note(f"exported {n} provider(s) to {args.output}")
        else:
            doc = svc.export_providers(include_secrets=args.include_secrets)
            out.stdout.write(json.dumps(doc, indent=2) + "\n")
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
            ms = wording.milliseconds(r.latency_ms) if r.latency_ms is not None else "-"
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


def _advised_price(svc: Service, entry: ProviderEntry) -> Alternative | None:
    """The price the advisor gives ``entry`` now (its machine, live or catalog, your override):
    a what-if with this provider alone, so ``show`` never says another price than the jobs."""
    advice = svc.advise(
        {
            "workload": {"kind": "translation"},
            "providers": [entry.model_dump(mode="json")],
            "local": {"gpus": [], "source": "request"},
            "live_prices": True,
        }
    )
    return next(
        (a for a in [advice.chosen, *advice.alternatives] if a and a.provider == entry.id), None
    )
