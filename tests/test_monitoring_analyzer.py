"""The Model Monitor analyzer stand-in's analysis (standins/model-monitor/analyzer.py) on the host's
pandas: statistics and suggested constraints in the documented schemas, and each documented violation
check against them; the container run is tests/test_model_monitor_sdk.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
ANALYZER = ROOT / "emulator" / "runtime" / "standins" / "model-monitor" / "analyzer.py"


@pytest.fixture(scope="module")
def analyzer():
    spec = importlib.util.spec_from_file_location("analyzer", ANALYZER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frame(rows: list[list], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([[str(v) for v in row] for row in rows], columns=columns)


BASELINE = frame([[i % 10, i / 8, "red" if i % 3 else "blue"] for i in range(60)], ["f1", "f2", "color"])


def test_statistics_and_suggested_constraints(analyzer):
    stats = analyzer.statistics(BASELINE)
    assert stats["dataset"]["item_count"] == 60
    by_name = {f["name"]: f for f in stats["features"]}
    assert [by_name[n]["inferred_type"] for n in ("f1", "f2", "color")] == ["Integral", "Fractional", "String"]
    numeric = by_name["f1"]["numerical_statistics"]
    assert numeric["common"] == {"num_present": 60, "num_missing": 0}
    assert numeric["min"] == 0 and numeric["max"] == 9 and numeric["mean"] == pytest.approx(4.5)
    buckets = numeric["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == 60
    assert by_name["color"]["string_statistics"]["distinct_count"] == 2
    constraints = analyzer.suggest_constraints(BASELINE, stats)
    features = {f["name"]: f for f in constraints["features"]}
    assert features["f1"]["num_constraints"] == {"is_non_negative": True} and features["f1"]["completeness"] == 1.0
    assert features["color"]["string_constraints"] == {"domains": ["blue", "red"]}
    config = constraints["monitoring_config"]
    assert config["distribution_constraints"]["categorical_drift_method"] == "LInfinity"
    assert config["distribution_constraints"]["categorical_comparison_threshold"] == 0.1
    json.dumps(constraints)  # plain JSON types only


def test_each_documented_violation(analyzer):
    stats = analyzer.statistics(BASELINE)
    constraints = analyzer.suggest_constraints(BASELINE, stats)
    assert analyzer.violations(BASELINE, constraints, stats) == []
    current = frame([[1, 0.5, "red"], [2.5, "", "green"], [300, 0.25, "red"], [400, 1.5, "blue"]],
                    ["f1", "f2", "color"])
    found = {(v["feature_name"], v["constraint_check_type"]): v["description"]
             for v in analyzer.violations(current, constraints, stats)}
    assert found[("f1", "data_type_check")] == ("Data type match requirement is not met. Expected data type: "
                                                "Integral, Expected match: 100.0%. Observed: Only 75.0% of data "
                                                "is Integral.")
    assert "Only 75.0% of data is present" in found[("f2", "completeness_check")]
    assert "Only 75.0% of data is within the domain" in found[("color", "categorical_values_check")]
    assert found[("f1", "baseline_drift_check")].startswith("Baseline drift distance: ")
    fewer = analyzer.violations(current[["f1", "f2"]], constraints, stats)
    assert [v["constraint_check_type"] for v in fewer if not v["feature_name"]] == ["missing_column_check"]


def test_headerless_capture_is_matched_by_position(analyzer, tmp_path):
    capture = tmp_path / "ep" / "AllTraffic" / "2026" / "12" / "01" / "13"
    capture.mkdir(parents=True)
    records = [{"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": row,
                                                  "encoding": "CSV"}}} for row in ("1,0.5,red", "2,0.25,blue")]
    (capture / "00-00-000-x.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    data = analyzer.load_dataset(str(tmp_path), {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}})
    assert list(data.columns) == ["_c0", "_c1", "_c2"] and data.shape[0] == 2
    stats = analyzer.statistics(BASELINE)
    found = analyzer.violations(data, analyzer.suggest_constraints(BASELINE, stats), stats)
    # two rows cannot match the baseline's distribution; but they are f1, f2, color and of their types
    assert {(v["feature_name"], v["constraint_check_type"]) for v in found} <= {
        ("f1", "baseline_drift_check"), ("f2", "baseline_drift_check")}, found
