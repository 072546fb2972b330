"""The model server's handler service: the inference toolkit's own, with the framework's defaults."""
import os

from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer

from . import defaults


class HandlerService(DefaultHandlerService):
    """Loads the user module (SAGEMAKER_PROGRAM) over the framework's default model/input/predict/output."""

    def __init__(self) -> None:
        framework = os.environ.get("SAGEMAKER_STANDIN_FRAMEWORK", "sklearn")
        if framework == "xgboost":  # AWS's XGBoost answers CSV when the request names no Accept
            os.environ.setdefault("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
        handler = {"xgboost": defaults.XGBoostHandler, "pytorch": defaults.PyTorchHandler,
                   "tensorflow": defaults.TensorFlowHandler}.get(framework, defaults.SklearnHandler)()
        super().__init__(transformer=Transformer(default_inference_handler=handler))
