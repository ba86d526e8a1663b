"""TF2 sources share one layout but not one reference model: each table names its `runner:`."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import MappingTableError
from ..plan import Plan
from ..readers import Source

# runner name → (module, class), imported only when a table asks for it
TF2_RUNNERS: dict[str, tuple[str, str]] = {
    "keras-save-weights": (".keras_save_weights", "KerasSaveWeightsRunner"),
    "model-garden": (".model_garden", "ModelGardenRunner"),
    "saved-model": (".savedmodel", "SavedModelRunner"),
    "serving-signature": (".savedmodel", "ServingSignatureRunner"),
}


def _declared(plan: Plan) -> Any:
    name = plan.table.runner
    if name not in TF2_RUNNERS:
        raise MappingTableError(
            f"mappings/{plan.table.name}.yaml: runner '{name}' is not one of "
            f"{', '.join(sorted(TF2_RUNNERS))}"
        )
    module, cls = TF2_RUNNERS[name]
    return getattr(importlib.import_module(module, __package__), cls)


class Tf2Runner:
    """The reference model the source's table declares, built and described like any runner."""

    @staticmethod
    def reference(source: Source, plan: Plan) -> str:
        return _declared(plan).reference(source, plan)

    def __new__(cls, source: Source, plan: Plan) -> Any:
        return _declared(plan)(source, plan)
