"""A pre-registered audit: the file, committed before its runs, that fixes what will count.

It names the profile, the claims and, per claim, the measures in the multiplicity family (the first
is the claim's primary measure), the seeds, and the pilot sd behind them; α, the target power and
the tuning seeds. Every other measure of those claims is exploratory. Runs are tagged with the
audit's id and *digest* (a hash of the audit file and the claims it names, as resolved), so a report
can tell runs made under this version of the registration from runs made before or under another.

The digest must change only when a registration's meaning does. A field added to the claim schema
after the first audits were registered is left out of it while it holds its default (``ADDED_FIELDS``);
otherwise adding an optional key to the schema would re-label every registered run as "made under
another version of this audit" (it once did: ``tests/test_registration.py`` now guards it).
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from audit.analyse.measure import Family
from audit.analyse.stats import ALPHA, POWER, seeds_for_power
from audit.spec import Claim, SpecError, _locate, _read_yaml, _Strict, _validate, load_claim


class Pilot(_Strict):
    """The sd of a measure's per-seed effects (additive scale: log for ratios) seen in probe runs."""

    sd: float = Field(gt=0)
    df: int = Field(ge=1, description="degrees of freedom: the probe seeds minus one")
    source: str = Field(description="which runs measured it")


class ClaimEntry(_Strict):
    measures: list[str] = Field(min_length=1, description="in the family; the first is the primary measure")
    seeds: int = Field(ge=3)
    pilot: dict[str, Pilot] = {}


class AuditFile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    title: str
    profile: str
    alpha: float = Field(ALPHA, gt=0, lt=1)
    power: float = Field(POWER, gt=0, lt=1)
    tuning_seeds: int = Field(2, ge=1)
    claims_dir: str = Field("..", description="where the claim files are, relative to this file")
    claims: dict[str, ClaimEntry] = Field(min_length=1)
    notes: str = ""

    @model_validator(mode="after")
    def _pilots_in_family(self) -> AuditFile:
        for cid, entry in self.claims.items():
            for mid in entry.pilot:
                if mid not in entry.measures:
                    raise ValueError(f"claims.{cid}.pilot.{mid}: a pilot is given only for measures in the family")
        return self


@dataclass
class PowerRow:
    claim: str
    measure: str
    primary: bool
    seeds: int
    needed: int | None       # from the pilot; None: no pilot given (or no finite answer)
    pilot: Pilot | None

    @property
    def underpowered(self) -> bool:
        return self.needed is None or self.seeds < self.needed


# Fields of a claim's measures and profiles added after the first audits were registered (commit
# 1327d25): left out of the digest while they hold their default. A new schema field with a default
# goes here too, or the tripwire test (tests/test_registration.py) fails.
ADDED_FIELDS: dict[str, tuple[str, ...]] = {"measure": ("epoch", "members"), "profiles": ("tune_param",)}


def _at_default(model: BaseModel, fields: tuple[str, ...]) -> set[str]:
    return {f for f in fields if getattr(model, f) == type(model).model_fields[f].default}


def claim_digest_json(claim: Claim, profile: str | None = None) -> str:
    """The claim as resolved, in JSON, without the later-added fields that still hold their default.

    ``profile``: only that profile of the claim (what a registration at that profile depends on);
    None: every profile, as digests were computed before 2026-12-04 (``LEGACY_DIGESTS``).
    """
    other = {k for k in claim.profiles if profile is not None and k != profile}
    exclude = {"measure": {i: _at_default(m, ADDED_FIELDS["measure"]) for i, m in enumerate(claim.measure)},
               "profiles": {k: True if k in other else _at_default(p, ADDED_FIELDS["profiles"])
                            for k, p in claim.profiles.items()}}
    return claim.model_dump_json(exclude={key: {k: v for k, v in part.items() if v} for key, part in exclude.items()})


# Registrations whose runs were tagged before the digest covered only the registered profile: the
# whole-claim digest their runs carry, and the profile digest that registration has. Their runs stay
# "made under this registration" while the audit's digest is still that one (nothing it depends on
# has changed); tests/test_registration.py recomputes both from the files of commit 88720a3.
LEGACY_DIGESTS: dict[str, tuple[str, str]] = {
    "cifar": ("3139347a025f", "2e666f2f423b"),
    "cifar2012": ("17fd4fe5e9a6", "c3e183f37e34"),
}


@dataclass
class Registration:
    path: Path
    spec: AuditFile
    claims: list[Claim]
    files: list[Path]

    @property
    def family(self) -> Family:
        members = tuple((cid, mid) for cid, e in self.spec.claims.items() for mid in e.measures)
        seeds = tuple((cid, e.seeds) for cid, e in self.spec.claims.items())
        return Family(self.spec.id, self.spec.profile, members, self.spec.alpha, self.spec.tuning_seeds, seeds)

    @property
    def seeds(self) -> dict[str, int]:
        return {cid: e.seeds for cid, e in self.spec.claims.items()}

    @property
    def digest(self) -> str:
        """sha256 over the audit file and each claim at the audit's profile, as resolved (presets included).

        Only the registered profile counts: a claim's other profiles (another tier's settings) can
        change without changing what this audit's runs mean. 12 hex digits.
        """
        return self._digest(self.spec.profile)

    def _digest(self, profile: str | None) -> str:
        h = hashlib.sha256(self.path.read_bytes())
        for claim in self.claims:
            h.update(b"\0" + claim_digest_json(claim, profile).encode())
        return h.hexdigest()[:12]

    @property
    def tag(self) -> str:
        """What runs made under this registration carry in ``audit.audits``."""
        return f"{self.spec.id}@{self.digest}"

    @property
    def tags(self) -> set[str]:
        """Every tag a run made under this registration may carry: today's, and the pre-2026-12-04 one."""
        legacy, profile_digest = LEGACY_DIGESTS.get(self.spec.id, (None, None))
        return {self.tag} | ({f"{self.spec.id}@{legacy}"} if legacy and self.digest == profile_digest else set())

    def commit(self) -> str:
        """The commit that last changed the audit file, or 'uncommitted' (changed since, or no git)."""
        return committed(self.path)

    def power_rows(self) -> list[PowerRow]:
        """Per family member: the seeds registered and those an 80%-power calculation asks for."""
        size = len(self.family.members)
        claims = {c.id: c for c in self.claims}
        rows = []
        for cid, entry in self.spec.claims.items():
            for i, mid in enumerate(entry.measures):
                m = next(x for x in claims[cid].measure if x.id == mid)
                pilot = entry.pilot.get(mid)
                smallest = m.additive(claims[cid].smallest_effect(m, self.spec.profile))
                needed = (seeds_for_power(pilot.sd, pilot.df, smallest, size, self.spec.alpha,
                                          self.spec.power) if pilot else None)
                rows.append(PowerRow(cid, mid, i == 0, entry.seeds, needed, pilot))
        return rows


def committed(path: Path) -> str:
    """The last commit of ``path`` when the file is unchanged since; else 'uncommitted'."""
    folder = str(path.resolve().parent)
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=folder, capture_output=True,
                               text=True, timeout=10)
        sha = subprocess.run(["git", "log", "-1", "--format=%H", "--", path.name], cwd=folder, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "uncommitted"
    if dirty.returncode or sha.returncode or dirty.stdout.strip() or not sha.stdout.strip():
        return "uncommitted"
    return sha.stdout.strip()


def load_registration(path: str | Path) -> Registration:
    """Parse an audit file and the claims it names; every problem is one FILE:LINE: key: message."""
    path = Path(path)
    raw, index = _read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}:1: an audit file is a mapping of keys (id, title, profile, claims, ...)")
    spec = _validate(AuditFile, raw, path, index)
    folder = (path.parent / spec.claims_dir).resolve()
    claims, files = [], []
    for cid, entry in spec.claims.items():
        where = ("claims", cid)
        file = folder / f"{cid}.yaml"
        if not file.is_file():
            raise SpecError(f"{path}:{_locate(index, where)}: claims.{cid}: no claim file {file}")
        claim = load_claim(file)
        ids = [m.id for m in claim.measure]
        for i, mid in enumerate(entry.measures):
            if mid not in ids:
                raise SpecError(f"{path}:{_locate(index, where + ('measures', i))}: claims.{cid}.measures: "
                                f"{mid!r} is not a measure of {cid} (one of {ids})")
        if spec.profile not in claim.profiles:
            raise SpecError(f"{path}:{_locate(index, ('profile',))}: profile: claim {cid} has no profile "
                            f"{spec.profile!r}")
        claims.append(claim)
        files.append(file)
    return Registration(path, spec, claims, files)
