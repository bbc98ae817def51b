"""The `closewait` Python module (crates/closewait-python, a maturin wheel): its table, its
records and its diagnosis equal what the binary writes for the same captures and options.

`.ci/run` builds and installs the wheel first; elsewhere, without the module installed
(`maturin develop` in crates/closewait-python), these tests are skipped, and under CI they fail.
"""

import json
import os

import pyarrow.parquet as pq
import pytest

from test_columnar import ROOT, closewait as run_binary, jsonl

if os.environ.get("CI"):
    import closewait
else:
    closewait = pytest.importorskip("closewait")

CAPTURES = [
    str(ROOT / "captures" / name)
    for name in (
        "02-server-idle-close-client-leak.pcap",
        "06-abort-linger-zero.pcap",
        "12-pool-leak-many.pcap",
        "14-port-reuse.pcap",
        "15a-pcapng-nanosecond.pcapng",
        "20-many-idle-timeouts.pcap",
    )
]


def without_type(lines):
    for line in lines:
        assert line.pop("type") == "connection"
    return lines


@pytest.mark.parametrize("capture", CAPTURES)
def test_analyze_table_is_the_parquet_files_table(tmp_path, capture):
    target = tmp_path / "c.parquet"
    run_binary("analyze", capture, "-o", str(target))
    table = closewait.analyze(capture)
    from_file = pq.read_table(target)
    assert table.schema.equals(from_file.schema)
    assert table.equals(from_file)
    assert table.schema.metadata[b"schema_version"] == str(closewait.SCHEMA_VERSION).encode()


@pytest.mark.parametrize("capture", CAPTURES)
def test_analyze_records_are_the_jsonl_connection_lines(capture):
    lines, _ = jsonl(capture)
    assert closewait.analyze_records(capture) == without_type(lines)


def test_several_paths_are_merged_like_the_command_line():
    paths = CAPTURES[:2]
    lines, _ = jsonl(*paths)
    assert closewait.analyze_records(paths) == without_type(lines)
    table = closewait.analyze(paths)
    assert table.num_rows == len(lines)
    assert set(table.column("capture").to_pylist()) == {",".join(paths)}


def test_keyword_options_are_the_long_options():
    capture = CAPTURES[2]
    lines, _ = jsonl(capture, "--kind", "graceful", "--time-wait", "240")
    records = closewait.analyze_records(capture, kind=["graceful"], time_wait=240)
    assert records == without_type(lines)
    assert len(records) == 5
    assert closewait.analyze(capture, kind="unanswered_fin").num_rows == 45


@pytest.mark.parametrize("capture", CAPTURES[:4])
def test_diagnose_is_the_diagnose_json_document(capture):
    expected = json.loads(run_binary("diagnose", capture, "--format", "json", "--time-wait", "240"))
    assert closewait.diagnose(capture, time_wait=240) == expected


def test_diagnose_finds_the_pool_leak():
    findings = {f["id"]: f for f in closewait.diagnose(CAPTURES[2])["findings"]}
    assert "close_wait_leak" in findings


def test_bad_input_and_bad_options_raise():
    with pytest.raises(OSError, match="no-such.pcap"):
        closewait.analyze(str(ROOT / "no-such.pcap"))
    with pytest.raises(ValueError, match="polite"):
        closewait.analyze_records(CAPTURES[0], kind="polite")
    with pytest.raises(ValueError):
        closewait.analyze([])
