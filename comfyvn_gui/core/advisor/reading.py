"""Reading advice requests: JSON to an :class:`AdviceRequest`, and a workload's requirements.

Every problem is an :class:`~comfyvn_gui.core.errors.InputError` naming the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from comfyvn_gui.core import json_input
from comfyvn_gui.core.catalog import Catalog
from comfyvn_gui.core.errors import InputError
from comfyvn_gui.core.estimator import estimate
from comfyvn_gui.core.input_errors import input_error
from comfyvn_gui.core.workload import Requirements, Workload

from .models import AdviceRequest

__all__ = ["check_request", "parse_request", "requirements_for"]


def parse_request(data: Any, catalog: Catalog) -> AdviceRequest:
    """An advice request from JSON data; :class:`InputError` naming the field when it is bad."""
    if not isinstance(data, dict):
        raise InputError(
            "an advice request is a JSON object with a 'workload' object "
            f"(got {type(data).__name__})",
            fields=["workload"],
        )
    json_input.check_value(data, where="the advice request")
    try:
        request = AdviceRequest.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc) from None
    check_request(request, catalog)
    return request


def check_request(request: AdviceRequest, catalog: Catalog) -> None:
    """What a request's schema cannot say: its providers' templates exist, ids are unique."""
    seen: set[str] = set()
    for i, p in enumerate(request.providers or []):
        where = f"providers.{i}"
        if p.template_id not in catalog.profiles:
            raise InputError(
                f"{where}.template_id: unknown template {p.template_id!r} "
                f"(known: {', '.join(sorted(catalog.profiles))})",
                fields=[f"{where}.template_id"],
            )
        if p.id in seen:
            raise InputError(f"{where}.id: {p.id!r} is given twice", fields=[f"{where}.id"])
        seen.add(p.id)


def requirements_for(workload: Workload, catalog: Catalog) -> Requirements:
    """The estimator's requirements; a malformed workflow graph is an :class:`InputError`."""
    try:
        return estimate(workload, catalog)
    except ValueError as exc:
        raise InputError(f"workload.workflow: {exc}", fields=["workload.workflow"]) from None
