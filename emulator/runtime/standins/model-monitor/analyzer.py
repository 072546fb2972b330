#!/usr/bin/env python3
"""A stand-in for AWS's Model Monitor analyzer (sagemaker-model-monitor-analyzer), for tabular data.

AWS's image is closed source (Spark and Deequ); this follows its documented contract (docs "Container
Contract Inputs/Outputs", "Schema for Statistics/Constraints/Violations") with pandas:

- Baselining (no `baseline_constraints`): the dataset under $dataset_source ($dataset_format: csv with or
  without a header, json lines) gives statistics.json and a suggested constraints.json in $output_path.
- Monitoring (`baseline_constraints` and/or `baseline_statistics` set): the records under $dataset_source
  (sagemakerCaptureJson: each capture file's endpointInput, CSV or JSON) give statistics.json and
  constraint_violations.json, and the exit message AWS's analyzer writes
  (`CompletedWithViolations: Job completed successfully with N violations.`). With
  `baseline_calculation=Enabled` (a pipeline's QualityCheck step) it writes constraints.json too.

Headerless columns are named `_c0`, `_c1`, ... as Spark names them; captured rows are matched to the
baseline's features by position. The distribution's "kll" sketch is ten equal-width buckets and the
sorted values, not a real KLL sketch; baseline drift is the largest gap between the two cumulative
bucket distributions (a Kolmogorov-Smirnov distance on the baseline's buckets).
"""
from __future__ import annotations

import glob
import json
import math
import os
import sys

import numpy as np
import pandas as pd

BUCKETS = 10
DOMAIN_LIMIT = 20  # string features with at most this many distinct values get a domain constraint


def _files(root: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(root, "**", "*"), recursive=True) if os.path.isfile(p))


def _csv(text_rows: list[str], header: bool) -> pd.DataFrame:
    import io

    data = "\n".join(text_rows)
    if not data.strip():
        return pd.DataFrame()
    frame = pd.read_csv(io.StringIO(data), header=0 if header else None, dtype=str, keep_default_na=False,
                        skipinitialspace=True)
    if not header:
        frame.columns = [f"_c{i}" for i in range(frame.shape[1])]
    return frame


def load_dataset(source: str, fmt: dict) -> pd.DataFrame:
    """Every row of the dataset under `source`, as strings (typing is the analysis's job)."""
    files = _files(source)
    if "sagemakerCaptureJson" in fmt:
        return _captured(files)
    if "json" in fmt:
        rows = [json.loads(line) for path in files for line in open(path) if line.strip()]
        return pd.DataFrame(rows).astype(str) if rows else pd.DataFrame()
    if "parquet" in fmt:
        raise SystemExit("ClientError: Parquet datasets are not read by the emulator's analyzer stand-in")
    header = bool((fmt.get("csv") or {}).get("header", True))
    frames = [_csv(open(path).read().splitlines(), header) for path in files]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _captured(files: list[str]) -> pd.DataFrame:
    csv_rows: list[str] = []
    json_rows: list[dict] = []
    for path in files:
        for line in open(path):
            if not line.strip():
                continue
            record = json.loads(line)
            captured = (record.get("captureData") or {}).get("endpointInput") or {}
            data = captured.get("data", "")
            if captured.get("encoding") == "BASE64":
                import base64

                data = base64.b64decode(data).decode("utf-8", "replace")
            if captured.get("encoding") == "JSON" or str(captured.get("observedContentType", "")).endswith("json"):
                value = json.loads(data) if data.strip() else {}
                json_rows += value if isinstance(value, list) else [value]
            else:
                csv_rows += [row for row in data.splitlines() if row.strip()]
    if json_rows:
        return pd.DataFrame(json_rows).astype(str)
    return _csv(csv_rows, header=False)


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def infer_type(values: pd.Series) -> str:
    present = values[values != ""]
    if present.empty:
        return "Unknown"
    numbers = _numbers(present)
    if numbers.isna().any():
        return "String"
    return "Integral" if bool((numbers == numbers.round()).all()) and not present.str.contains(r"[.eE]").any() \
        else "Fractional"


def _matches(values: pd.Series, kind: str) -> float:
    """The fraction of present values that are of `kind`."""
    present = values[values != ""]
    if present.empty:
        return 1.0
    numbers = _numbers(present)
    if kind == "Fractional":
        return float(numbers.notna().mean())
    if kind == "Integral":
        return float(((numbers == numbers.round()) & numbers.notna() & ~present.str.contains(r"[.eE]")).mean())
    return 1.0


def _buckets(numbers: np.ndarray, low: float, high: float) -> list[dict]:
    if high <= low:
        high = low + 1.0
    counts, edges = np.histogram(numbers, bins=BUCKETS, range=(low, high))
    return [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
            for i in range(BUCKETS)]


def feature_statistics(name: str, values: pd.Series, kind: str | None = None) -> dict:
    kind = kind or infer_type(values)
    present = values[values != ""]
    common = {"num_present": int(present.size), "num_missing": int(values.size - present.size)}
    out: dict = {"name": name, "inferred_type": kind}
    if kind in ("Integral", "Fractional"):
        numbers = _numbers(present).dropna().to_numpy(dtype=float)
        if numbers.size == 0:
            numbers = np.array([0.0])
        out["numerical_statistics"] = {
            "common": common, "mean": float(numbers.mean()), "sum": float(numbers.sum()),
            "std_dev": float(numbers.std()), "min": float(numbers.min()), "max": float(numbers.max()),
            "distribution": {"kll": {"buckets": _buckets(numbers, float(numbers.min()), float(numbers.max())),
                                     "sketch": {"parameters": {"c": 0.64, "k": 2048.0},
                                                "data": [sorted(float(v) for v in numbers)]}}}}
    else:
        counts = present.value_counts()
        out["string_statistics"] = {"common": common, "distinct_count": float(counts.size), "distribution": {
            "categorical": {"buckets": [{"value": str(v), "count": int(c)} for v, c in counts.items()]}}}
    return out


def statistics(frame: pd.DataFrame, kinds: dict[str, str] | None = None) -> dict:
    kinds = kinds or {}
    return {"version": 0.0, "dataset": {"item_count": int(frame.shape[0])},
            "features": [feature_statistics(str(c), frame[c], kinds.get(str(c))) for c in frame.columns]}


def suggest_constraints(frame: pd.DataFrame, stats: dict) -> dict:
    features = []
    for feature in stats["features"]:
        values = frame[feature["name"]]
        entry: dict = {"name": feature["name"], "inferred_type": feature["inferred_type"],
                       "completeness": float((values != "").mean()) if values.size else 1.0}
        if "numerical_statistics" in feature:
            entry["num_constraints"] = {"is_non_negative": feature["numerical_statistics"]["min"] >= 0}
        else:
            buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
            if 0 < len(buckets) <= DOMAIN_LIMIT:
                entry["string_constraints"] = {"domains": sorted(b["value"] for b in buckets)}
        features.append(entry)
    return {"version": 0.0, "features": features, "monitoring_config": {
        "evaluate_constraints": "Enabled", "emit_metrics": "Enabled", "datatype_check_threshold": 1.0,
        "domain_content_threshold": 1.0, "distribution_constraints": {
            "perform_comparison": "Enabled", "comparison_threshold": 0.1, "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.1,
            "categorical_drift_method": os.environ.get("categorical_drift_method") or "LInfinity"}}}


def _percent(value: float) -> str:
    return f"{math.floor(value * 1000) / 10:.1f}%"


def _drift(baseline: dict, values: pd.Series) -> float | None:
    """The largest gap between the baseline's and the current cumulative bucket distributions."""
    buckets = (((baseline.get("numerical_statistics") or {}).get("distribution") or {}).get("kll") or {}).get(
        "buckets")
    numbers = _numbers(values[values != ""]).dropna().to_numpy(dtype=float)
    if not buckets or numbers.size == 0:
        return None
    edges = [b["lower_bound"] for b in buckets] + [buckets[-1]["upper_bound"]]
    base = np.array([b["count"] for b in buckets], dtype=float)
    current = np.array([((numbers >= lo) & ((numbers < hi) if i < len(buckets) - 1 else (numbers <= hi))).sum()
                        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))], dtype=float)
    outside = numbers.size - current.sum()  # values beyond the baseline's range count as a bucket of their own
    base_cdf = np.cumsum(np.append(base, 0.0)) / max(base.sum(), 1.0)
    current_cdf = np.cumsum(np.append(current, outside)) / numbers.size
    return float(np.max(np.abs(base_cdf - current_cdf)))


def violations(frame: pd.DataFrame, constraints: dict, baseline_stats: dict | None) -> list[dict]:
    found: list[dict] = []
    features = constraints.get("features") or []
    config = constraints.get("monitoring_config") or {}
    if config.get("evaluate_constraints", "Enabled") != "Enabled":
        return found
    names = [f["name"] for f in features]
    if frame.shape[1] and list(frame.columns)[: len(names)] != names[: frame.shape[1]] and \
            all(str(c).startswith("_c") for c in frame.columns):
        frame = frame.set_axis(names[: frame.shape[1]] + list(frame.columns[len(names):]), axis=1)
    if frame.shape[1] < len(names):
        found.append({"feature_name": "", "constraint_check_type": "missing_column_check", "description": (
            f"There are missing columns in current dataset. Number of columns in current dataset: {frame.shape[1]}, "
            f"Number of columns in baseline constraints: {len(names)}")})
    elif frame.shape[1] > len(names):
        found.append({"feature_name": "", "constraint_check_type": "extra_column_check", "description": (
            f"There are extra columns in current dataset. Number of columns in current dataset: {frame.shape[1]}, "
            f"Number of columns in baseline constraints: {len(names)}")})
    type_threshold = float(config.get("datatype_check_threshold", 1.0))
    domain_threshold = float(config.get("domain_content_threshold", 1.0))
    distribution = config.get("distribution_constraints") or {}
    base_features = {f["name"]: f for f in (baseline_stats or {}).get("features", [])}
    for feature in features:
        name = feature["name"]
        if name not in frame.columns:
            continue
        values = frame[name]
        kind = feature.get("inferred_type")
        if kind in ("Integral", "Fractional"):
            share = _matches(values, kind)
            if share < type_threshold:
                found.append({"feature_name": name, "constraint_check_type": "data_type_check", "description": (
                    f"Data type match requirement is not met. Expected data type: {kind}, Expected match: "
                    f"{_percent(type_threshold)}. Observed: Only {_percent(share)} of data is {kind}.")})
        if "completeness" in feature and values.size:
            present = float((values != "").mean())
            if present < float(feature["completeness"]):
                found.append({"feature_name": name, "constraint_check_type": "completeness_check", "description": (
                    f"Data completeness requirement is not met. Expected: {_percent(float(feature['completeness']))}. "
                    f"Observed: Only {_percent(present)} of data is present.")})
        domains = (feature.get("string_constraints") or {}).get("domains")
        if domains:
            present_values = values[values != ""]
            share = float(present_values.isin(domains).mean()) if present_values.size else 1.0
            if share < domain_threshold:
                found.append({"feature_name": name, "constraint_check_type": "categorical_values_check",
                              "description": (f"Data content check requirement is not met. Expected: "
                                              f"{_percent(domain_threshold)}. Observed: Only {_percent(share)} of "
                                              "data is within the domain.")})
        if distribution.get("perform_comparison", "Enabled") == "Enabled" and name in base_features:
            distance = _drift(base_features[name], values)
            threshold = float(distribution.get("comparison_threshold", 0.1))
            if distance is not None and distance > threshold:
                found.append({"feature_name": name, "constraint_check_type": "baseline_drift_check", "description": (
                    f"Baseline drift distance: {distance} exceeds threshold: {threshold}")})
    return found


def _read_json(path: str | None) -> dict | None:
    if path and os.path.isfile(path):
        return json.load(open(path))
    return None


def main() -> int:
    fmt = json.loads(os.environ.get("dataset_format") or '{"csv": {"header": true}}')
    source = os.environ.get("dataset_source") or "/opt/ml/processing/input"
    output = os.environ.get("output_path") or "/opt/ml/processing/output"
    os.makedirs(output, exist_ok=True)
    constraints = _read_json(os.environ.get("baseline_constraints"))
    baseline_stats = _read_json(os.environ.get("baseline_statistics"))
    frame = load_dataset(source, fmt)
    print(f"analyzing {frame.shape[0]} records of {frame.shape[1]} columns under {source}", flush=True)
    if frame.empty:
        with open("/opt/ml/output/message", "w") as f:
            f.write("Job inputs had no data")
        print("Job inputs had no data", flush=True)
        return 1
    if constraints is None and baseline_stats is None:  # baselining
        stats = statistics(frame)
        json.dump(stats, open(os.path.join(output, "statistics.json"), "w"), indent=2)
        json.dump(suggest_constraints(frame, stats), open(os.path.join(output, "constraints.json"), "w"), indent=2)
        message = "Completed: Job completed successfully with no violations."
    else:
        constraints = constraints or {"features": [], "monitoring_config": {}}
        names = [f["name"] for f in constraints.get("features", [])]
        if all(str(c).startswith("_c") for c in frame.columns) and names:
            frame = frame.set_axis([names[i] if i < len(names) else c for i, c in enumerate(frame.columns)], axis=1)
        kinds = {f["name"]: f.get("inferred_type") for f in constraints.get("features", [])
                 if f["name"] in frame.columns and f.get("inferred_type") in ("Integral", "Fractional")}
        kinds = {k: v for k, v in kinds.items() if _matches(frame[k], v) == 1.0}  # the baseline's type where it fits
        json.dump(statistics(frame, kinds), open(os.path.join(output, "statistics.json"), "w"), indent=2)
        if os.environ.get("baseline_calculation") == "Enabled":  # a pipeline's QualityCheck: the new baseline too
            current = statistics(frame)
            json.dump(suggest_constraints(frame, current), open(os.path.join(output, "constraints.json"), "w"),
                      indent=2)
        found = violations(frame, constraints, baseline_stats)
        json.dump({"violations": found}, open(os.path.join(output, "constraint_violations.json"), "w"), indent=2)
        message = (f"CompletedWithViolations: Job completed successfully with {len(found)} violations." if found
                   else "Completed: Job completed successfully with no violations.")
    with open("/opt/ml/output/message", "w") as f:
        f.write(message)
    print(message, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
