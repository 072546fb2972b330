"""Default model_fn/input_fn/predict_fn/output_fn, as AWS's scikit-learn and XGBoost containers document.

scikit-learn: a joblib/pickle model in /opt/ml/model; CSV, JSON and NPY in and out.
TensorFlow: a SavedModel behind TensorFlow Serving's JSON contract (`instances` in, `predictions` out).
PyTorch: a TorchScript `model.pt` (or `model.pth`), tensors from CSV/JSON/NPY, answers in the Accept type.
XGBoost: the `xgboost-model` file the algorithm writes; text/csv, text/libsvm, application/json and
application/x-recordio-protobuf in;
text/csv (one prediction per line) or application/json (`{"predictions": [{"score": ...}]}`) out.
"""
import glob
import json
import os
import pickle

import numpy as np
from sagemaker_inference import decoder, default_inference_handler, encoder, errors


def _first(model_dir: str, patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        found = sorted(glob.glob(os.path.join(model_dir, pattern)))
        if found:
            return found[0]
    return None


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


class SklearnHandler(default_inference_handler.DefaultInferenceHandler):
    def default_model_fn(self, model_dir, context=None):
        path = _first(model_dir, ("model.joblib", "*.joblib", "model.pkl", "*.pkl", "*.pickle"))
        if path is None:
            raise ValueError(f"No model_fn in the inference script and no *.joblib or *.pkl file in {model_dir}")
        if path.endswith(".joblib"):
            import joblib

            return joblib.load(path)
        with open(path, "rb") as handle:
            return pickle.load(handle)

    def default_input_fn(self, input_data, content_type, context=None):
        return decoder.decode(input_data, _base_type(content_type) or "application/json")

    def default_predict_fn(self, data, model, context=None):
        return model.predict(data)

    def default_output_fn(self, prediction, accept, context=None):
        return encoder.encode(prediction, _base_type(accept) or "application/json")


def _libsvm(text: str):
    import scipy.sparse

    rows, cols, values = [], [], []
    count = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        start = 1 if ":" not in parts[0] else 0  # a label column may lead; prediction ignores it
        for item in parts[start:]:
            index, value = item.split(":", 1)
            rows.append(count)
            cols.append(int(index))
            values.append(float(value))
        count += 1
    width = max(cols) + 1 if cols else 0
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(count, width))


class XGBoostHandler(default_inference_handler.DefaultInferenceHandler):
    def default_model_fn(self, model_dir, context=None):
        import xgboost as xgb

        path = _first(model_dir, ("xgboost-model", "*.json", "*.ubj", "*.model", "*.bst", "*"))
        if path is None:
            raise ValueError(f"No model_fn in the inference script and no xgboost-model file in {model_dir}")
        booster = xgb.Booster()
        try:
            booster.load_model(path)
        except Exception:  # AWS's older containers pickled the booster
            with open(path, "rb") as handle:
                booster = pickle.load(handle)
        return booster

    def default_input_fn(self, input_data, content_type, context=None):
        import xgboost as xgb

        kind = _base_type(content_type) or "text/csv"
        if kind == "application/x-recordio-protobuf":  # labels, when the records carry them, are ignored
            from . import recordio_protobuf

            try:
                return xgb.DMatrix(recordio_protobuf.read(bytes(input_data))[0])
            except ValueError as exc:
                raise errors.BaseInferenceToolkitError(  # AWS's container answers 415 with this reason
                    415, f"Loading recordio-protobuf data failed, please ensure data is in recordio-protobuf "
                    f"format: {exc}", "Unsupported Media Type") from None
        text = input_data.decode() if isinstance(input_data, (bytes, bytearray)) else str(input_data)
        if kind == "text/csv":
            rows = [[float(v) if v.strip() else np.nan for v in line.split(",")]
                    for line in text.splitlines() if line.strip()]
            return xgb.DMatrix(np.array(rows, dtype=float))
        if kind in ("text/libsvm", "text/x-libsvm"):
            return xgb.DMatrix(_libsvm(text))
        if kind in ("application/json", "application/jsonlines"):
            lines = text.splitlines() if kind == "application/jsonlines" else [text]
            rows = []
            for line in filter(str.strip, lines):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    doc = doc.get("instances", doc.get("features", doc.get("data")))
                if doc and isinstance(doc[0], dict):
                    doc = [d.get("features", d.get("data")) for d in doc]
                rows.extend(doc if doc and isinstance(doc[0], list) else [doc])
            return xgb.DMatrix(np.array(rows, dtype=float))
        raise errors.UnsupportedFormatError(kind)

    def default_predict_fn(self, data, model, context=None):
        return model.predict(data)

    def default_output_fn(self, prediction, accept, context=None):
        kind = _base_type(accept)
        if kind in ("", "*/*", "text/csv"):
            values = np.asarray(prediction)
            lines = [",".join(str(v) for v in row) if values.ndim > 1 else str(row) for row in values.tolist()]
            return "\n".join(lines), "text/csv"
        if kind == "application/json":
            scores = [{"score": row} for row in np.asarray(prediction).tolist()]
            return json.dumps({"predictions": scores}), "application/json"
        if kind == "application/jsonlines":
            return "\n".join(json.dumps({"score": row}) for row in np.asarray(prediction).tolist()), kind
        raise errors.UnsupportedFormatError(kind)


class PyTorchHandler(default_inference_handler.DefaultInferenceHandler):
    """The defaults of AWS's PyTorch inference toolkit: TorchScript model, numpy <-> tensor."""

    def default_model_fn(self, model_dir, context=None):
        import torch

        path = _first(model_dir, ("model.pt", "model.pth", "*.pt", "*.pth"))
        if path is None:
            raise ValueError(f"No model_fn in the inference script and no model.pt/model.pth in {model_dir}")
        return torch.jit.load(path, map_location="cpu").eval()

    def default_input_fn(self, input_data, content_type, context=None):
        import torch

        array = decoder.decode(input_data, _base_type(content_type) or "application/json")
        return torch.as_tensor(np.asarray(array, dtype=np.float32))

    def default_predict_fn(self, data, model, context=None):
        import torch

        with torch.no_grad():
            return model(data)

    def default_output_fn(self, prediction, accept, context=None):
        import torch

        if isinstance(prediction, torch.Tensor):
            prediction = prediction.detach().cpu().numpy()
        return encoder.encode(prediction, _base_type(accept) or "application/json")


class TensorFlowHandler(default_inference_handler.DefaultInferenceHandler):
    """TensorFlow Serving's REST contract, as the tensorflow-inference containers expose it at /invocations:
    a SavedModel (the highest numbered version under /opt/ml/model), `{"instances": [...]}` (or
    `{"inputs": ...}`, a bare list, or CSV rows) through `serving_default`, `{"predictions": [...]}` back."""

    def default_model_fn(self, model_dir, context=None):
        import tensorflow as tf

        found = [root for root, _, files in os.walk(model_dir) if "saved_model.pb" in files]
        if not found:
            raise ValueError(f"No SavedModel (saved_model.pb) under {model_dir}")

        def version(path: str) -> tuple[int, str]:
            base = os.path.basename(path)
            return (int(base) if base.isdigit() else -1, path)

        return tf.saved_model.load(max(found, key=version))

    def default_input_fn(self, input_data, content_type, context=None):
        kind = _base_type(content_type) or "application/json"
        text = input_data.decode() if isinstance(input_data, (bytes, bytearray)) else str(input_data)
        if kind == "text/csv":
            return [[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()]
        if kind != "application/json":
            raise errors.UnsupportedFormatError(kind)
        doc = json.loads(text)
        if isinstance(doc, dict):
            doc = doc.get("instances", doc.get("inputs"))
        return doc

    def default_predict_fn(self, data, model, context=None):
        import tensorflow as tf

        serve = model.signatures["serving_default"]
        _, inputs = serve.structured_input_signature
        name, spec = next(iter(inputs.items()))
        outputs = serve(**{name: tf.constant(data, dtype=spec.dtype)})
        if len(outputs) == 1:
            return next(iter(outputs.values())).numpy()
        return {key: value.numpy() for key, value in outputs.items()}

    def default_output_fn(self, prediction, accept, context=None):
        if isinstance(prediction, dict):
            columns = {key: np.asarray(value).tolist() for key, value in prediction.items()}
            rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
            return json.dumps({"predictions": rows}), "application/json"
        return json.dumps({"predictions": np.asarray(prediction).tolist()}), "application/json"
