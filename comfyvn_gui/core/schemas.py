"""JSON Schemas of the public objects, generated from the pydantic models.

``comfyvn-gui schemas --out docs/schemas`` writes them; a test checks that the published
copies are current.
"""

from __future__ import annotations

import json
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
