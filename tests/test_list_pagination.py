"""MaxResults and StatusEquals: filtered first everywhere, except ListTrainingJobs as it documents.

botocore's ListTrainingJobs documentation: "the MaxResults number of training jobs are first retrieved
ignoring the StatusEquals parameter and then they are filtered by the StatusEquals parameter". Every other
List* filters first and then applies MaxResults.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_emulator.handlers import processing_jobs, training_jobs
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.database import open_database

STATUSES = ["Completed", "Failed", "Completed", "Failed", "Failed", "Completed"]


@pytest.fixture
def ctx(tmp_path: Path):
    db = open_database(tmp_path)
    for index, status in enumerate(STATUSES):
        for kind in ("training-job", "processing-job"):
            name = f"job-{index}"
            resources.create(kind, "us-east-1", name, f"arn:aws:sagemaker:us-east-1:1:{kind}/{name}", {},
                             status=status, created=1000.0 + index)
    yield RequestContext(region="us-east-1", account_id="123456789012", request_id="r")
    db.close()


def _names(summaries: list[dict], prefix: str) -> list[str]:
    return [s[f"{prefix}Name"] for s in summaries]


def test_list_training_jobs_takes_max_results_then_filters(ctx):
    params = {"MaxResults": 2, "StatusEquals": "Completed", "SortBy": "CreationTime", "SortOrder": "Ascending"}
    pages = []
    while True:
        page = training_jobs.list_training_jobs(ctx, params)
        pages.append(_names(page["TrainingJobSummaries"], "TrainingJob"))
        if "NextToken" not in page:
            break
        params = {**params, "NextToken": page["NextToken"]}
    # windows of two jobs: (0 C, 1 F), (2 C, 3 F), (4 F, 5 C) -> one Completed job from each
    assert pages == [["job-0"], ["job-2"], ["job-5"]]


def test_other_lists_filter_then_take_max_results(ctx):
    page = processing_jobs.list_processing_jobs(ctx, {"MaxResults": 2, "StatusEquals": "Completed",
                                                      "SortBy": "CreationTime", "SortOrder": "Ascending"})
    assert _names(page["ProcessingJobSummaries"], "ProcessingJob") == ["job-0", "job-2"]
    assert "NextToken" in page
