"""The tuning strategies and stoppers as pure functions (no server): Bayesian beats Random, Hyperband's
rungs, the median rule, scaling, and the metric regex engine's TAB handling."""

from __future__ import annotations

import math
import statistics

import pytest

from sagemaker_emulator.jobs.metrics import MetricExtractor
from sagemaker_emulator.tuning.space import Range, SpaceError, grid_points, parse
from sagemaker_emulator.tuning.strategies import (
    HyperbandStopper,
    MedianStopper,
    Trial,
    strategy_for,
)

SPACE = parse({"ContinuousParameterRanges": [{"Name": "a", "MinValue": "-5", "MaxValue": "5"},
                                             {"Name": "b", "MinValue": "-5", "MaxValue": "5"}]})


def smooth(point: dict) -> float:
    """A smooth bowl, minimum 0 at (1.5, -2)."""
    return (point["a"] - 1.5) ** 2 + (point["b"] + 2) ** 2


def _best(strategy_name: str, seed: int, jobs: int = 30) -> float:
    strategy = strategy_for(strategy_name, SPACE, seed, minimize=True)
    history: list[Trial] = []
    for index in range(jobs):
        point = strategy.propose(index, history)
        history.append(Trial(point, smooth(point)))
    return min(t.value for t in history if t.value is not None)


def test_bayesian_beats_random_over_five_seeds():
    bayes = [_best("Bayesian", seed) for seed in range(5)]
    rand = [_best("Random", seed) for seed in range(5)]
    assert statistics.median(bayes) < statistics.median(rand), (bayes, rand)


def test_random_is_a_function_of_seed_and_index():
    one, two = strategy_for("Random", SPACE, 11, True), strategy_for("Random", SPACE, 11, True)
    assert [one.propose(i, []) for i in range(5)] == [two.propose(i, []) for i in range(5)]
    assert one.propose(0, []) != strategy_for("Random", SPACE, 12, True).propose(0, [])


def test_grid_is_the_product_then_nothing():
    space = parse({"CategoricalParameterRanges": [{"Name": "p", "Values": ["1", "2"]},
                                                  {"Name": "q", "Values": ["x", "y", "z"]}]})
    grid = strategy_for("Grid", space, 0, True)
    points = [grid.propose(i, []) for i in range(6)]
    assert sorted((p["p"], p["q"]) for p in points) == sorted((p, q) for p in "12" for q in "xyz")
    assert grid.propose(6, []) is None
    with pytest.raises(SpaceError):
        grid_points(SPACE)


@pytest.mark.parametrize("scaling", ["Linear", "Logarithmic", "ReverseLogarithmic"])
def test_scaling_round_trips_and_stays_in_range(scaling):
    r = Range("lr", "Continuous", 0.001, 0.9, scaling)
    for u in (0.0, 0.25, 0.5, 1.0):
        value = r.from_unit(u)
        assert 0.001 <= value <= 0.9
        assert r.to_unit(value) == pytest.approx(u, abs=1e-9)
    if scaling == "Logarithmic":  # the middle of the scale is the geometric mean
        assert r.from_unit(0.5) == pytest.approx(math.sqrt(0.001 * 0.9))


def test_integer_ranges_give_integers():
    r = Range("n", "Integer", 1, 10, "Logarithmic")
    assert {type(r.from_unit(u / 10)) for u in range(11)} == {int}
    assert r.from_unit(0) == 1 and r.from_unit(1) == 10


def test_median_rule_stops_only_below_the_median_of_earlier_jobs():
    stopper = MedianStopper(minimize=False)
    for job, values in (("a", [1, 2, 3]), ("b", [2, 3, 4]), ("c", [3, 4, 5])):
        assert not any(stopper.record(job, v) for v in values)  # fewer than 3 earlier jobs: never stopped
    assert not stopper.record("good", 2.5)  # median of running averages at epoch 1 is 2
    assert stopper.record("bad", 1.5)


def test_hyperband_rungs_keep_the_best_third():
    stopper = HyperbandStopper(minimize=True, min_resource=1, max_resource=27)
    assert stopper.rungs == [1, 3, 9]
    assert not stopper.record("j1", 5.0)
    assert not stopper.record("j2", 1.0)
    assert stopper.record("j3", 9.0)  # 3 jobs at rung 1: only the best one (j2) goes on
    assert not stopper.record("j4", 0.5)  # the new best
    assert not stopper.record("j2", 0.9)  # epoch 2: not a rung


def test_metric_regex_sees_tabs_as_cloudwatch_shows_them():
    extractor = MetricExtractor([{"Name": "loss", "Regex": r"loss#011([0-9.]+)"}])
    extractor.feed("epoch 1\tloss\t0.25", 1.0, "algo-1")
    assert extractor.final()[0]["Value"] == 0.25


def test_bayesian_ignores_history_outside_its_space():
    """Warm-start parents may have tried values this space does not have."""
    space = parse({"CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b"]}],
                   "IntegerParameterRanges": [{"Name": "n", "MinValue": "1", "MaxValue": "3"}]})
    strategy = strategy_for("Bayesian", space, 1, minimize=True)
    history = [Trial({"c": "z", "n": 2}, 0.0), Trial({"c": "a", "n": 9}, 0.0)] + [
        Trial({"c": "ab"[i % 2], "n": 1 + i % 3}, float(i)) for i in range(5)]
    point = strategy.propose(7, history)
    assert point["c"] in ("a", "b") and 1 <= point["n"] <= 3
