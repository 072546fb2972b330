"""XGBoost's built-in algorithm mode (no entry point), under the contract AWS documents for it.

Channels `train` (required) and `validation` (optional) hold CSV (label in the first column, no
header), LIBSVM, Parquet (label first) or RecordIO-protobuf (File mode; label in each record), chosen
by the channel's ContentType (default text/libsvm, as on AWS).
Hyperparameters are XGBoost's parameters plus `num_round` (required) and
`early_stopping_rounds`; every round logs `[i]\\ttrain-<metric>:v\\tvalidation-<metric>:v`, which
SageMaker's metric definitions for the algorithm read (CloudWatch shows the TAB as `#011`). The
booster is saved as /opt/ml/model/xgboost-model.
"""
import os

import numpy as np
import xgboost as xgb
from sagemaker_training import errors

RESERVED = {"num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination",
            "_tuning_objective_metric", "_kfold", "_num_cv_round"}
# AWS's container accepts these (lower-cased, parameters after ';' dropped; `label_size` must be 1 for CSV)
CONTENT_TYPES = {"text/csv": "csv", "csv": "csv", "text/libsvm": "libsvm", "libsvm": "libsvm",
                 "text/x-libsvm": "libsvm", "application/x-parquet": "parquet", "parquet": "parquet",
                 "application/x-recordio-protobuf": "recordio-protobuf", "recordio-protobuf": "recordio-protobuf"}
MAX_FOLDER_DEPTH = 3  # files deeper under a channel are not read (AWS's container warns and skips them)


def _value(text):
    if not isinstance(text, str):
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def content_kind(content_type):
    """`text/csv; label_size=1` -> `csv`; None (no ContentType) is LIBSVM, the algorithm's default."""
    if content_type is None:
        return "libsvm"
    main, *params = [part.strip() for part in content_type.lower().split(";")]
    kind = CONTENT_TYPES.get(main)
    if kind is None:
        raise errors.ClientError(f"{content_type} is not an accepted ContentType: "
                                 f"{', '.join(sorted(CONTENT_TYPES))}.")
    options = dict(p.split("=", 1) for p in params if "=" in p)
    if kind == "csv" and options.get("label_size", "1").strip() != "1":
        raise errors.ClientError(f"{content_type} is not an accepted csv ContentType. "
                                 "Optional parameter label_size must be equal to 1")
    return kind


def _files(path, skip_prefixes=(".",)):
    """The channel's data files, down to MAX_FOLDER_DEPTH levels, in name order."""
    found = []
    for root, dirs, names in os.walk(path):
        depth = os.path.relpath(root, path).count(os.sep) + (root != path) + 1
        dirs.sort()
        if depth > MAX_FOLDER_DEPTH:
            print(f"The depth of folder {path} exceeds the limit {MAX_FOLDER_DEPTH}; the files under {root} "
                  "are not read.", flush=True)
            dirs.clear()
            continue
        found += [os.path.join(root, n) for n in sorted(names) if not n.startswith(skip_prefixes)]
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


def _parquet_rows(paths):
    """Every Parquet file of the channel as one table (label in the first column), as AWS's container reads
    a channel directory with pyarrow (files in one flat folder: `key=value` folders add no column); Spark's
    `_SUCCESS`/`_committed_*` and `.crc` files are skipped."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(paths, partitioning=None).to_pandas().to_numpy(dtype=float)
    except Exception as exc:
        raise errors.ClientError(f"Failed to load parquet data with exception:\n{exc}") from None


def _recordio_protobuf_rows(paths):
    """Every file of the channel as one RecordIO-protobuf stream (records never span files), as AWS's
    container reads it; the label of each record is its `label["values"]`."""
    from . import recordio_protobuf

    buf = b"".join(open(p, "rb").read() for p in paths)
    try:
        return recordio_protobuf.read(buf, need_labels=True)
    except ValueError as exc:
        raise errors.ClientError(f"Failed to load recordio-protobuf data with exception:\n{exc}") from None


def load_channel(path, content_type, input_mode="File"):
    kind = content_kind(content_type)
    if kind == "recordio-protobuf" and input_mode == "Pipe":  # AWS's container refuses it the same way
        raise errors.ClientError("Pipe mode for RecordIO-Protobuf is no longer supported. Please use File mode "
                                 "instead. Set input_mode='File' in your SageMaker Estimator or TrainingInput.")
    if kind == "csv":
        data = np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in _files(path)])
        matrix = xgb.DMatrix(data[:, 1:], label=data[:, 0])
    elif kind == "parquet":
        data = _parquet_rows(_files(path, skip_prefixes=(".", "_")))
        matrix = xgb.DMatrix(data[:, 1:], label=data[:, 0])
    elif kind == "recordio-protobuf":
        features, labels = _recordio_protobuf_rows(_files(path))
        matrix = xgb.DMatrix(features, label=labels)
    else:
        features, labels = _libsvm_rows(_files(path))
        matrix = xgb.DMatrix(features, label=labels)
    if matrix.num_row() == 0:
        raise errors.ClientError(f"Got input data without labels in {path}. Please check the input data set.")
    return matrix


def train(env) -> None:
    hps = {k: _value(v) for k, v in env.hyperparameters.items() if not k.startswith("sagemaker_")}
    if "num_round" not in hps:
        raise errors.ClientError("Missing required hyperparameter: num_round")
    channels = env.channel_input_dirs
    if "train" not in channels:
        raise errors.ClientError("A 'train' channel is required")
    config = env.input_data_config or {}

    def channel(name):
        spec = config.get(name, {})
        return load_channel(channels[name], spec.get("ContentType"), spec.get("TrainingInputMode", "File"))

    dtrain = channel("train")
    evals = [(dtrain, "train")]
    if "validation" in channels:
        evals.append((channel("validation"), "validation"))
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
