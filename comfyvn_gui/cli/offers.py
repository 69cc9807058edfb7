"""``comfyvn-gui offers``: every GPU the user can rent now, cheapest first (issue 21)."""

from __future__ import annotations

import argparse

from comfyvn_gui.core import wording
from comfyvn_gui.core.catalog import RESIDENCY_ZONES
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.service import Service

from .output import EXIT_FAILED, EXIT_OK, Output


def offers_command(args: argparse.Namespace, svc: Service, out: Output) -> int:
    if args.zone is not None and args.zone not in RESIDENCY_ZONES:
        raise InputError(
            f"--zone {args.zone!r} is not a residency zone; use one of "
            + ", ".join(sorted(RESIDENCY_ZONES)),
            fields=["zone"],
        )
    failed: list[str] = []
    if args.refresh:
        for record in svc.run_refresh_prices():
            if record.error and record.taken_at is None:
                failed.append(f"{record.provider}: {record.error}")
    offers = svc.offers(
        vram_gb=args.vram,
        gpu=args.gpu,
        zone=args.zone,
        max_price=args.max_price,
        spot=args.spot,
    )
    from comfyvn_gui.service.prices import age_text  # (lazy: only this command needs it)

    if out.as_json:
        out.json({"offers": [o.model_dump(mode="json") for o in offers], "failed": failed})
    elif offers:
        rows = []
        for o in offers:
            gpu = o.gpu if o.gpu_count == 1 else f"{o.gpu_count}x {o.gpu}"
            where = o.region or "any"
            if o.zone:
                where += f" ({o.zone})"
            increment = o.billing_increment_minutes
            rows.append(
                [
                    o.provider if o.configured else f"{o.provider} (not configured)",
                    o.machine or "-",
                    gpu + (" spot" if o.spot else ""),
                    "-" if o.vram_gb is None else f"{wording.number(o.vram_gb)} GB",
                    where,
                    wording.hourly_price(o.hourly_usd),
                    "-" if increment is None else wording.billing_step(increment),
                    o.source,
                    age_text(o.taken_at),
                ]
            )
        out.table(
            ["PROVIDER", "MACHINE", "GPU", "VRAM", "REGION", "PRICE", "BILLED", "SOURCE", "AGE"],
            rows,
        )
    else:
        out.line("no offer matches (loosen --vram, --gpu, --zone or --max-price)")
    for line in failed:
        out.note(f"comfyvn-gui: live prices could not be refreshed for {line}")
    return EXIT_FAILED if failed else EXIT_OK
