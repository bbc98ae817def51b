"""The distributed job (scale/closewait_dask.py) on a two-worker Dask LocalCluster, and its
SQL (scale/headline.sql) read by DuckDB: every number equals what `closewait diagnose
--json` says of each host's files.

Two "hosts" built from shipped captures, each with several files that closewait merges in
time order on one worker: app-1 has a pool leak, a keep-alive race RST and a loopback leak
(a second service); app-2 a Tomcat leak with a late write, a refused and a timed-out
connection attempt.
"""

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CLOSEWAIT_BIN", ROOT / "target" / "debug" / "closewait"))
HEADLINE_SQL = ROOT / "scale" / "headline.sql"

HOSTS = {
    "app-1": [
        "12-pool-leak-many.pcap",
        "17-keepalive-race-rst.pcap",
        "15b-loopback.pcap",
    ],
    "app-2": [
        "24-tomcat-httpclient-keepalive-ignored.pcap",
        "23-tomcat-httpclient-keepalive-honoured.pcap",
        "08-connection-refused.pcap",
        "09-syn-timeout.pcap",
    ],
}


def load_job():
    spec = importlib.util.spec_from_file_location(
        "closewait_dask", ROOT / "scale" / "closewait_dask.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


job = load_job()


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """DIR/<host>/<capture> from the shipped captures."""
    assert BINARY.exists(), f"{BINARY} not built (cargo build)"
    root = tmp_path_factory.mktemp("captures")
    for host, names in HOSTS.items():
        (root / host).mkdir()
        for name in names:
            shutil.copy(ROOT / "captures" / name, root / host / name)
    return root


@pytest.fixture(scope="module")
def dataset(layout, tmp_path_factory):
    """The job's dataset, written by a LocalCluster of two one-thread workers."""
    out = tmp_path_factory.mktemp("dataset")
    stats = out.parent / "stats.json"
    status = job.main(
        [
            str(layout),
            "-o",
            str(out),
            "--workers",
            "2",
            "--closewait",
            str(BINARY),
            "--stats",
            str(stats),
        ]
    )
    assert status == 0
    return out, json.loads(stats.read_text())


def headline(out):
    con = duckdb.connect()
    con.execute("SET VARIABLE dataset = ?", [str(out)])
    result = con.execute(HEADLINE_SQL.read_text())
    names = [d[0] for d in result.description]
    return {(row[0], row[1]): dict(zip(names, row)) for row in result.fetchall()}


def diagnose(layout, host):
    files = [str(layout / host / name) for name in HOSTS[host]]
    done = subprocess.run(
        [str(BINARY), "diagnose", "--json", *files], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_one_part_per_host_each_merging_its_files(dataset):
    out, stats = dataset
    assert sorted(p.name for p in out.iterdir()) == ["host=app-1", "host=app-2"]
    for host, names in HOSTS.items():
        assert [p.name for p in (out / f"host={host}").iterdir()] == ["part-0.parquet"]
        summary = (
            duckdb.connect()
            .execute(
                "SELECT decode(value) FROM parquet_kv_metadata(?) "
                "WHERE decode(key) = 'closewait_summary'",
                [str(out / f"host={host}" / "part-0.parquet")],
            )
            .fetchone()[0]
        )
        # all of the host's files, given in name order to one closewait, which merges them
        merged = [Path(f["path"]).name for f in json.loads(summary)["capture"]["files"]]
        assert merged == sorted(names)
    by_host = {h["host"]: h for h in stats["hosts"]}
    assert sorted(by_host) == ["app-1", "app-2"]
    assert stats["workers"] == 2
    for host, names in HOSTS.items():
        assert by_host[host]["files"] == len(names)


def test_headline_sql_equals_diagnose_per_host(layout, dataset):
    rows = headline(dataset[0])
    checked = set()
    for host in HOSTS:
        report = diagnose(layout, host)
        mine = {service: r for (h, service), r in rows.items() if h == host}
        assert sum(r["connections"] for r in mine.values()) == report["connections"]
        leaks = {}
        late = {}
        for f in report["findings"]:
            if f["id"] == "close_wait_leak":
                row = mine[f["service"]]
                assert row["connections"] == f["connections_to_service"]
                key = (f["service"], f["leaking_side"])
                leaks[key] = leaks.get(key, 0) + f["count"]
            elif f["id"] == "late_write_rst":
                late[f["service"]] = late.get(f["service"], 0) + f["count"]
            elif f["id"] == "server_time_wait":
                row = mine[f["server"]]
                assert row["server_closed_first"] == f["active_closes"]
                assert row["closed"] == f["closed"]
                assert row["server_reached_time_wait"] == f["reached_time_wait"]
                assert row["server_in_time_wait_at_end"] == f["in_time_wait_at_end"]
                checked.add("server_time_wait")
            elif f["id"] in ("refused", "syn_timeout"):
                assert mine[f["server"]][f["id"]] == f["attempts"]
                checked.add(f["id"])
        # diagnose reports every leak and every late write, so the SQL finds no more
        for service, row in mine.items():
            for side in ("client", "server"):
                assert row[f"{side}_left_in_close_wait"] == leaks.get((service, side), 0)
            assert row["late_write_rst"] == late.get(service, 0)
        checked.update(("close_wait_leak",) if leaks else ())
        checked.update(("late_write_rst",) if late else ())
    # the captures were chosen so that every compared finding occurs
    assert checked == {
        "close_wait_leak",
        "late_write_rst",
        "server_time_wait",
        "refused",
        "syn_timeout",
    }


def test_headline_numbers_on_these_captures(dataset):
    """The numbers themselves, so a change in closewait's verdicts shows up here too."""
    rows = headline(dataset[0])
    pick = ("connections", "client_left_in_close_wait", "late_write_rst", "refused", "syn_timeout")
    got = {key: tuple(row[c] for c in pick) for key, row in rows.items()}
    assert got == {
        ("app-1", "10.77.0.2:8788"): (51, 45, 1, 0, 0),
        ("app-1", "127.0.0.1:8788"): (1, 1, 0, 0, 0),
        ("app-2", "10.77.0.2:8788"): (24, 5, 1, 1, 1),
        ("*", "10.77.0.2:8788"): (75, 50, 2, 1, 1),
        ("*", "127.0.0.1:8788"): (1, 1, 0, 0, 0),
    }


def test_host_from_regex(tmp_path):
    """--host-from: one flat directory, the host in the file name."""
    (tmp_path / "web1_0001.pcap").write_bytes(b"")
    (tmp_path / "web1_0002.pcap1").write_bytes(b"")
    (tmp_path / "db_0001.pcapng.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    hosts = job.hosts_by_pattern(tmp_path, r"^(?P<host>[^_]+)_")
    assert [(h.host, [Path(f).name for f in h.files]) for h in hosts] == [
        ("db", ["db_0001.pcapng.gz"]),
        ("web1", ["web1_0001.pcap", "web1_0002.pcap1"]),
    ]


def test_bad_layouts_are_refused(tmp_path, capsys):
    (tmp_path / "loose.pcap").write_bytes(b"")
    assert job.main([str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert "loose.pcap: a capture directly in" in capsys.readouterr().err
    (tmp_path / "loose.pcap").unlink()
    (tmp_path / "bad host").mkdir()
    (tmp_path / "bad host" / "a.pcap").write_bytes(b"")
    assert job.main([str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert "host name 'bad host' must be" in capsys.readouterr().err


def test_a_failing_host_names_itself(tmp_path):
    """A damaged capture fails its host's task with closewait's message, host named."""
    (tmp_path / "in" / "h1").mkdir(parents=True)
    (tmp_path / "in" / "h1" / "junk.pcap").write_bytes(b"not a capture at all")
    with pytest.raises(RuntimeError, match=r"^host h1: closewait exited with status"):
        job.analyze_host(
            str(BINARY), "h1", [str(tmp_path / "in" / "h1" / "junk.pcap")], str(tmp_path / "out")
        )
