"""A registration's digest changes when its meaning does, and only then.

Runs made under a pre-registered audit carry ``id@digest``; the report calls a run with another
digest "made under another version of this audit". Adding an optional field to the claim schema
once changed every digest and so disowned the committed evidence; these tests hold the digests of
the committed audits to the tags their committed runs carry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.registration import claim_digest_json, load_registration
from tests.conftest import REPO

AUDITS = sorted((REPO / "claims" / "audits").glob("*.yaml"))


def _evidence_tags(audit_id: str) -> set[str]:
    """The ``audit.audits`` entries of this audit id on the runs committed under results/."""
    tags = set()
    for run_json in (REPO / "results").glob("*/*/run.json"):
        carried = json.loads(run_json.read_text()).get("tags", {}).get("audit.audits", "")
        tags |= {t for t in carried.split(",") if t.split("@")[0] == audit_id}
    return tags


@pytest.mark.parametrize("path", AUDITS, ids=[p.stem for p in AUDITS])
def test_a_committed_audit_still_owns_its_committed_runs(path: Path) -> None:
    reg = load_registration(path)
    carried = _evidence_tags(reg.spec.id)
    if not carried:
        pytest.skip(f"no committed evidence under results/ was made under {reg.spec.id}")
    assert reg.tag in carried, (f"{path.name}: digest {reg.digest} is none of {sorted(carried)} that its runs "
                                "carry; a schema field added with a default belongs in ADDED_FIELDS")


def test_the_digest_ignores_an_added_field_at_its_default_but_not_a_set_one() -> None:
    relu = next(c for c in load_registration(REPO / "claims" / "audits" / "cifar.yaml").claims if c.id == "relu")
    assert '"epoch"' in relu.model_dump_json()   # the field exists on every measure ...
    assert '"epoch"' not in claim_digest_json(relu) and '"members"' not in claim_digest_json(relu)  # ... unset

    measure = relu.measure[0].model_copy(update={"kind": "at_epoch", "epoch": 3})
    at_epoch = relu.model_copy(update={"measure": [measure, *relu.measure[1:]]})
    assert '"epoch":3' in claim_digest_json(at_epoch)   # a set value is part of what was registered
