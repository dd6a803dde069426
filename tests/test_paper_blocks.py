"""The claim files' ``paper`` blocks: later work in ``context`` always names its source (authors, year)."""

from __future__ import annotations

import re

import pytest

from audit.spec import load_claims

from .conftest import REPO

CLAIMS = load_claims([REPO / "claims"])
# "Zeiler & Fergus (2013, Table 3)", "Krizhevsky et al. (2012, §6.1)", "Mishkin, Sergievskiy & Matas (2016)"
SOURCE = re.compile(r"[A-Z][a-z]+(?: et al\.|(?:,? (?:& )?[A-Z][a-z]+)*) \((?:19|20)\d\d\b")


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_every_context_sentence_names_its_source(claim) -> None:  # noqa: ANN001 - a Claim
    sentences = re.split(r"(?<=[.;])\s+(?=[A-Z])", claim.paper.context.strip())
    assert claim.paper.context.strip(), f"{claim.id}: no context"
    assert [s for s in sentences if not SOURCE.search(s)] == [], claim.id
