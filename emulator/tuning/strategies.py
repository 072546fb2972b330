"""Which hyperparameters a tuning job's next training job gets (`Strategy.propose`), and which running
jobs to stop early on their intermediate objective values (`Stopper`).

Proposals are pure functions of (seed, job index, finished history): nothing lives only in memory,
so a tuning job resumed after a restart proposes exactly what it would have.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from dataclasses import dataclass
from typing import Any

from .space import Range, grid_points

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """One finished training job as a strategy sees it: its point and its objective (None: no metric)."""

    point: dict[str, Any]
    value: float | None


class Strategy:
    def __init__(self, space: list[Range], seed: int, minimize: bool) -> None:
        self.space, self.seed, self.minimize = space, seed, minimize

    def propose(self, index: int, history: list[Trial]) -> dict[str, Any] | None:
        """The point of job `index` (0-based), or None when the strategy has nothing left to try."""
        raise NotImplementedError

    def random_point(self, index: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:{index}")
        return {r.name: r.sample(rng) for r in self.space}


class RandomStrategy(Strategy):
    def propose(self, index: int, history: list[Trial]) -> dict[str, Any] | None:
        return self.random_point(index)


class GridStrategy(Strategy):
    def __init__(self, space: list[Range], seed: int, minimize: bool) -> None:
        super().__init__(space, seed, minimize)
        self.points = grid_points(space)

    def propose(self, index: int, history: list[Trial]) -> dict[str, Any] | None:
        return self.points[index] if index < len(self.points) else None


class BayesianStrategy(Strategy):
    """Optuna's TPE sampler over the finished jobs (docs/decisions.md: why optuna). The first
    `STARTUP` jobs are random points; every later proposal refits on the whole history, numeric
    ranges in the unit scale of their ScalingType."""

    STARTUP = 4

    def propose(self, index: int, history: list[Trial]) -> dict[str, Any] | None:
        scored = [t for t in history if t.value is not None and math.isfinite(t.value)
                  and all(r.name in t.point and r.contains(t.point[r.name]) for r in self.space)]
        if len(scored) < self.STARTUP:
            return self.random_point(index)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        dist = optuna.distributions
        distributions: dict[str, dist.BaseDistribution] = {
            r.name: dist.CategoricalDistribution(r.values) if r.kind == "Categorical" else dist.FloatDistribution(0, 1)
            for r in self.space}
        sampler = optuna.samplers.TPESampler(seed=(self.seed * 7919 + index) % (2**31), n_startup_trials=0,
                                             multivariate=True)
        study = optuna.create_study(direction="minimize" if self.minimize else "maximize", sampler=sampler)
        for trial in scored:
            params = {r.name: trial.point[r.name] if r.kind == "Categorical" else r.to_unit(trial.point[r.name])
                      for r in self.space if r.name in trial.point}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=trial.value))
        asked = study.ask(distributions)
        return {r.name: asked.params[r.name] if r.kind == "Categorical" else r.from_unit(asked.params[r.name])
                for r in self.space}


STRATEGIES: dict[str, type[Strategy]] = {"Random": RandomStrategy, "Grid": GridStrategy,
                                         "Bayesian": BayesianStrategy, "Hyperband": RandomStrategy}


def strategy_for(name: str, space: list[Range], seed: int, minimize: bool) -> Strategy:
    """Hyperband proposes random points; its brackets are the `Stopper`'s rungs."""
    return STRATEGIES[name](space, seed, minimize)


# -- early stopping ---------------------------------------------------------------------------------
class Stopper:
    """Intermediate objective values per job (epoch = the n-th value of the objective metric), and the
    verdict after each one: keep going or stop the job now."""

    def __init__(self, minimize: bool) -> None:
        self.minimize = minimize
        self.series: dict[str, list[float]] = {}
        self.order: list[str] = []  # jobs in the order they started reporting

    def better(self, a: float, b: float) -> bool:
        return a < b if self.minimize else a > b

    def record(self, job: str, value: float) -> bool:
        """Add one value; True when `job` should be stopped now."""
        if job not in self.series:
            self.series[job] = []
            self.order.append(job)
        self.series[job].append(value)
        return self.verdict(job, len(self.series[job]))

    def verdict(self, job: str, epoch: int) -> bool:
        raise NotImplementedError


class MedianStopper(Stopper):
    """TrainingJobEarlyStoppingType=Auto, as the AWS guide words it: after each epoch, stop a job whose
    objective is worse than the median of the running averages of the earlier jobs' objective up to the
    same epoch. Needs `MIN_PEERS` earlier jobs that reached that epoch."""

    MIN_PEERS = 3

    def verdict(self, job: str, epoch: int) -> bool:
        earlier = self.order[: self.order.index(job)]
        averages = [statistics.fmean(self.series[other][:epoch]) for other in earlier
                    if len(self.series[other]) >= epoch]
        if len(averages) < self.MIN_PEERS:
            return False
        return self.better(statistics.median(averages), self.series[job][epoch - 1])


class HyperbandStopper(Stopper):
    """Hyperband's brackets as asynchronous successive halving: rungs at MinResource * eta^k epochs
    (below MaxResource); a job reaching a rung goes on only if its value is in the best 1/eta of the
    values every job has had at that rung so far (once `ETA` jobs reached it)."""

    ETA = 3

    def __init__(self, minimize: bool, min_resource: int, max_resource: int) -> None:
        super().__init__(minimize)
        self.rungs: list[int] = []
        resource = max(1, min_resource)
        while resource < max_resource:
            self.rungs.append(resource)
            resource *= self.ETA

    def verdict(self, job: str, epoch: int) -> bool:
        if epoch not in self.rungs:
            return False
        values = sorted((s[epoch - 1] for s in self.series.values() if len(s) >= epoch),
                        reverse=not self.minimize)
        if len(values) < self.ETA:
            return False
        keep = max(1, len(values) // self.ETA)
        cutoff = values[keep - 1]
        mine = self.series[job][epoch - 1]
        return self.better(cutoff, mine)
