"""TF2 sources share one layout but not one reference model: each table names its `runner:`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import MappingTableError
from ..plan import Plan
from ..readers import Source


def _model_garden(source: Source, plan: Plan) -> Any:
    from .model_garden import ModelGardenRunner

    return ModelGardenRunner(source, plan)


def _saved_model(source: Source, plan: Plan) -> Any:
    from .savedmodel import SavedModelRunner

    return SavedModelRunner(source, plan)


def _serving_signature(source: Source, plan: Plan) -> Any:
    from .savedmodel import ServingSignatureRunner

    return ServingSignatureRunner(source, plan)


TF2_RUNNERS: dict[str, Callable[[Source, Plan], Any]] = {
    "model-garden": _model_garden,
    "saved-model": _saved_model,
    "serving-signature": _serving_signature,
}


def tf2_runner(source: Source, plan: Plan) -> Any:
    """The reference model the source's table declares."""
    name = plan.table.runner
    if name not in TF2_RUNNERS:
        raise MappingTableError(
            f"mappings/{plan.table.name}.yaml: runner '{name}' is not one of "
            f"{', '.join(sorted(TF2_RUNNERS))}"
        )
    return TF2_RUNNERS[name](source, plan)
