"""`serve` of the stand-ins: AWS's inference toolkit (sagemaker-inference) with the framework's handlers.

As in AWS's framework containers, the user's inference code is SAGEMAKER_PROGRAM in
SAGEMAKER_SUBMIT_DIRECTORY (an S3 `sourcedir.tar.gz`, fetched with the container's credentials) or in
/opt/ml/model/code (a repacked model); model_fn/input_fn/predict_fn/output_fn it defines replace the
framework's defaults (sagemaker_standin.defaults).
"""
import os

from sagemaker_inference import model_server

CODE_DIR = "/opt/ml/code"


def main() -> None:
    submit = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if submit and submit != "/opt/ml/model/code" and os.environ.get("SAGEMAKER_PROGRAM"):
        from sagemaker_training import files

        files.download_and_extract(submit, CODE_DIR)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (CODE_DIR, os.environ.get("PYTHONPATH")) if p)
    model_server.start_model_server(handler_service="sagemaker_standin.handler_service")
