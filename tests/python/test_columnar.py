"""`closewait analyze --format parquet|arrow` read back by pyarrow and DuckDB: every value
of every row equals what `--jsonl` says of that connection, on shipped captures.

The binary is $CLOSEWAIT_BIN, or target/debug/closewait (built by `cargo test`/`cargo
build`). Run with `python3 -m pytest tests/python`.
"""

import json
import re
import math
import os
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CLOSEWAIT_BIN", ROOT / "target" / "debug" / "closewait"))

CAPTURES = sorted(
    f"captures/{p.name}"
    for p in (ROOT / "captures").iterdir()
    if p.suffix in (".pcap", ".pcapng")
)

STATES_TIMED = ("FIN_WAIT_2", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT")
HTTP_TIMES = ("first_request", "last_request", "last_response")
TIMESTAMPS = ("start_time", "end_time", *(f"http_{t}_time" for t in HTTP_TIMES))
SCHEMA_VERSION = b"2"

REQUEST_LINE = ("method", "target", "version")
# The JSON paths of the HTTP columns (docs/parquet.md), each column the path joined with
# `_`; every one is null when a step of its path is absent or null.
HTTP_PATHS = [
    ("http", "requests"),
    ("http", "responses"),
    ("http", "version"),
    *(("http", "first_request", part) for part in REQUEST_LINE),
    *(("http", "last_request", part) for part in REQUEST_LINE),
    ("http", "status_codes"),
    ("http", "last_request_says_close"),
    ("http", "last_response_says_close"),
    ("http", "last_response_persistent"),
    ("http", "keep_alive", "timeout_s"),
    ("http", "keep_alive", "max"),
    ("http", "unanswered_requests"),
    *(("http", "last_unanswered_request", "request", part) for part in REQUEST_LINE),
    ("http", "last_unanswered_request", "idempotent"),
    ("http", "switched_protocols"),
    *(("http", "gave_up", reason)
      for reason in ("gap", "oversized_head", "parse_error", "pipeline_overflow")),
    *(("http", f"{t}_at") for t in HTTP_TIMES),
    ("http", "last_status"),
    *(("close", "http", field) for field in (
        "reason", "closed_by", "announcement", "idle_after_response",
        "advertised_timeout", "versus_advertised")),
    *(("close", "http", "request", "request", part) for part in REQUEST_LINE),
    ("close", "http", "request", "idempotent"),
    ("close", "http", "written_after_close"),
    ("close", "http", "unread", "client"),
    ("close", "http", "unread", "server"),
]


def closewait(*args):
    """Runs the binary from the repository root; returns its standard output (bytes)."""
    assert BINARY.exists(), f"{BINARY} not built (cargo build)"
    done = subprocess.run(
        [str(BINARY), *args], cwd=ROOT, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def jsonl(*inputs):
    """(connection lines, the summary line's text) of `analyze --jsonl`."""
    lines = closewait("analyze", "--jsonl", *inputs).decode().splitlines()
    assert json.loads(lines[-1])["type"] == "summary"
    return [json.loads(line) for line in lines[:-1]], lines[-1]


def split_address(address):
    """`ip:port` or `[v6]:port` → (ip, port)."""
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


def seconds_in(timeline, state):
    """Seconds in `state` until the next change; None never entered or still in it."""
    if timeline and timeline[-1]["state"] == state:
        return None
    spans = [b["at"] - a["at"] for a, b in zip(timeline, timeline[1:]) if a["state"] == state]
    return sum(spans) if spans else None


def dig(value, path):
    """The value at `path` in nested JSON objects; None when a step is absent or null."""
    for key in path:
        if value is None:
            return None
        value = value.get(key)
    return value


def http_columns(line):
    """The HTTP columns' values for a JSON connection line (`marks` has no column)."""
    row = {"_".join(path): dig(line, path) for path in HTTP_PATHS}
    if row["http_status_codes"] is not None:
        row["http_status_codes"] = {int(code): n for code, n in row["http_status_codes"].items()}
    for t in HTTP_TIMES:
        at = row[f"http_{t}_at"]
        row[f"http_{t}_time"] = None if at is None else micros(at)
    return row


def micros(seconds):
    """Epoch seconds → microseconds, to the nearest (half away from zero, as Rust's round)."""
    return math.floor(seconds * 1e6 + 0.5)


def expected_row(line, capture):
    """The table row docs/parquet.md says a JSON connection line becomes."""
    row = {}

    def flatten(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                flatten(f"{prefix}_{key}" if prefix else key, inner)
        else:
            row[prefix] = value

    timeline = line.pop("timeline")
    client, server = line.pop("client"), line.pop("server")
    del line["type"]
    http = http_columns(line)
    line.pop("http", None)
    line["close"].pop("http", None)
    flatten("", line)
    row["client_ip"], row["client_port"] = split_address(client)
    row["server_ip"], row["server_port"] = split_address(server)
    row["start_time"], row["end_time"] = micros(line["start"]), micros(line["end"])
    for side in ("client", "server"):
        for state in STATES_TIMED:
            row[f"{side}_{state.lower()}_secs"] = seconds_in(timeline[side], state)
    row["capture"] = capture
    row.update(http)
    return row


def rows_of(table):
    """The table's rows as dicts, timestamps as integer microseconds, maps as dicts."""
    for name in TIMESTAMPS:
        index = table.schema.get_field_index(name)
        assert table.schema.field(index).type == pa.timestamp("us", tz="UTC")
        table = table.set_column(index, name, table.column(name).cast(pa.int64()))
    codes = table.schema.field("http_status_codes").type
    assert (codes.key_type, codes.item_type) == (pa.int32(), pa.int64()), codes
    rows = table.to_pylist()
    for row in rows:
        # pyarrow gives a map cell as its (key, value) pairs.
        if row["http_status_codes"] is not None:
            row["http_status_codes"] = dict(row["http_status_codes"])
    return rows


def write(tmp_path, name, *inputs):
    target = tmp_path / name
    closewait("analyze", *inputs, "-o", str(target))
    return target


def assert_rows_equal(rows, lines, capture):
    assert len(rows) == len(lines), capture
    for row, line in zip(rows, lines):
        expected = expected_row(line, capture)
        assert set(row) == set(expected), (capture, set(row) ^ set(expected))
        for column, value in expected.items():
            got = row[column]
            assert got == value and type(got) is type(value), (
                capture, line.get("id"), column, got, value,
            )


@pytest.mark.parametrize("capture", CAPTURES)
def test_parquet_read_by_pyarrow_equals_jsonl(tmp_path, capture):
    lines, summary_line = jsonl(capture)
    path = write(tmp_path, "c.parquet", capture)
    table = pq.read_table(path)
    assert_rows_equal(rows_of(table), lines, capture)
    meta = pq.ParquetFile(path).metadata.metadata
    assert meta[b"schema_version"] == SCHEMA_VERSION
    assert meta[b"closewait_summary"].decode() == summary_line


@pytest.mark.parametrize("capture", CAPTURES)
def test_arrow_file_read_by_pyarrow_equals_jsonl(tmp_path, capture):
    lines, _ = jsonl(capture)
    table = feather.read_table(write(tmp_path, "c.arrow", capture))
    assert table.schema.metadata[b"schema_version"] == SCHEMA_VERSION
    assert_rows_equal(rows_of(table), lines, capture)


@pytest.mark.parametrize(
    "capture",
    ["captures/12-pool-leak-many.pcap", "captures/20-many-idle-timeouts.pcap",
     "captures/14-port-reuse.pcap", "captures/06-abort-linger-zero.pcap",
     *(c for c in CAPTURES if c.split("/")[1][:2] in ("27", "28", "29", "30", "31", "32"))],
)
def test_parquet_read_by_duckdb_equals_jsonl(tmp_path, capture):
    lines, summary_line = jsonl(capture)
    path = write(tmp_path, "c.parquet", capture)
    con = duckdb.connect()
    # Rows in file order (DuckDB keeps it for one file with preserve_insertion_order).
    as_micros = ", ".join(f"epoch_us({name}) as {name}" for name in TIMESTAMPS)
    result = con.execute(f"select * replace ({as_micros}) from read_parquet(?)", [str(path)])
    names = [d[0] for d in result.description]
    rows = [dict(zip(names, values)) for values in result.fetchall()]
    assert_rows_equal(rows, lines, capture)

    # The summary's counts per close kind, by SQL.
    by_kind = dict(
        con.execute(
            "select close_kind, count(*) from read_parquet(?) group by close_kind",
            [str(path)],
        ).fetchall()
    )
    expected = {k: n for k, n in json.loads(summary_line)["summary"]["by_kind"].items() if n}
    assert by_kind == expected
    version = con.execute(
        "select decode(value) from parquet_kv_metadata(?) where decode(key) = 'schema_version'",
        [str(path)],
    ).fetchall()
    assert version == [(SCHEMA_VERSION.decode(),)]


def test_merged_inputs_name_every_file_in_the_capture_column(tmp_path):
    inputs = ["captures/01-client-closes-first.pcap", "captures/08-connection-refused.pcap"]
    lines, _ = jsonl(*inputs)
    table = pq.read_table(write(tmp_path, "merged.parquet", *inputs))
    assert_rows_equal(rows_of(table), lines, ",".join(inputs))


def test_filtered_rows_are_the_filtered_jsonl_lines(tmp_path):
    capture = "captures/12-pool-leak-many.pcap"
    lines, _ = jsonl(capture, "--kind", "graceful")
    table = pq.read_table(write(tmp_path, "graceful.parquet", capture, "--kind", "graceful"))
    assert len(lines) == 5
    assert_rows_equal(rows_of(table), lines, capture)


DOCS = ROOT / "docs" / "parquet.md"
SQL_EXAMPLES = "## HTTP questions in SQL\n"


def cell(value):
    """A value as DuckDB's box shows it."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def box_rows(shown):
    """The column names and the rows of cells of a table as DuckDB's box draws it."""
    lines = [line for line in shown.strip().splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines]
    # The names, then the types, then the rows.
    return cells[0], cells[2:]


def test_docs_sql_examples_print_what_docs_parquet_md_shows(tmp_path):
    """docs/parquet.md's DuckDB queries over the HTTP columns, run on the files its shell
    block writes, give the tables it shows (compared cell by cell, not by drawing);
    CLOSEWAIT_UPDATE_DOCS=1 draws them again."""
    page = DOCS.read_text()
    before, section = page.split(SQL_EXAMPLES, 1)
    section, after = section.split("\n## ", 1)
    numbers = re.search(r"for n in ([\d ]+); do", section).group(1).split()
    for n in numbers:
        (capture,) = (ROOT / "captures").glob(f"{n}-*.pcap")
        closewait("analyze", f"captures/{capture.name}", "-o", str(tmp_path / f"{n}.parquet"))
    con = duckdb.connect()
    examples = re.findall(r"```sql\n(.*?)```\n\n```text\n(.*?)```\n", section, re.S)
    assert len(examples) == 2
    for query, shown in examples:
        result = con.sql(query.replace("/tmp/http/", f"{tmp_path}/"))
        if os.environ.get("CLOSEWAIT_UPDATE_DOCS"):
            section = section.replace(shown, f"{str(result).strip()}\n")
            continue
        names, rows = box_rows(shown)
        assert names == result.columns, query
        assert rows == [[cell(v) for v in row] for row in result.fetchall()], query
    if os.environ.get("CLOSEWAIT_UPDATE_DOCS"):
        DOCS.write_text(before + SQL_EXAMPLES + section + "\n## " + after)
