"""InvokeEndpointAsync requests accepted before a kill -9 are processed after the restart: every
output (or failure record) lands in S3 and its SNS notification reaches the subscribed queue."""

from __future__ import annotations

import json

from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE, endpoint_config, unique, wait_endpoint, wait_for_object, wait_until

N = 6


def notifications(sqs, url: str, wanted: int) -> list[dict]:
    seen: dict[str, dict] = {}

    def enough() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []):
            body = json.loads(json.loads(message["Body"])["Message"])
            seen[body["inferenceId"]] = body
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(seen) >= wanted

    wait_until(enough, 120, lambda: f"{wanted} notifications (have {len(seen)})")
    return list(seen.values())


def test_async_requests_survive_kill(tmp_path, serving_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm, s3, sns, sqs = (server.client(s) for s in ("sagemaker", "s3", "sns", "sqs"))
        bucket = unique("async-crash")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="in/ok.json", Body=b'{"q": 1}')
        s3.put_object(Bucket=bucket, Key="in/bad.json", Body=b"error:500")
        queue = unique("notes")
        sqs.create_queue(QueueName=queue)
        topic = sns.create_topic(Name=unique("async-topic"))["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:us-east-1:123456789012:{queue}")
        model = unique("slow")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": serving_image, "Environment": {"SLEEP_SECONDS": "3", "STARTUP_SECONDS": "5"}})
        config = endpoint_config(sm, ("AllTraffic", model, 1, 1.0), AsyncInferenceConfig={"OutputConfig": {
            "S3OutputPath": f"s3://{bucket}/out", "S3FailurePath": f"s3://{bucket}/fail",
            "NotificationConfig": {"SuccessTopic": topic, "ErrorTopic": topic,
                                   "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"]}}})
        name = unique("ep-async")
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        wait_endpoint(sm, name, "InService")
        runtime = server.client("sagemaker-runtime")
        accepted = []
        for i in range(N):
            key = "in/bad.json" if i == N - 1 else "in/ok.json"
            accepted.append(runtime.invoke_endpoint_async(
                EndpointName=name, InputLocation=f"s3://{bucket}/{key}", ContentType="application/json",
                InferenceId=f"req-{i}"))
        server.stop(kill=True)  # the slow model has answered none (or one) of them

        server.start()
        sm, s3, sqs = server.client("sagemaker"), server.client("s3"), server.client("sqs")
        # while it is deployed again (SystemUpdating: the model takes 5 s to load) the endpoint accepts
        # requests into the queue
        assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "SystemUpdating"
        accepted.insert(0, server.client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName=name, InputLocation=f"s3://{bucket}/in/ok.json", ContentType="application/json",
            InferenceId="during-redeploy"))
        for reply in accepted[:-1]:
            key = reply["OutputLocation"].split("/", 3)[3]
            result = json.loads(wait_for_object(s3, bucket, key, timeout=180))
            assert result["echo"] == '{"q": 1}'
        failure = wait_for_object(s3, bucket, accepted[-1]["FailureLocation"].split("/", 3)[3], timeout=60)
        assert "Received server error (500)" in failure.decode()

        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]  # the queue and subscription persisted too
        notes = {n["inferenceId"]: n for n in notifications(sqs, url, N + 1)}
        assert set(notes) == {f"req-{i}" for i in range(N)} | {"during-redeploy"}
        ok, bad = notes["req-0"], notes[f"req-{N - 1}"]
        assert ok["invocationStatus"] == "Completed" and ok["eventName"] == "InferenceResult"
        assert ok["responseParameters"]["outputLocation"] == accepted[1]["OutputLocation"]
        assert json.loads(ok["responseBody"]["content"])["echo"] == '{"q": 1}'
        assert ok["requestParameters"] == {"contentType": "application/json", "endpointName": name,
                                           "inputLocation": f"s3://{bucket}/in/ok.json"}
        assert bad["invocationStatus"] == "Failed" and "500" in bad["failureReason"]
        assert bad["responseParameters"]["failureLocation"] == accepted[-1]["FailureLocation"]
        sm.delete_endpoint(EndpointName=name)
