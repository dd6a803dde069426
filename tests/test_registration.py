"""A registration's digest changes when its meaning does, and only then.

Runs made under a pre-registered audit carry ``id@digest``; the report calls a run with another
digest "made under another version of this audit". Adding an optional field to the claim schema
once changed every digest and so disowned the committed evidence; these tests hold the digests of
the committed audits to the tags their committed runs carry.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from audit.registration import LEGACY_DIGESTS, claim_digest_json, load_registration
from tests.conftest import REPO

BEFORE_PROFILE_DIGESTS = "88720a3"   # the last commit whose digests covered every profile of a claim

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
    assert reg.tags & carried, (f"{path.name}: tags {sorted(reg.tags)} are none of {sorted(carried)} that its "
                                "runs carry; a schema field added with a default belongs in ADDED_FIELDS")


def test_the_digest_ignores_an_added_field_at_its_default_but_not_a_set_one() -> None:
    relu = next(c for c in load_registration(REPO / "claims" / "audits" / "cifar.yaml").claims if c.id == "relu")
    assert '"epoch"' in relu.model_dump_json()   # the field exists on every measure ...
    assert '"epoch"' not in claim_digest_json(relu) and '"members"' not in claim_digest_json(relu)  # ... unset

    measure = relu.measure[0].model_copy(update={"kind": "at_epoch", "epoch": 3})
    at_epoch = relu.model_copy(update={"measure": [measure, *relu.measure[1:]]})
    assert '"epoch":3' in claim_digest_json(at_epoch)   # a set value is part of what was registered


def _git_files(commit: str, pattern: str) -> dict[str, str]:
    """{path: text} of the files under ``pattern`` at ``commit``; skips when the clone lacks that history."""
    listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", pattern], cwd=REPO,
                             capture_output=True, text=True)
    if listing.returncode or not listing.stdout.strip():
        pytest.skip(f"commit {commit} is not in this clone's history (a shallow clone?)")
    return {name: subprocess.run(["git", "show", f"{commit}:{name}"], cwd=REPO, capture_output=True, text=True,
                                 check=True).stdout for name in listing.stdout.split()}


@pytest.mark.parametrize("audit_id", sorted(LEGACY_DIGESTS))
def test_a_legacy_digest_names_the_same_registration(audit_id: str, tmp_path: Path) -> None:
    """Runs tagged under the old whole-claim digest count as this registration's only because, at the
    last commit of that digest, the files gave both that digest and today's profile digest."""
    legacy, profile_digest = LEGACY_DIGESTS[audit_id]
    claims = tmp_path / "claims"
    for name, text in (_git_files(BEFORE_PROFILE_DIGESTS, "claims") | _git_files(BEFORE_PROFILE_DIGESTS,
                                                                                   "audit/presets")).items():
        target = claims / "profiles" / Path(name).name if name.startswith("audit/presets/") else tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    then = load_registration(claims / "audits" / f"{audit_id}.yaml")
    assert then._digest(None) == legacy          # what its runs carry: every profile of every claim
    assert then.digest == profile_digest          # the same files, digested at the audit's profile only
    now = load_registration(REPO / "claims" / "audits" / f"{audit_id}.yaml")
    assert now.digest == profile_digest and f"{audit_id}@{legacy}" in now.tags


def test_a_profile_digest_ignores_the_claims_other_profiles() -> None:
    """Another tier's settings can change without disowning this audit's runs; the audit's own cannot."""
    reg = load_registration(REPO / "claims" / "audits" / "cifar.yaml")
    lrn = next(c for c in reg.claims if c.id == "lrn")
    tiny = lrn.profiles["tiny"].model_copy(update={"description": "another tier's settings changed"})
    cifar = lrn.profiles["cifar"].model_copy(update={"description": "this audit's settings changed"})
    other_changed = lrn.model_copy(update={"profiles": {**lrn.profiles, "tiny": tiny}})
    own_changed = lrn.model_copy(update={"profiles": {**lrn.profiles, "cifar": cifar}})
    assert claim_digest_json(other_changed, "cifar") == claim_digest_json(lrn, "cifar")
    assert claim_digest_json(other_changed) != claim_digest_json(lrn)   # the legacy digest saw every profile
    assert claim_digest_json(own_changed, "cifar") != claim_digest_json(lrn, "cifar")
