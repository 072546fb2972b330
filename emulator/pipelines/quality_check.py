"""The QualityCheck step: a Model Monitor baselining job that also checks the data against a baseline.

The SDK's QualityCheckStep sends the baselining job's request (the analyzer image, dataset_format,
dataset_source, output_path) with CheckType (DATA_QUALITY | MODEL_QUALITY), SkipCheck,
RegisterNewBaseline, FailOnViolation, SuppliedBaselineStatistics/Constraints and
ModelPackageGroupName beside it. As the developer guide's "Drift check baselines" describes:

- the baseline checked against is the supplied one, else the DriftCheckBaselines of the group's latest
  Approved model package; with SkipCheck false and neither, the step fails;
- the job always calculates the new baseline (CalculatedBaselineStatistics/Constraints, the
  statistics.json and constraints.json of its output); with a check, the analyzer also gets the
  baseline (baseline_statistics, baseline_constraints) and writes constraint_violations.json, and
  violations fail the step when FailOnViolation is true;
- BaselineUsedForDriftCheckStatistics/Constraints are the calculated files when RegisterNewBaseline is
  true, else the baseline checked against.

The analyzer stand-in is told to write constraints.json beside its violations by
`baseline_calculation=Enabled` (its own variable: AWS's image is given a check job's contract by the
service, which the documentation does not spell out).
"""

from __future__ import annotations

import json
from typing import Any

from sagemaker_emulator.protocol.errors import AwsError

from .steps import StepFailure

BASELINE_DIR = "/opt/ml/processing/baseline"
MEMBERS = {"DATA_QUALITY": "ModelDataQuality", "MODEL_QUALITY": "ModelQuality"}


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def previous_baseline(services: Any, region: str, group: str | None, check_type: str) -> dict[str, str]:
    """{"Statistics": uri, "Constraints": uri} of the group's latest Approved package (empty when none)."""
    if not group:
        return {}
    try:
        listed = services.sagemaker.call("ListModelPackages", {
            "ModelPackageGroupName": group, "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
            "SortOrder": "Descending", "MaxResults": 1}, region=region)
    except AwsError:
        return {}
    for summary in listed.get("ModelPackageSummaryList", []):
        package = services.sagemaker.call("DescribeModelPackage", {"ModelPackageName": summary["ModelPackageArn"]},
                                          region=region)
        section = (package.get("DriftCheckBaselines") or {}).get(MEMBERS.get(check_type, "ModelDataQuality")) or {}
        found: dict[str, str] = {}
        for key in ("Statistics", "Constraints"):
            uri = (section.get(key) or {}).get("S3Uri")
            if uri:
                found[key] = str(uri)
        return found
    return {}


def prepare(services: Any, region: str, spec: dict[str, Any], evaluate: Any,
            request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the job request with the baseline to check against, the check's settings kept for its end)."""
    check_type = evaluate(spec.get("CheckType")) or "DATA_QUALITY"
    check: dict[str, Any] = {
        "CheckType": check_type, "SkipCheck": _flag(evaluate(spec.get("SkipCheck", False))),
        "RegisterNewBaseline": _flag(evaluate(spec.get("RegisterNewBaseline", False))),
        "FailOnViolation": _flag(evaluate(spec.get("FailOnViolation", True))),
        "ModelPackageGroupName": evaluate(spec.get("ModelPackageGroupName"))}
    supplied = {"Statistics": evaluate(spec.get("SuppliedBaselineStatistics")),
                "Constraints": evaluate(spec.get("SuppliedBaselineConstraints"))}
    baseline = {k: v for k, v in supplied.items() if v} or previous_baseline(
        services, region, check["ModelPackageGroupName"], check_type)
    check["_baseline"] = baseline
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    if not outputs:
        raise StepFailure("ClientError: The QualityCheck step's job has no output for its baseline.")
    check["_output"] = str(outputs[0]["S3Output"]["S3Uri"]).rstrip("/")
    environment = {**(request.get("Environment") or {}), "baseline_calculation": "Enabled"}
    if not check["SkipCheck"]:
        if "Constraints" not in baseline:
            raise StepFailure(
                f"ClientError: SkipCheck is false but there is no {check_type} baseline to check against: supply "
                "SuppliedBaselineConstraints (and SuppliedBaselineStatistics) or register an Approved model "
                f"package with DriftCheckBaselines in {check['ModelPackageGroupName'] or 'the model package group'}.")
        inputs = list(request.get("ProcessingInputs") or [])
        for key, folder, variable in (("Constraints", "constraints", "baseline_constraints"),
                                      ("Statistics", "stats", "baseline_statistics")):
            if key in baseline:
                inputs.append({"InputName": f"baseline_{folder}", "S3Input": {
                    "S3Uri": baseline[key], "LocalPath": f"{BASELINE_DIR}/{folder}", "S3DataType": "S3Prefix",
                    "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}})
                environment[variable] = f"{BASELINE_DIR}/{folder}/{baseline[key].rstrip('/').rsplit('/', 1)[-1]}"
        request = {**request, "ProcessingInputs": inputs}
    return {**request, "Environment": environment}, check


def metadata(check: dict[str, Any], arn: str | None = None, **extra: Any) -> dict[str, Any]:
    """ListPipelineExecutionSteps' `{"QualityCheck": {...}}` (QualityCheckStepMetadata)."""
    body = {k: check[k] for k in ("CheckType", "SkipCheck", "RegisterNewBaseline", "ModelPackageGroupName")
            if check.get(k) is not None}
    if arn:
        body["CheckJobArn"] = arn
    body.update({k: v for k, v in extra.items() if v})
    return {"QualityCheck": body}


def conclude(services: Any, region: str, check: dict[str, Any], arn: str
             ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(properties, Metadata, failure reason or None) once the check job completed."""
    from sagemaker_emulator.jobs.data import JobData

    output = check["_output"]
    calculated = {"Statistics": f"{output}/statistics.json", "Constraints": f"{output}/constraints.json"}
    used = calculated if check["RegisterNewBaseline"] else (check.get("_baseline") or {})
    properties = {"CalculatedBaselineStatistics": calculated["Statistics"],
                  "CalculatedBaselineConstraints": calculated["Constraints"],
                  "BaselineUsedForDriftCheckStatistics": used.get("Statistics"),
                  "BaselineUsedForDriftCheckConstraints": used.get("Constraints")}
    report, failure = None, None
    if not check["SkipCheck"]:
        store = JobData(services, region).store
        uri = f"{output}/constraint_violations.json"
        try:
            violations = json.loads(store.get_bytes(uri)).get("violations") or []
        except Exception:
            violations = []
        if violations:
            report = uri
            if check["FailOnViolation"]:
                kinds = sorted({v.get("constraint_check_type", "") for v in violations})
                failure = (f"ClientError: {check['CheckType']} check found {len(violations)} violations "
                           f"({', '.join(kinds)}); the report is {uri}")
    meta = metadata(check, arn, CalculatedBaselineStatistics=calculated["Statistics"],
                    CalculatedBaselineConstraints=calculated["Constraints"],
                    BaselineUsedForDriftCheckStatistics=used.get("Statistics"),
                    BaselineUsedForDriftCheckConstraints=used.get("Constraints"), ViolationReport=report)
    return {k: v for k, v in properties.items() if v is not None}, meta, failure
