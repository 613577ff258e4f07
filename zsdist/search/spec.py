"""A search file ([run] + [search] in TOML) → a frozen SearchSpec, validated against the registries before anything
runs; unknown keys are refused with the closest known key."""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from zsdist.analysis.derived import AZ_COMPONENTS
from zsdist.errors import ZsdistError

COSTS = ("latency", "flops", "params")  # latency on a named device (measured, table or predicted); proxies

_RUN_KEYS = ("name", "output", "seed")
_SEARCH_KEYS = ("space", "dataset", "objective", "constraints", "budget", "strategy", "seed", "batch_size",
                "shard_size", "parallel", "max_candidates", "device", "num_cpus", "num_gpus", "arch_timeout_s",
                "latency_batch_size", "data")
_STRATEGY_KEYS = {"random": ("name",), "evolution": ("name", "population", "tournament"),
                  "halving": ("name", "screen", "eta")}


@dataclass(frozen=True)
class Objective:
    """What the search maximises: one proxy (its raw value, direction applied), or a label-free combination of
    proxies' ranks among the architectures the search has evaluated (rank / N, ties averaged, nan lowest): a
    weighted sum of normalised ranks, or AZ-NAS's Σ ln(rank / N)."""

    kind: str  # proxy | ranks | log_ranks
    proxies: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def label(self) -> str:
        if self.kind == "proxy":
            return self.proxies[0]
        if self.kind == "log_ranks" and self.proxies == AZ_COMPONENTS:
            return "az_nas"
        terms = ", ".join(f"{p} × {w:g}" for p, w in zip(self.proxies, self.weights))
        return f"{'Σ ln(rank/N)' if self.kind == 'log_ranks' else 'Σ rank/N'} of {terms}"


@dataclass(frozen=True)
class Constraint:
    cost: str  # one of COSTS
    limit: float  # the largest allowed value (ms for latency)
    device: str = ""  # latency only

    @property
    def name(self) -> str:
        return f"latency_ms@{self.device}" if self.cost == "latency" else self.cost


@dataclass(frozen=True)
class StrategySpec:
    name: str  # random | evolution | halving
    population: int = 64  # evolution: the population (its oldest member dies when a child is born)
    tournament: int = 16  # evolution: members sampled to pick each parent
    screen: tuple[str, ...] = ()  # halving: cheap proxies, cheapest first, each screening before the next rung
    eta: int = 4  # halving: a rung promotes its best 1/eta


@dataclass(frozen=True)
class SearchSpec:
    name: str
    output: str
    seed: int  # the proxies' seed (image batch and init), as a launch's [run] seed: part of every row
    space: str
    dataset: str
    objective: Objective
    constraints: tuple[Constraint, ...]
    budget: int  # architectures whose objective is computed (cost queries and screening are counted apart)
    strategy: StrategySpec
    search_seed: int = 0  # the strategy's own random choices
    batch_size: int = 64
    shard_size: int = 8  # candidates per Ray task
    parallel: int = 4  # batches in flight; a setting because a batch is proposed from the batches before it
    max_candidates: int = 0  # architectures proposed at most (0: 20 × budget), so a tight constraint ends
    device: str = "cpu"
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    arch_timeout_s: float = 600.0
    latency_batch_size: int = 1
    data: str = ""  # the dataset's images from this file or folder instead of the reference data
    text: str = field(default="", compare=False)

    @property
    def config_hash(self) -> str:
        """Every setting that changes a number or the trajectory (not the output folder)."""
        config = {k: v for k, v in asdict(self).items() if k not in ("output", "text")}
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        return f"{self.name}-{self.config_hash}"

    @property
    def candidates_cap(self) -> int:
        return self.max_candidates or 20 * self.budget

    @property
    def ladder(self) -> tuple[Objective, ...]:
        """The score of each rung: the screening proxies (halving), then the objective."""
        return tuple(Objective("proxy", (p,), (1.0,)) for p in self.strategy.screen) + (self.objective,)

    @property
    def cost_proxies(self) -> tuple[str, ...]:
        return tuple(c.cost for c in self.constraints if c.cost != "latency")

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.device for c in self.constraints if c.cost == "latency"))


def check_keys(raw: dict, allowed: tuple[str, ...], where: str) -> None:
    """Refuse unknown keys, naming the closest allowed one."""
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ZsdistError(f"{where} has unknown key '{key}'{hint} (allowed: {', '.join(allowed)})")


def _typed(raw: dict, key: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
    if key not in raw:
        if default is None:
            raise ZsdistError(f"{where} is missing '{key}'")
        return default
    value = raw[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ZsdistError(f"{where}.{key} must be {' or '.join(k.__name__ for k in kinds)}, not {value!r}")
    return value


def _positive(value: float, where: str) -> float:
    if value <= 0:
        raise ZsdistError(f"{where} must be positive, not {value!r}")
    return value


def _count(raw: dict, key: str, where: str, default: int | None = None) -> int:
    return int(_positive(_typed(raw, key, int, where, default), f"{where}.{key}"))


def _default(cls: Any, name: str) -> Any:  # a dataclass
    return cls.__dataclass_fields__[name].default


def _objective(raw: Any) -> Objective:
    from zsdist.proxies.catalog import proxy_names

    where = "[search].objective"
    if raw == "az_nas":
        return Objective("log_ranks", AZ_COMPONENTS, (1.0,) * len(AZ_COMPONENTS))
    if isinstance(raw, str):
        return Objective("proxy", tuple(proxy_names([raw])), (1.0,))
    if not isinstance(raw, dict):
        raise ZsdistError(f'{where} must be a proxy name, "az_nas", or {{ ranks = {{ proxy = weight, ... }} }}')
    check_keys(raw, ("ranks",), where)
    weights = _typed(raw, "ranks", dict, where)
    if not weights:
        raise ZsdistError(f"{where}.ranks names no proxy")
    for proxy in weights:
        _positive(_typed(weights, proxy, (int, float), f"{where}.ranks"), f"{where}.ranks.{proxy}")
    names = tuple(proxy_names(list(weights)))
    return Objective("ranks", names, tuple(float(weights[p]) for p in names))


def _constraint(raw: Any, index: int) -> Constraint:
    where = f"[search].constraints[{index}]"
    if not isinstance(raw, dict):
        raise ZsdistError(f'{where} must be a table like {{ cost = "latency", device = "edgegpu", max = 5.0 }}')
    cost = _typed(raw, "cost", str, where)
    if cost not in COSTS:
        close = difflib.get_close_matches(cost, COSTS, n=1)
        raise ZsdistError(f"{where}.cost '{cost}' is unknown{f'; did you mean {close[0]!r}?' if close else ''} "
                          f"(known: {', '.join(COSTS)})")
    check_keys(raw, ("cost", "device", "max") if cost == "latency" else ("cost", "max"), where)
    limit = float(_positive(_typed(raw, "max", (int, float), where), f"{where}.max"))
    if cost != "latency":
        return Constraint(cost, limit)
    from zsdist.hardware import DEVICES

    return Constraint(cost, limit, DEVICES.get(_typed(raw, "device", str, where)).name)


def _strategy(raw: Any) -> StrategySpec:
    from zsdist.proxies.catalog import proxy_names
    from zsdist.search.strategies import STRATEGIES

    where = "[search].strategy"
    table = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(table, dict):
        raise ZsdistError(f'{where} must be a name ("evolution") or a table {{ name = "evolution", ... }}')
    name = _typed(table, "name", str, where)
    STRATEGIES.get(name)
    check_keys(table, _STRATEGY_KEYS[name], where)
    strategy = StrategySpec(
        name,
        population=_count(table, "population", where, _default(StrategySpec, "population")),
        tournament=_count(table, "tournament", where, _default(StrategySpec, "tournament")),
        screen=tuple(proxy_names(_typed(table, "screen", list, where, []))),
        eta=_typed(table, "eta", int, where, _default(StrategySpec, "eta")),
    )
    if strategy.tournament > strategy.population:
        raise ZsdistError(f"{where}: tournament ({strategy.tournament}) cannot exceed population "
                          f"({strategy.population})")
    if name == "halving" and (not strategy.screen or strategy.eta < 2):
        raise ZsdistError(f"{where}: halving needs screen = [cheap proxies, ...] and eta ≥ 2")
    return strategy


def parse_search(text: str, source: str = "<search>") -> SearchSpec:
    from zsdist.spaces import create_space

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZsdistError(f"malformed search file {source}: {exc}") from None
    check_keys(raw, ("run", "search"), source)
    run = _typed(raw, "run", dict, source)
    search = _typed(raw, "search", dict, source)
    check_keys(run, _RUN_KEYS, f"{source} [run]")
    check_keys(search, _SEARCH_KEYS, f"{source} [search]")
    where = "[search]"
    space = create_space(_typed(search, "space", str, where))
    constraints = _typed(search, "constraints", list, where, [])

    def setting(key: str, kind: type | tuple[type, ...]) -> Any:
        return _typed(search, key, kind, where, _default(SearchSpec, key))

    spec = SearchSpec(
        name=_typed(run, "name", str, "[run]"),
        output=_typed(run, "output", str, "[run]", "results"),
        seed=_typed(run, "seed", int, "[run]", 0),
        space=space.name,
        dataset=space.check_dataset(_typed(search, "dataset", str, where)),
        objective=_objective(_typed(search, "objective", (str, dict), where)),
        constraints=tuple(_constraint(c, i) for i, c in enumerate(constraints)),
        budget=_count(search, "budget", where),
        strategy=_strategy(_typed(search, "strategy", (str, dict), where)),
        search_seed=_typed(search, "seed", int, where, 0),
        batch_size=_count(search, "batch_size", where, _default(SearchSpec, "batch_size")),
        shard_size=_count(search, "shard_size", where, _default(SearchSpec, "shard_size")),
        parallel=_count(search, "parallel", where, _default(SearchSpec, "parallel")),
        max_candidates=setting("max_candidates", int),
        device=setting("device", str),
        num_cpus=float(setting("num_cpus", (int, float))),
        num_gpus=float(setting("num_gpus", (int, float))),
        arch_timeout_s=float(setting("arch_timeout_s", (int, float))),
        latency_batch_size=_count(search, "latency_batch_size", where, _default(SearchSpec, "latency_batch_size")),
        data=setting("data", str),
        text=text,
    )
    if spec.max_candidates and spec.max_candidates < spec.budget:
        raise ZsdistError(f"{where}.max_candidates ({spec.max_candidates}) is below the budget ({spec.budget})")
    if spec.budget > space.size:
        raise ZsdistError(f"{where}.budget {spec.budget} exceeds the {space.size:,d} architectures of {space.name}")
    return spec


def load_search(path: str | Path) -> SearchSpec:
    path = Path(path)
    if not path.is_file():
        raise ZsdistError(f"search file {path} does not exist")
    return parse_search(path.read_text(), str(path))
