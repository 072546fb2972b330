"""Image resolution: mapping table, name as given, ECR URI -> repo:tag; clear reason when missing."""

from __future__ import annotations

import pytest

from sagemaker_emulator.runtime.images import ImageUnavailable, candidates, resolve

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-algo:2.0"


def test_candidates_order():
    assert candidates(ECR, {}) == [ECR, "my-algo:2.0"]
    assert candidates(ECR, {ECR: "mapped:1"})[0] == "mapped:1"
    assert candidates("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost", {}) == [
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost", "sagemaker-xgboost:latest"]
    assert candidates("local:1", {}) == ["local:1"]


def test_resolve_and_missing():
    assert resolve(ECR, {}, {"my-algo:2.0"}.__contains__).local == "my-algo:2.0"
    assert resolve(ECR, {"my-algo:2.0": "other:3"}, {"other:3"}.__contains__).local == "other:3"
    with pytest.raises(ImageUnavailable, match="docker build -t my-algo:2.0"):
        resolve(ECR, {}, lambda name: False)
    pulled = []
    assert resolve("pullable:1", {}, lambda n: False, lambda n: pulled.append(n) or True).local == "pullable:1"
