"""Batch transform's pure parts: record splitting/packing, the JSONPath subset, joins, settings, resuming."""

from __future__ import annotations

import io
import json
import os

import pytest

from sagemaker_emulator import staging
from sagemaker_emulator.jobs.transform import jsonpath, resume
from sagemaker_emulator.jobs.transform import records as rec
from sagemaker_emulator.jobs.transform.jsonpath import DataProcessor, FilterError
from sagemaker_emulator.jobs.transform.settings import batch_environment, effective_settings
from sagemaker_emulator.staging import recordio


def split(data: bytes, split_type: str, strategy: str = rec.MULTI_RECORD) -> list[bytes]:
    return list(rec.split(io.BytesIO(data), split_type, strategy))


# -- splitting -------------------------------------------------------------------------------------
def test_line_split_keeps_order_and_skips_blank_lines():
    assert split(b"a,1\n\nb,2\r\nc,3", rec.LINE) == [b"a,1\n", b"b,2\r\n", b"c,3\n"]


def test_line_split_across_read_chunks(monkeypatch):
    monkeypatch.setattr(rec, "READ_CHUNK", 3)
    lines = [f"row-{i}".encode() for i in range(50)]
    assert split(b"\n".join(lines) + b"\n", rec.LINE) == [line + b"\n" for line in lines]


def test_none_split_is_the_whole_object():
    assert split(b"x\ny\n", rec.NONE) == [b"x\ny\n"]


def test_recordio_padding_kept_for_multi_and_stripped_for_single():
    stream = recordio.pack(b"abcde") + recordio.pack(b"xy")
    multi = split(stream, rec.RECORDIO, rec.MULTI_RECORD)
    assert multi == [recordio.pack(b"abcde"), recordio.pack(b"xy")]
    single = split(stream, rec.RECORDIO, rec.SINGLE_RECORD)
    assert single == [recordio.header(5) + b"abcde", recordio.header(2) + b"xy"]


def test_recordio_bad_magic_is_a_clear_error():
    with pytest.raises(rec.BadRecords, match="magic"):
        split(b"\x00" * 16, rec.RECORDIO)


def test_tfrecord_split_and_truncation():
    stream = rec.tfrecord(b"one") + rec.tfrecord(b"second")
    assert split(stream, rec.TFRECORD) == [rec.tfrecord(b"one"), rec.tfrecord(b"second")]
    with pytest.raises(rec.BadRecords, match="Truncated"):
        split(stream[:-3], rec.TFRECORD)


# -- packing ---------------------------------------------------------------------------------------
def test_single_record_is_one_record_per_batch():
    batches = list(rec.pack([b"a\n", b"b\n", b"c\n"], rec.SINGLE_RECORD, 100))
    assert [(b.first, b.body) for b in batches] == [(0, b"a\n"), (1, b"b\n"), (2, b"c\n")]


def test_multi_record_fills_up_to_the_limit_with_whole_records():
    records = [b"x" * 4 + b"\n"] * 7  # 5 bytes each
    batches = list(rec.pack(records, rec.MULTI_RECORD, 12))
    assert [b.count for b in batches] == [2, 2, 2, 1]
    assert [b.first for b in batches] == [0, 2, 4, 6]
    assert all(len(b.body) <= 12 for b in batches)
    assert b"".join(b.body for b in batches) == b"".join(records)


def test_exact_fit_and_unlimited():
    assert [b.count for b in rec.pack([b"ab", b"cd", b"ef"], rec.MULTI_RECORD, 4)] == [2, 1]
    assert [b.count for b in rec.pack([b"ab"] * 1000, rec.MULTI_RECORD, 0)] == [1000]


def test_a_record_over_the_limit_fails_after_the_batches_before_it():
    packed = rec.pack([b"ok\n", b"x" * 20, b"ok\n"], rec.MULTI_RECORD, 10)
    assert next(packed).body == b"ok\n"
    with pytest.raises(rec.RecordTooLarge) as info:
        next(packed)
    assert info.value.index == 1 and info.value.size == 20
    assert "record 2 is 20 bytes" in str(info.value)


def test_strategy_spellings():
    assert rec.normalize_strategy("MULTI_RECORD") == rec.MULTI_RECORD
    assert rec.normalize_strategy("MultiRecord") == rec.MULTI_RECORD
    assert rec.normalize_strategy("SINGLE_RECORD") == rec.SINGLE_RECORD
    assert rec.normalize_strategy("nonsense") is None
    assert rec.env_strategy(rec.SINGLE_RECORD) == "SINGLE_RECORD"


# -- settings --------------------------------------------------------------------------------------
def test_settings_precedence_request_then_container_then_defaults():
    defaults = effective_settings({}, {})
    assert (defaults.concurrency, defaults.max_payload_mb, defaults.strategy) == (1, 6, rec.MULTI_RECORD)
    container = {"MaxConcurrentTransforms": 4, "MaxPayloadInMB": 2, "BatchStrategy": "SINGLE_RECORD"}
    from_container = effective_settings({}, container)
    assert (from_container.concurrency, from_container.max_payload_mb, from_container.strategy) == \
        (4, 2, rec.SINGLE_RECORD)
    job = {"MaxConcurrentTransforms": 2, "MaxPayloadInMB": 0, "BatchStrategy": "MultiRecord"}
    requested = effective_settings(job, container)
    assert (requested.concurrency, requested.max_payload_mb, requested.strategy) == (2, 0, rec.MULTI_RECORD)
    assert requested.max_bytes == 0 and from_container.max_bytes == 2 * 1024 * 1024


def test_batch_environment_only_adds_what_was_requested():
    assert batch_environment({"Environment": {"A": "1"}}) == {"A": "1", "SAGEMAKER_BATCH": "true"}
    env = batch_environment({"MaxPayloadInMB": 3, "BatchStrategy": "SingleRecord", "MaxConcurrentTransforms": 2})
    assert env == {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "3",
                   "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2"}


# -- JSONPath --------------------------------------------------------------------------------------
RECORD = {"id": 7, "features": [1, 2, 3], "meta": {"a": "x"}, "SageMakerOutput": 0.5}


@pytest.mark.parametrize("expression, expected", [
    ("$", RECORD),
    ("$.id", 7),
    ("$.features", [1, 2, 3]),
    ("$.features[1:]", [2, 3]),
    ("$.features[-1]", 3),
    ("$.meta.a", "x"),
    ("$['id','SageMakerOutput']", {"id": 7, "SageMakerOutput": 0.5}),
    ('$["features"]', [1, 2, 3]),
    ("$.meta.*", ["x"]),
    ("$.features[*]", [1, 2, 3]),
])
def test_jsonpath_on_objects(expression, expected):
    assert jsonpath.parse(expression).apply(RECORD) == expected


@pytest.mark.parametrize("expression, expected", [
    ("$[1:]", ["b", "c", "d", "e", "f"]),
    ("$[0,5:]", ["a", "f"]),
    ("$[0,-1]", ["a", "f"]),
    ("$[:2]", ["a", "b"]),
    ("$[2]", "c"),
    ("$[1,3]", ["b", "d"]),
])
def test_jsonpath_on_csv_rows(expression, expected):
    assert jsonpath.parse(expression).apply(list("abcdef")) == expected


@pytest.mark.parametrize("expression", ["id", "$..id", "$[?(@.x)]", "$.a[", "$['a',1]"])
def test_unsupported_expressions_are_refused(expression):
    with pytest.raises(FilterError):
        jsonpath.parse(expression)


def test_filter_that_does_not_apply_names_the_problem():
    with pytest.raises(FilterError, match="no member 'missing'"):
        jsonpath.parse("$.missing").apply(RECORD)
    with pytest.raises(FilterError, match="out of range"):
        jsonpath.parse("$[9]").apply([1])


def test_join_rules():
    assert jsonpath.join(["1", "2"], ["0.5"], jsonpath.CSV) == ["1", "2", "0.5"]
    assert jsonpath.join({"id": 1}, {"p": 2}, jsonpath.JSON) == {"id": 1, "SageMakerOutput": {"p": 2}}
    assert jsonpath.join([1, 2], 3, jsonpath.JSON) == {"SageMakerInput": [1, 2], "SageMakerOutput": 3}


def test_formats():
    assert jsonpath.format_of("text/csv; charset=utf-8") == jsonpath.CSV
    assert jsonpath.format_of("application/jsonlines") == jsonpath.JSONLINES
    assert jsonpath.format_of("application/json") == jsonpath.JSON
    assert jsonpath.format_of("application/x-image") is None


# -- DataProcessor ---------------------------------------------------------------------------------
def test_csv_input_filter_join_and_output_filter():
    processor = DataProcessor({"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
                              "text/csv", "text/csv", "Line")
    units = processor.units([b"id1,1,2\n", b"id2,3,4\n"])
    assert processor.request(units) == b"1,2\n3,4\n"
    assert processor.response(units, b"3.0\n7.0", "text/csv") == b"id1,3.0\nid2,7.0"


def test_jsonlines_join_and_output_filter():
    processor = DataProcessor({"InputFilter": "$.features", "JoinSource": "Input",
                               "OutputFilter": "$['id','SageMakerOutput']"},
                              "application/jsonlines", "application/jsonlines", "Line")
    units = processor.units([b'{"id": 1, "features": [1, 2]}\n'])
    assert processor.request(units) == b"[1,2]\n"
    out = processor.response(units, b'{"score": 0.9}', "application/json")
    assert json.loads(out) == {"id": 1, "SageMakerOutput": {"score": 0.9}}


def test_json_document_without_split_is_one_record():
    processor = DataProcessor({"JoinSource": "Input"}, "application/json", "application/json", "None")
    units = processor.units([b'[1, 2,\n 3]'])
    assert units == ["[1, 2,\n 3]"]
    assert json.loads(processor.response(units, b"6", None)) == {"SageMakerInput": [1, 2, 3], "SageMakerOutput": 6}


def test_reply_line_count_mismatch_is_an_error():
    processor = DataProcessor({"JoinSource": "Input"}, "text/csv", "text/csv", "Line")
    units = processor.units([b"1\n", b"2\n"])
    with pytest.raises(FilterError, match="1 line"):
        processor.response(units, b"only-one", "text/csv")


def test_default_data_processing_is_inactive_and_passes_bytes_through():
    processor = DataProcessor({"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"},
                              "application/x-image", None, "None")
    assert not processor.active
    assert processor.response(["x"], b"\x00raw", None) == b"\x00raw"
    with pytest.raises(FilterError, match="ContentType"):
        DataProcessor({"JoinSource": "Input"}, "application/x-image", None, "None")


# -- resuming after a restart ------------------------------------------------------------------------
def test_resume_counts_only_outputs_this_job_wrote(tmp_path):
    """An object is done when its `.out` was written at or after the job's start; an older file at the
    same path (another job's) or a missing one means transform it again."""
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    objects = [staging.DataObject(f"file://{tmp_path}/in/{name}", name) for name in ("a.csv", "b.csv", "sub/c.csv",
                                                                                    "d.csv")]
    since = 1_000_000.0
    for name, mtime in (("a.csv.out", since + 5), ("b.csv.out", since - 5), ("sub/c.csv.out", since)):
        (out / name).write_text("x")
        os.utime(out / name, (mtime, mtime))
    (out / "unrelated.out").write_text("x")
    output_path = staging.file_uri(out)
    assert resume.output_uri(output_path, objects[2]) == f"file://{out}/sub/c.csv.out"
    done = resume.committed(staging.ObjectStore(), output_path, objects, since)
    assert done == {objects[0].uri, objects[2].uri}
    assert resume.committed(staging.ObjectStore(), staging.file_uri(tmp_path / "missing"), objects, since) == set()
