"""The plan: claims × profile × variants × seeds (× learning-rate grid) → deduplicated RunConfigs.

Nothing trains here. Identical configs collapse into one run that serves every claim needing it
(the unmodified baseline serves several claims), and ``audit plan`` prints this matrix before
``audit run`` executes exactly it. Within one claim, two variants that resolve to the same run are a
mistake in the claim file (one run would count as both sides of a comparison): a SpecError.

A tuned variant (``lr_grid``) is planned in two stages: its grid runs on the tuning seeds (1000, ...),
then its verdict seeds at the rate chosen from them (``chosen``, read from the store by the caller).
Until that choice exists its verdict runs are *pending*: listed, not yet runnable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audit.config import RunConfig, deep_merge, flatten
from audit.record import Tag, evaluations_of
from audit.spec import PROBE_SEED_BASE, Claim, SpecError


@dataclass(frozen=True)
class Role:
    """Why a run is in the plan: which claim, variant, seed and (grid) learning rate."""

    claim: str
    variant: str
    seed: int
    lr: float | None = None    # the grid's value (a learning rate unless ``param`` says otherwise)
    tuning: bool = False
    probe: str | None = None   # a probe run: what it is meant to decide (never evidence for a verdict)
    param: str = "train.lr"    # the field the grid sets (the profile's tune_param)

    @property
    def setting(self) -> str:
        """The grid's value as a person reads it: 'lr 0.01', 'weight_decay 0.005'; '' off the grid."""
        return "" if self.lr is None else f"{self.param.split('.')[-1]} {self.lr:g}"


@dataclass
class PlannedRun:
    config: RunConfig
    roles: list[Role] = field(default_factory=list)
    extra_tags: dict[str, str] = field(default_factory=dict)  # e.g. the pre-registered audit it runs under
    evaluations: set[str] = field(default_factory=set)  # of its saved weights once finished (record.EVALUATIONS)

    @property
    def config_hash(self) -> str:
        return self.config.config_hash

    @property
    def claims(self) -> list[str]:
        return sorted({r.claim for r in self.roles})

    @property
    def shared(self) -> bool:
        return len(self.claims) > 1

    @property
    def label(self) -> str:
        """What a person reads: claims, variant, seed, rate and purpose."""
        role = self.roles[0]
        return (f"{','.join(self.claims)} {role.variant} seed {role.seed}" + (f" {role.setting}" if role.lr else "")
                + (" (tuning)" if self.tuning else " (probe)" if role.probe else ""))

    @property
    def tuning(self) -> bool:
        """Only tuning roles: the run chooses a setting and is never evidence for a verdict."""
        return all(r.tuning for r in self.roles)

    def tags(self, profile: str) -> dict[str, str]:
        """The audit.* tags: which claims and variants this run is evidence for, or tunes, and its seed."""
        first = self.roles[0]

        def joined(purpose: str) -> str:
            return ",".join(sorted({f"{r.claim}:{r.variant}" for r in self.roles if _purpose(r) == purpose}))

        probes = sorted({r.probe for r in self.roles if r.probe})
        return {Tag.CLAIMS: ",".join(self.claims), Tag.VARIANT: first.variant,
                Tag.VARIANTS: joined("evidence"), Tag.TUNING: joined("tuning"), Tag.PROBES: joined("probe"),
                Tag.SEED: str(first.seed), Tag.PROFILE: profile, Tag.PURPOSE: _purpose(first),
                **({Tag.PROBE_NOTE: " | ".join(probes)} if probes else {}), **self.extra_tags}


def _purpose(role: Role) -> str:
    return "probe" if role.probe else "tuning" if role.tuning else "evidence"


@dataclass(frozen=True)
class Pending:
    """Verdict runs that wait for their variant's learning rate to be chosen on the tuning seeds."""

    claim: str
    variant: str
    seeds: int


@dataclass
class Plan:
    profile: str
    runs: dict[str, PlannedRun] = field(default_factory=dict)  # config hash → run, in dependency order
    entries: int = 0
    pending: list[Pending] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def add(self, config: RunConfig, role: Role, evaluations: set[str] | None = None) -> None:
        self.entries += 1
        run = self.runs.setdefault(config.config_hash, PlannedRun(config, extra_tags=self.tags))
        if role not in run.roles:
            run.roles.append(role)
        run.evaluations |= evaluations or set()

    def ordered(self) -> list[PlannedRun]:
        """Tuning runs first (the pending verdict runs wait for them), then runs whose weights others start from."""
        done: set[str] = set()
        out: list[PlannedRun] = []

        def visit(run: PlannedRun) -> None:
            if run.config_hash in done:
                return
            if run.config.init_from and run.config.init_from in self.runs:
                visit(self.runs[run.config.init_from])
            done.add(run.config_hash)
            out.append(run)

        for run in sorted(self.runs.values(), key=lambda r: not r.tuning):
            visit(run)
        return out


def _data_override(data_path: str | None) -> dict[str, Any]:
    if data_path is None:
        return {}
    from audit.data.load import detect_source  # the data package owns layout knowledge

    absolute = str(Path(data_path).expanduser().resolve())
    return {"data": {"path": absolute, "source": detect_source(absolute)}}


def resolve(claim: Claim, profile: str, variant: str, seed: int, lr: float | None,
            data_path: str | None) -> RunConfig:
    """One fully resolved RunConfig, its data fingerprinted; init_from still names a variant (the caller fixes it)."""
    return with_fingerprint(resolve_with(claim, profile, variant, seed, lr, _data_override(data_path)))


def resolve_with(claim: Claim, profile: str, variant: str, seed: int, lr: float | None,
                 data: dict[str, Any], extra: dict[str, Any] | None = None) -> RunConfig:
    """``resolve`` with the --data override given as a tree, and ``extra`` overrides merged on top."""
    tree = claim.run_overrides(profile, variant)
    if "path" not in tree.get("data", {}):  # a path written in the claim file (a second data set) stays
        tree = deep_merge(tree, data)
    tree = deep_merge(tree, extra or {})
    tree["seed"] = seed
    if lr is not None:   # a grid's value: the learning rate, or the field the profile's tune_param names
        section, key = claim.profiles[profile].tune_param.split(".")
        tree = deep_merge(tree, {section: {key: lr}})
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SpecError(f"claim {claim.id}, profile {profile}, variant {variant}: "
                        f"{'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}") from None


def with_fingerprint(config: RunConfig) -> RunConfig:
    """The config with its data's content fingerprint, so that its identity does not hang on the path."""
    data = config.data
    if data.fingerprint or (data.path is None and data.source != "embedded"):
        return config   # generated data: its settings are its content
    from audit.data.load import EMBEDDED, source_fingerprint  # the data package owns listing and fingerprints

    path = EMBEDDED if data.source == "embedded" else Path(data.path or "").expanduser().resolve()
    fingerprint = source_fingerprint(data.source, str(path))
    return config.model_copy(update={"data": data.model_copy(update={"fingerprint": fingerprint})})


def same_run_message(claim: Claim, profile: str, a: str, b: str) -> str:
    """Why two variants of a claim are one run, and what to set so that they are two."""
    def own(variant: str) -> list[str]:
        extra = claim.profiles[profile].variants.get(variant)
        tree = deep_merge(claim.variants[variant].as_dict(), extra.as_dict() if extra else {})
        return sorted(flatten(tree))

    if not own(b) and own(a):
        a, b = b, a
    keys = own(b)
    if keys and all(k.startswith("data.") for k in keys):
        fix = f"set profiles.{profile}.variants.{b}.data.path to the data set {b} should train on"
    else:
        fix = f"give variants.{b} or profiles.{profile}.variants.{b} a setting that changes the run"
    why = f"{b}'s overrides ({', '.join(keys)}) change nothing at this profile" if keys else f"{b} changes nothing"
    return (f"claim {claim.id}, profile {profile}: variants {a} and {b} are the same run (network, initialisation, "
            f"data and training), so one run would count as both; {why}: {fix}")


def build_plan(claims: list[Claim], profile: str | None = None, seeds: int | dict[str, int] | None = None,
               data_path: str | None = None, chosen: dict[tuple[str, str], float] | None = None,
               tuning_seeds: int | None = None, tags: dict[str, str] | None = None,
               probe: str | None = None) -> Plan:
    """Expand claims into runs; ``profile`` None means each claim's default (smoke).

    ``seeds``: one count for every claim, or per claim id (a pre-registered audit's). ``chosen``:
    the learning rate chosen for each tuned (claim, variant) so far. ``tags`` go on every run.
    ``probe``: every run is a probe that decides what this note says (kept, shown, never evidence), on
    seeds 2000, 2001, ... (PROBE_SEED_BASE), so that no probe run is a verdict run with another role.
    """
    names = {profile or c.default_profile() for c in claims}
    plan = Plan(profile=profile or "/".join(sorted(names)), tags=tags or {})
    chosen = chosen or {}
    for claim in claims:
        pname = profile or claim.default_profile()
        if pname not in claim.profiles:
            raise SpecError(f"claim {claim.id} has no profile {pname!r} "
                            f"(it has: {', '.join(claim.profiles)})")
        prof = claim.profiles[pname]
        if prof.needs_data_path and data_path is None and not prof.data.get("path"):
            raise SpecError(f"claim {claim.id}, profile {pname}: needs --data PATH ({prof.description})")
        k = (seeds.get(claim.id) if isinstance(seeds, dict) else seeds) or prof.seeds
        seed_ids = [PROBE_SEED_BASE + i for i in range(k)] if probe else list(range(k))
        for variant, grid in prof.lr_grid.items():
            if probe:   # a probe tries every rate of the grid on its own seeds: nothing is chosen or pending
                for seed in seed_ids:
                    for lr in grid:
                        plan.add(resolve(claim, pname, variant, seed, lr, data_path),
                                 Role(claim.id, variant, seed, lr, probe=probe, param=prof.tune_param))
                continue
            for seed in prof.tuning_seed_ids(tuning_seeds):
                for lr in grid:
                    plan.add(resolve(claim, pname, variant, seed, lr, data_path),
                             Role(claim.id, variant, seed, lr, tuning=True, param=prof.tune_param))
            if (claim.id, variant) not in chosen:
                plan.pending.append(Pending(claim.id, variant, k))
        for seed in seed_ids:
            resolved: dict[str, RunConfig] = {}
            owner: dict[str, str] = {}  # config hash -> the variant that asked for it
            for variant in variant_order(claim):
                lr = chosen.get((claim.id, variant))
                if variant in prof.lr_grid and (lr is None or probe):
                    continue
                config = resolve(claim, pname, variant, seed, lr, data_path)
                parent = claim.variants[variant].init_from
                if parent:
                    config = config.model_copy(update={"init_from": resolved[parent].config_hash})
                first = owner.setdefault(config.config_hash, variant)
                if first != variant:
                    raise SpecError(same_run_message(claim, pname, first, variant))
                resolved[variant] = config
                plan.add(config, Role(claim.id, variant, seed, lr, probe=probe, param=prof.tune_param),
                         evaluations_of_variant(claim, variant))
    return plan


def evaluations_of_variant(claim: Claim, variant: str) -> set[str]:
    """The saved-weights evaluations (``record.EVALUATIONS``) whose metrics the claim reads of this variant."""
    return evaluations_of([m.metric for m in claim.measure if m.treatment == variant]
                          + [m.baseline_metric or m.metric for m in claim.measure if m.baseline == variant])


def variant_order(claim: Claim) -> list[str]:
    """Variants that others initialise from come first."""
    order: list[str] = []

    def visit(name: str, trail: tuple[str, ...] = ()) -> None:
        if name in order:
            return
        if name in trail:
            raise SpecError(f"claim {claim.id}: init_from forms a cycle through {name!r}")
        parent = claim.variants[name].init_from
        if parent:
            if parent not in claim.variants:
                raise SpecError(f"claim {claim.id}: variant {name} init_from {parent!r} is not a variant")
            visit(parent, trail + (name,))
        order.append(name)

    for name in claim.variants:
        visit(name)
    return order
