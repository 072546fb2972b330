"""What each step type does: the job it creates (and its AWS-style name), the Describe response its
properties come from, its ListPipelineExecutionSteps Metadata, and the synchronous step types.

Jobs are created through the in-process call path (`services.sagemaker.call`), exactly as a client
would, so they are real jobs a user can Describe, Stop and read the logs of.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class JobKind:
    create: str
    name_field: str
    describe: str
    stop: str
    resource: str  # the resource kind (and the lifecycle event kind)
    metadata: str  # the Metadata member of ListPipelineExecutionSteps
    max_name: int


JOB_STEPS = {
    "Training": JobKind("CreateTrainingJob", "TrainingJobName", "DescribeTrainingJob", "StopTrainingJob",
                        "training-job", "TrainingJob", 63),
    "Processing": JobKind("CreateProcessingJob", "ProcessingJobName", "DescribeProcessingJob", "StopProcessingJob",
                          "processing-job", "ProcessingJob", 63),
    "Transform": JobKind("CreateTransformJob", "TransformJobName", "DescribeTransformJob", "StopTransformJob",
                         "transform-job", "TransformJob", 63),
    # a Model Monitor baselining job that also checks against a baseline (quality_check.py)
    "QualityCheck": JobKind("CreateProcessingJob", "ProcessingJobName", "DescribeProcessingJob", "StopProcessingJob",
                            "processing-job", "QualityCheck", 63),
    "Tuning": JobKind("CreateHyperParameterTuningJob", "HyperParameterTuningJobName",
                      "DescribeHyperParameterTuningJob", "StopHyperParameterTuningJob", "hyper-parameter-tuning-job",
                      "TuningJob", 32),
}
JOB_RESOURCES = {kind.resource: step_type for step_type, kind in JOB_STEPS.items()}
UNSUPPORTED = {
    "EMR": "EMR steps need Amazon EMR, which sagemaker-emulator does not emulate.",
    "AutoML": "AutoML steps are not supported by sagemaker-emulator.",
    "ClarifyCheck": "ClarifyCheck steps need SageMaker Clarify, which sagemaker-emulator does not run yet.",
    "InferenceComponent": "InferenceComponent steps are not supported by sagemaker-emulator.",
    "Lineage": "Lineage steps are not supported by sagemaker-emulator.",
}
for _bedrock in ("BedrockCustomModel", "BedrockCustomModelDeployment", "BedrockModelImport",
                 "BedrockProvisionedModelThroughput"):
    UNSUPPORTED[_bedrock] = f"{_bedrock} steps need Amazon Bedrock, which sagemaker-emulator does not emulate."


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c == "-" else "-" for c in text)


def conform(shape: Any, value: Any) -> Any:
    """An evaluated value in the type the operation's input shape wants: a pipeline parameter's Integer
    goes into a string member (HyperParameters) as text and a String into an integer member as a number,
    as the service converts them. Values that do not convert are left for the operation's validation."""
    kind = shape.type_name
    try:
        if kind == "structure" and isinstance(value, dict):
            return {k: conform(shape.members[k], v) if k in shape.members else v for k, v in value.items()}
        if kind == "list" and isinstance(value, list):
            return [conform(shape.member, v) for v in value]
        if kind == "map" and isinstance(value, dict):
            return {k: conform(shape.value, v) for k, v in value.items()}
        if kind == "string" and isinstance(value, (bool, int, float)):
            return ("true" if value else "false") if isinstance(value, bool) else str(value)
        if kind in ("integer", "long") and isinstance(value, (str, float)) and not isinstance(value, bool):
            return int(float(value))
        if kind in ("float", "double") and isinstance(value, (str, int)) and not isinstance(value, bool):
            return float(value)
        if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    except ValueError:
        return value
    return value


def call(services: Any, operation: str, params: dict[str, Any], region: str) -> dict[str, Any]:
    """An operation on the step's behalf, its evaluated arguments conformed to the input shape first."""
    from sagemaker_emulator.protocol.service import service_model

    shape = service_model("sagemaker").operation_model(operation).input_shape
    return services.sagemaker.call(operation, conform(shape, params), region=region)


def job_name(step_type: str, execution_id: str, step_name: str, arguments: dict[str, Any], attempt: int) -> str:
    """AWS's `pipelines-<executionId>-<StepName>-<10 random>` (the step name cut to fit the name's limit);
    a definition that keeps its own job name (`use_custom_job_prefix`) gets `<name>-<executionId>-<attempt>`."""
    kind = JOB_STEPS[step_type]
    own = arguments.get(kind.name_field)
    if isinstance(own, str) and own:
        return f"{_safe(own)[:kind.max_name - 16]}-{execution_id}-{attempt}"
    suffix = random_token(10)
    if step_type == "Tuning":  # 32 characters: no room for the prefix
        return f"{execution_id}-{suffix.lower()}"[:kind.max_name]
    room = kind.max_name - len(f"pipelines-{execution_id}--{suffix}")
    return f"pipelines-{execution_id}-{_safe(step_name)[:room]}-{suffix}"


def job_request(step_type: str, arguments: dict[str, Any], name: str,
                experiment: dict[str, str] | None = None) -> dict[str, Any]:
    """The Create*Job request; training, processing and transform jobs join the execution's trial."""
    request = {key: value for key, value in arguments.items() if value is not None}
    request[JOB_STEPS[step_type].name_field] = name
    if experiment and step_type != "Tuning" and not request.get("ExperimentConfig"):
        request["ExperimentConfig"] = dict(experiment)
    return request


def ensure_trial(services: Any, region: str, experiment: dict[str, str]) -> bool:
    """The execution's experiment and trial (PipelineExperimentConfig), created when missing; False if they
    cannot be (the jobs then run outside any experiment)."""
    from sagemaker_emulator.protocol.errors import AwsError

    name, trial = experiment.get("ExperimentName"), experiment.get("TrialName")
    if not name or not trial:
        return False
    steps = ((("DescribeExperiment", {"ExperimentName": name}), ("CreateExperiment", {"ExperimentName": name})),
             (("DescribeTrial", {"TrialName": trial}), ("CreateTrial", {"TrialName": trial, "ExperimentName": name})))
    for describe, create in steps:
        try:
            services.sagemaker.call(describe[0], describe[1], region=region)
        except AwsError:
            try:
                services.sagemaker.call(create[0], create[1], region=region)
            except AwsError:
                return False
    return True


def job_properties(services: Any, region: str, step_type: str, name: str) -> dict[str, Any]:
    """The step's properties: the job's Describe response (Tuning adds its training jobs, best first)."""
    kind = JOB_STEPS[step_type]
    document = services.sagemaker.call(kind.describe, {kind.name_field: name}, region=region)
    document.pop("ResponseMetadata", None)
    if step_type == "Tuning":
        objective = (document.get("HyperParameterTuningJobConfig") or {}).get("HyperParameterTuningJobObjective") or {}
        order = "Ascending" if objective.get("Type") == "Minimize" else "Descending"
        listing = services.sagemaker.call("ListTrainingJobsForHyperParameterTuningJob", {
            "HyperParameterTuningJobName": name, "SortBy": "FinalObjectiveMetricValue", "SortOrder": order,
            "MaxResults": 100}, region=region)
        document["TrainingJobSummaries"] = listing.get("TrainingJobSummaries", [])
    return _plain(document)


def _plain(document: Any) -> Any:
    """A Describe answer as JSON values (datetimes become epoch seconds), to store with the execution."""
    return json.loads(json.dumps(document, default=lambda v: v.timestamp() if hasattr(v, "timestamp") else str(v)))


def job_metadata(step_type: str, arn: str, job: str) -> dict[str, Any]:
    """The step's `Metadata`: the job's ARN with the job name's case kept, as the ARNs AWS's pipelines
    hand out do; the SDK's `execution.result()` (and users) take the name from it for DescribeTrainingJob,
    whose name lookup is case-sensitive. (ARN lookups ignore case, so it still finds the job.)"""
    return {JOB_STEPS[step_type].metadata: {"Arn": f"{arn.rsplit('/', 1)[0]}/{job}"}}


def run_model(services: Any, region: str, arguments: dict[str, Any], name: str) -> tuple[dict, dict]:
    """A Model step: CreateModel (named like a job) -> (Metadata, properties = DescribeModel)."""
    request = {**arguments, "ModelName": arguments.get("ModelName") or name}
    call(services, "CreateModel", request, region=region)
    document = _plain(services.sagemaker.call("DescribeModel", {"ModelName": request["ModelName"]}, region=region))
    document.pop("ResponseMetadata", None)
    return {"Model": {"Arn": document["ModelArn"]}}, document


def run_register(services: Any, region: str, arguments: dict[str, Any]) -> tuple[dict, dict]:
    """A RegisterModel step: CreateModelPackage -> (Metadata, properties = DescribeModelPackage). The
    model package group is created when it does not exist (AWS's examples never create it themselves)."""
    from sagemaker_emulator.protocol.errors import AwsError

    group = arguments.get("ModelPackageGroupName")
    if isinstance(group, str) and group and not group.startswith("arn:"):
        try:
            services.sagemaker.call("DescribeModelPackageGroup", {"ModelPackageGroupName": group}, region=region)
        except AwsError:
            services.sagemaker.call("CreateModelPackageGroup", {"ModelPackageGroupName": group}, region=region)
    out = call(services, "CreateModelPackage", arguments, region=region)
    document = _plain(services.sagemaker.call("DescribeModelPackage", {"ModelPackageName": out["ModelPackageArn"]},
                                              region=region))
    document.pop("ResponseMetadata", None)
    return {"RegisterModel": {"Arn": out["ModelPackageArn"]}}, document


def run_endpoint_config(services: Any, region: str, arguments: dict[str, Any], name: str) -> tuple[dict, dict]:
    request = {**arguments, "EndpointConfigName": arguments.get("EndpointConfigName") or name}
    out = call(services, "CreateEndpointConfig", request, region=region)
    document = _plain(services.sagemaker.call("DescribeEndpointConfig",
                                              {"EndpointConfigName": request["EndpointConfigName"]}, region=region))
    document.pop("ResponseMetadata", None)
    return {"EndpointConfig": {"Arn": out["EndpointConfigArn"]}}, document


def run_endpoint(services: Any, region: str, arguments: dict[str, Any], name: str) -> tuple[dict, dict]:
    """An Endpoint step: CreateEndpoint (or UpdateEndpoint when it exists); the step ends once it is accepted."""
    from sagemaker_emulator.protocol.errors import AwsError

    request = {**arguments, "EndpointName": arguments.get("EndpointName") or name}
    try:
        services.sagemaker.call("DescribeEndpoint", {"EndpointName": request["EndpointName"]}, region=region)
        exists = True
    except AwsError:
        exists = False
    if exists:
        services.sagemaker.call("UpdateEndpoint", {k: request[k] for k in ("EndpointName", "EndpointConfigName")},
                                region=region)
    else:
        call(services, "CreateEndpoint", request, region=region)
    document = _plain(services.sagemaker.call("DescribeEndpoint", {"EndpointName": request["EndpointName"]},
                                              region=region))
    document.pop("ResponseMetadata", None)
    return {"Endpoint": {"Arn": document["EndpointArn"]}}, document


def output_parameters(declared: list[dict[str, Any]], values: dict[str, Any]) -> list[dict[str, str]]:
    """Callback/Lambda OutputParameters: the declared outputs, valued from what the step returned."""
    out = []
    for item in declared or []:
        name = item.get("OutputName")
        if name in values:
            value = values[name]
            out.append({"Name": name, "Value": value if isinstance(value, str) else json.dumps(value)})
    return out


def typed_outputs(declared: list[dict[str, Any]], outputs: list[dict[str, str]]) -> dict[str, Any]:
    """The properties' OutputParameters (`Steps.S.OutputParameters['name']` is the value itself), typed by
    the declared OutputType (String, Integer, Boolean, Float)."""
    types = {d.get("OutputName"): d.get("OutputType", "String") for d in declared or []}
    typed: dict[str, Any] = {}
    for item in outputs:
        value: Any = item["Value"]
        kind = types.get(item["Name"], "String")
        try:
            if kind == "Integer":
                value = int(value)
            elif kind == "Float":
                value = float(value)
            elif kind == "Boolean":
                value = str(value).lower() == "true"
        except ValueError:
            pass
        typed[item["Name"]] = value
    return typed


def run_lambda(services: Any, region: str, function_arn: str, event: Any,
               declared: list[dict[str, Any]]) -> tuple[dict, dict]:
    """A Lambda step: the embedded Lambda runs the function with the step's inputs as its event;
    the returned JSON object's members become the declared OutputParameters. Raises StepFailure."""
    try:
        from sagemaker_emulator.aws.lambda_runtime import invoke  # type: ignore[import-not-found]
    except ImportError as exc:
        raise StepFailure(f"Lambda steps need the embedded Lambda runtime, which is not available: {exc}") from None
    result = invoke(services, function_arn, json.dumps(event).encode(), region)
    if result.function_error:
        raise StepFailure(f"The Lambda function {function_arn} failed ({result.function_error}): "
                          f"{result.payload.decode(errors='replace')[:800]}")
    if result.status_code >= 300:
        raise StepFailure(f"Invoking the Lambda function {function_arn} answered {result.status_code}.")
    try:
        returned = json.loads(result.payload or b"{}")
    except ValueError:
        returned = {}
    outputs = output_parameters(declared, returned if isinstance(returned, dict) else {})
    return ({"Lambda": {"Arn": function_arn, "OutputParameters": outputs}},
            {"OutputParameters": typed_outputs(declared, outputs)})


class StepFailure(Exception):
    """A synchronous step failed: the message is its FailureReason."""


def send_callback(services: Any, region: str, queue_url: str, body: dict[str, Any]) -> None:
    """The Callback step's message to its SQS queue (the embedded SQS, or the URL's own host when it is ours)."""
    from sagemaker_emulator.aws.clients import self_client

    self_client("sqs", services.config.self_url, region).send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
