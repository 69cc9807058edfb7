"""JSON Schemas of the public objects, generated from the pydantic models.

``comfyvn-gui schemas --out docs/schemas`` writes them; a test checks that the published
copies are current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .advisor import Advice, AdviceRequest
from .catalog import GpuSpec, ProviderProfile
from .checks import HealthResult, LocalSnapshot, ValidationResult
from .models import ExportDocument, ImportPlan, ProviderEntry, ProviderInput
from .summary import ImportSummary
from .workload import Workload

PUBLIC_MODELS: dict[str, type[BaseModel]] = {
    "provider-entry": ProviderEntry,
    "provider-input": ProviderInput,
    "export": ExportDocument,
    "import-plan": ImportPlan,
    "provider-profile": ProviderProfile,
    "gpu": GpuSpec,
    "validation-result": ValidationResult,
    "health-result": HealthResult,
    "local-snapshot": LocalSnapshot,
    "workload": Workload,
    "advice-request": AdviceRequest,
    "advice": Advice,
    "import-summary": ImportSummary,
}


def schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for name, model in PUBLIC_MODELS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"https://comfyvn-gui.invalid/schemas/{name}.schema.json"
        out[f"{name}.schema.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in schemas().items():
        path = folder / filename
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(folder: Path) -> list[str]:
    """File names under ``folder`` that are missing or differ from the models."""
    stale = []
    for filename, schema in schemas().items():
        path = folder / filename
        if not path.exists() or path.read_text(encoding="utf-8") != render(schema):
            stale.append(filename)
    return stale
