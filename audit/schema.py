"""The claim file's JSON Schema, for editors and other tools that check YAML as it is typed.

Derived from the pydantic models that load claim files (``audit.spec``), so it cannot drift from
what ``audit validate`` accepts field by field. The ``model``, ``data`` and ``train`` overrides are
partial RunConfigs (merged onto the defaults), so they get RunConfig's own sections, whose every
field has a default. What the schema cannot say (checks across fields, such as two variants being
two experiments, or a plateau schedule needing a held-out slice) is left to ``audit validate``.
"""

from __future__ import annotations

import json
from typing import Any

from audit.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from audit.spec import Claim

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
OVERRIDABLE = ("Overrides", "Profile")  # the $defs whose model/data/train are partial RunConfigs


def claim_schema() -> dict[str, Any]:
    """The JSON Schema of one claim file."""
    schema = Claim.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs.update(RunConfig.model_json_schema()["$defs"])
    for name in OVERRIDABLE:
        props = defs[name]["properties"]
        for section, model in SECTIONS.items():
            props[section] = {"$ref": f"#/$defs/{model.__name__}",
                              "description": f"overrides of the run's {section} section, merged onto the defaults"}
    return {"$schema": DIALECT, "$id": "alexnet-audit/claim.schema.json", **schema}


def claim_schema_json() -> str:
    return json.dumps(claim_schema(), indent=2, sort_keys=True) + "\n"
