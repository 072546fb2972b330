"""XGBoost's built-in algorithm mode (no entry point), under the contract AWS documents for it.

Channels `train` (required) and `validation` (optional) hold CSV (label in the first column, no
header), LIBSVM or Parquet (label first), chosen by the channel's ContentType (default text/libsvm,
as on AWS). Hyperparameters are XGBoost's parameters plus `num_round` (required) and
`early_stopping_rounds`; every round logs `[i]\\ttrain-<metric>:v\\tvalidation-<metric>:v`, which
SageMaker's metric definitions for the algorithm read (CloudWatch shows the TAB as `#011`). The
booster is saved as /opt/ml/model/xgboost-model.
"""
import glob
import os

import numpy as np
import xgboost as xgb
from sagemaker_training import errors

RESERVED = {"num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination",
            "_tuning_objective_metric", "_kfold", "_num_cv_round"}
CONTENT_TYPES = {"text/csv": "csv", "csv": "csv", "text/libsvm": "libsvm", "libsvm": "libsvm",
                 "text/x-libsvm": "libsvm", "application/x-parquet": "parquet", "parquet": "parquet"}


def _value(text):
    if not isinstance(text, str):
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _files(path):
    found = [f for f in sorted(glob.glob(os.path.join(path, "**", "*"), recursive=True))
             if os.path.isfile(f) and not os.path.basename(f).startswith(".")]
    if not found:
        raise errors.ClientError(f"No data files in {path}")
    return found


def _libsvm_rows(paths):
    labels, rows, cols, values = [], [], [], []
    for path in paths:
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                if not parts:
                    continue
                labels.append(float(parts[0].split(":")[0]))
                for item in parts[1:]:
                    index, value = item.split(":", 1)
                    rows.append(len(labels) - 1)
                    cols.append(int(index))
                    values.append(float(value))
    import scipy.sparse

    width = max(cols) + 1 if cols else 0
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(labels), width)), np.array(labels)


def load_channel(path, content_type):
    kind = CONTENT_TYPES.get((content_type or "text/libsvm").split(";")[0].strip().lower())
    if kind is None:
        raise errors.ClientError(f"Content type {content_type!r} is not supported by this stand-in; use "
                                 "text/csv, text/libsvm or application/x-parquet")
    paths = _files(path)
    if kind == "csv":
        arrays = [np.loadtxt(p, delimiter=",", ndmin=2) for p in paths]
        data = np.vstack(arrays)
        return xgb.DMatrix(data[:, 1:], label=data[:, 0])
    if kind == "parquet":
        import pandas as pd

        frame = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        data = frame.to_numpy(dtype=float)
        return xgb.DMatrix(data[:, 1:], label=data[:, 0])
    matrix, labels = _libsvm_rows(paths)
    return xgb.DMatrix(matrix, label=labels)


def train(env) -> None:
    hps = {k: _value(v) for k, v in env.hyperparameters.items() if not k.startswith("sagemaker_")}
    if "num_round" not in hps:
        raise errors.ClientError("Missing required hyperparameter: num_round")
    channels = env.channel_input_dirs
    if "train" not in channels:
        raise errors.ClientError("A 'train' channel is required")
    config = env.input_data_config or {}
    dtrain = load_channel(channels["train"], config.get("train", {}).get("ContentType"))
    evals = [(dtrain, "train")]
    if "validation" in channels:
        evals.append((load_channel(channels["validation"], config.get("validation", {}).get("ContentType")),
                      "validation"))
    params = {k: v for k, v in hps.items() if k not in RESERVED}
    if isinstance(params.get("eval_metric"), str) and "," in params["eval_metric"]:
        params["eval_metric"] = params["eval_metric"].split(",")
    early = hps.get("early_stopping_rounds")
    if early is not None and len(evals) < 2:
        raise errors.ClientError("early_stopping_rounds needs a validation channel")
    booster = xgb.train(params, dtrain, num_boost_round=int(hps["num_round"]), evals=evals,
                        early_stopping_rounds=int(early) if early is not None else None, verbose_eval=True)
    os.makedirs(env.model_dir, exist_ok=True)
    booster.save_model(os.path.join(env.model_dir, "xgboost-model"))
