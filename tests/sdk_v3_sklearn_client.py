"""Run by tests/test_sdk_v3.py with the python of .venv-sdk3: SDK v3's ModelTrainer on AWS's
scikit-learn image (its ECR URI from the SDK's own image_uris), with a source directory and an entry
script, as a v3 user writes it. Prints one JSON line of what it saw."""

from __future__ import annotations

import json
import pathlib

from sagemaker.core import image_uris
from sagemaker.core.helper.session_helper import Session
from sagemaker.train import ModelTrainer
from sagemaker.train.configs import Compute, InputData, OutputDataConfig, SourceCode
from sdk_v3_common import BUCKET, NO_TELEMETRY, ensure_role

code = pathlib.Path("sk-code")
code.mkdir(exist_ok=True)
(code / "train.py").write_text('''
import json, os, pickle, sys
import numpy as np
import sklearn
from sklearn.linear_model import LinearRegression
channel = os.environ["SM_CHANNEL_TRAIN"]
rows = np.loadtxt(os.path.join(channel, sorted(os.listdir(channel))[0]), delimiter=",")
model = LinearRegression().fit(rows[:, 1:], rows[:, 0])
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.pkl"), "wb") as f:
    pickle.dump(model, f)
print("trained sklearn", sklearn.__version__, "coef", list(model.coef_), "on", sys.version.split()[0], flush=True)
''')
pathlib.Path("sk.csv").write_text("".join(f"{2 * x + 1},{x}\n" for x in range(10)))

image = image_uris.retrieve("sklearn", "us-east-1", "1.2-1", instance_type="ml.m5.large")
session = Session(default_bucket=BUCKET, sagemaker_config=NO_TELEMETRY)
trainer = ModelTrainer(training_image=image, role=ensure_role(),
                       source_code=SourceCode(source_dir=str(code), entry_script="train.py"),
                       compute=Compute(instance_type="ml.m5.large", instance_count=1),
                       output_data_config=OutputDataConfig(s3_output_path=f"s3://{session.default_bucket()}/v3-sk"),
                       base_job_name="v3-sklearn", sagemaker_session=session)
trainer.train(input_data_config=[InputData(channel_name="train",
                                           data_source=session.upload_data("sk.csv", key_prefix="v3-sk-data"))],
              wait=True, logs=False)
job = trainer._latest_training_job
job.refresh()
print(json.dumps({"image": image, "job": job.training_job_name, "status": job.training_job_status,
                  "failure": job.failure_reason if isinstance(job.failure_reason, str) else None,
                  "artifacts": job.model_artifacts.s3_model_artifacts}))
