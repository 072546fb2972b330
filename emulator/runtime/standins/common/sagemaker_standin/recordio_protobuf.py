"""RecordIO-protobuf (`application/x-recordio-protobuf`) to a feature matrix and labels, for XGBoost.

The format of SageMaker's built-in algorithms, as the SDK's `sagemaker.amazon.common` writes it: MXNet
RecordIO framing (magic 0xced7230a, u32 length, payload, zero padding to 4 bytes), each payload one
`aialgs.data.Record` protobuf whose `features["values"]` is a float32/float64/int32 tensor -- dense
(values only) or sparse (values + `keys` column indices + `shape` = [width]) -- and whose
`label["values"]` holds the label. AWS's XGBoost container reads it with its own code and the Record
class of its toolkit since it dropped MLIO (aws/sagemaker-xgboost-container#478); the stand-in does the
same with `sagemaker_training.record_pb2`, which the training toolkit already ships, so no new
dependency. The container cannot import the emulator, hence this small framing reader of its own.
"""
import struct

import numpy as np
import scipy.sparse
from sagemaker_training.record_pb2 import Record

MAGIC = 0xCED7230A
_LENGTH_BITS = (1 << 29) - 1
_TENSORS = ("float32_tensor", "float64_tensor", "int32_tensor")


def payloads(buf: bytes):
    """The record payloads of a RecordIO buffer; ValueError on a bad magic, a truncated or a split record.
    The last record's padding may be missing (batch transform's SingleRecord requests strip it)."""
    view = memoryview(buf)
    offset = 0
    while offset < len(view):
        if offset + 8 > len(view):
            raise ValueError(f"truncated RecordIO header at byte {offset}")
        magic, word = struct.unpack_from("<II", view, offset)
        if magic != MAGIC:
            raise ValueError(f"not RecordIO: bad magic {magic:#010x} at byte {offset}")
        if word >> 29:
            raise ValueError(f"split RecordIO record (continuation flag {word >> 29}) at byte {offset}")
        start = offset + 8
        end = start + (word & _LENGTH_BITS)
        if end > len(view):
            raise ValueError(f"truncated RecordIO record at byte {offset}")
        yield bytes(view[start:end])
        offset = end + (-(end - start) % 4)


def _tensor(value, what: str):
    kind = value.WhichOneof("value")
    if kind not in _TENSORS:
        raise ValueError(f"the {what} of a record is {kind or 'empty'}, not a float32, float64 or int32 tensor")
    tensor = getattr(value, kind)
    return np.asarray(tensor.values, dtype=np.float32), list(tensor.keys), list(tensor.shape)


def read(buf: bytes, need_labels: bool = False):
    """(features, labels) of every record in `buf`: a dense ndarray, or a CSR matrix when any record is
    sparse; labels is None when no record has one (inference), and every record needs one otherwise."""
    indptr, indices, data, labels = [0], [], [], []
    width, sparse, dense_widths = 0, False, set()
    for number, payload in enumerate(payloads(buf)):
        record = Record()
        record.ParseFromString(payload)
        if "values" not in record.features:
            raise ValueError(f"record {number} has no features['values'] tensor")
        values, keys, shape = _tensor(record.features["values"], "features")
        if keys:
            if len(keys) != len(values):
                raise ValueError(f"record {number} has {len(keys)} keys for {len(values)} values")
            sparse = True
            columns = np.asarray(keys, dtype=np.int64)
        else:
            dense_widths.add(len(values))
            columns = np.arange(len(values), dtype=np.int64)
        width = max(width, int(shape[0]) if shape else 0, int(columns.max()) + 1 if len(columns) else 0)
        indices.append(columns)
        data.append(values)
        indptr.append(indptr[-1] + len(values))
        if "values" in record.label:
            label, _, _ = _tensor(record.label["values"], "label")
            if len(label) != 1:
                raise ValueError(f"record {number} has {len(label)} label values, not 1")
            labels.append(float(label[0]))
    rows = len(indptr) - 1
    if rows == 0:
        raise ValueError("no records")
    if not sparse and len(dense_widths) > 1:
        raise ValueError(f"dense records of different widths: {sorted(dense_widths)}")
    if labels and len(labels) != rows or need_labels and not labels:
        raise ValueError(f"{len(labels)} of the {rows} records have a label; every record needs one")
    matrix = scipy.sparse.csr_matrix((np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
                                     shape=(rows, width))
    return (matrix if sparse else matrix.toarray()), (np.asarray(labels) if labels else None)
