#!/usr/bin/env python3
"""Runs `closewait analyze` over captures from many capturing hosts on Dask's distributed
scheduler, and writes one Parquet dataset, hive-partitioned by host.

Why per host: a TCP connection is seen by the hosts it passes, and each capturing host's
files (rotated by tcpdump -C/-G, or one file per day) hold its own view of it. So the unit of
work is one host: that host's files go, all together, to one `closewait analyze` process,
which merges them in timestamp order and follows each connection across the file boundaries.
Hosts are independent, so they run in parallel, one task per host, at most one worker per
host. Splitting a host's files over workers would cut connections in two.

Why Dask: the job is "for each host, run a program on its files", an embarrassingly parallel
map with no shuffle. Dask's distributed scheduler runs it with a `pip install`, from a laptop
(`LocalCluster`) to a cluster (`--scheduler tcp://…`), in pure Python. The same job in Spark
is `groupByKey(host)` then `mapPartitions`/`foreach` running the same command
(docs/scale.md).

Nothing here parses captures or TCP: closewait does, the worker only runs the CLI. The
dataset is closewait's own Parquet files (docs/parquet.md), unchanged; the host is the
directory name `host=<host>`, the hive partitioning DuckDB, Spark and pyarrow read as a column.

    python3 scale/closewait_dask.py DIR -o OUT [--workers N | --scheduler ADDRESS]
    duckdb -c ".read scale/headline.sql"   # with OUT as its dataset (see docs/scale.md)
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# What closewait reads: pcap or pcapng, optionally gzip-compressed. tcpdump -C numbers its
# rotated files after the name it was given (`trace.pcap`, `trace.pcap1`, `trace.pcap2`…).
CAPTURE_NAME = re.compile(r"\.(pcap|pcapng|cap)\d*(\.gz)?$")

# A host becomes a directory name `host=<name>` and a value in SQL: keep it to characters
# that need no escaping in a path or in hive partitioning.
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

PART_FILE = "part-0.parquet"


class LayoutError(Exception):
    """The input directory does not have the layout the job needs (docs/scale.md)."""


@dataclass
class HostInput:
    """One capturing host's files, in the order given to closewait (by name)."""

    host: str
    files: list = field(default_factory=list)

    @property
    def size(self):
        return sum(Path(f).stat().st_size for f in self.files)


@dataclass
class HostResult:
    """What one task did: the Parquet part it wrote and how long closewait took."""

    host: str
    files: int
    input_bytes: int
    output: str
    connections: int
    seconds: float
    cpu_seconds: float
    worker: str


def is_capture(path):
    return path.is_file() and CAPTURE_NAME.search(path.name) is not None


def checked_host(name, where):
    if not HOST_NAME.match(name):
        raise LayoutError(
            f"{where}: host name {name!r} must be letters, digits, '.', '_' or '-' "
            "(it becomes the directory host=<name>)"
        )
    return name


def hosts_by_directory(root):
    """DIR/<host>/…: every directory directly under DIR is a host; its captures are the
    capture files anywhere below it (per-day subdirectories are fine)."""
    root = Path(root)
    hosts = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            files = sorted(str(p) for p in entry.rglob("*") if is_capture(p))
            if files:
                hosts.append(HostInput(checked_host(entry.name, entry), files))
        elif is_capture(entry):
            raise LayoutError(
                f"{entry}: a capture directly in {root}; put each host's captures in "
                f"{root}/<host>/, or name the host with --host-from REGEX"
            )
    return hosts


def hosts_by_pattern(root, pattern):
    """Every capture below DIR; its host is the `host` group (or the first group) of
    PATTERN searched in its path relative to DIR (e.g. `^([^_]+)_` for `web1_0001.pcap`)."""
    root = Path(root)
    regex = re.compile(pattern)
    group = "host" if "host" in regex.groupindex else 1
    by_host = {}
    for path in sorted(p for p in root.rglob("*") if is_capture(p)):
        relative = str(path.relative_to(root))
        found = regex.search(relative)
        if not found or not found.group(group):
            raise LayoutError(f"{path}: --host-from {pattern!r} finds no host in {relative!r}")
        name = checked_host(found.group(group), path)
        by_host.setdefault(name, []).append(str(path))
    return [HostInput(host, files) for host, files in sorted(by_host.items())]


def analyze_host(closewait, host, files, out_dir, extra_args=()):
    """The task: one closewait process over all of one host's files, writing
    OUT/host=<host>/part-0.parquet. Runs on a Dask worker (a plain function of its
    arguments, so Spark or a shell loop could call it as well)."""
    part_dir = Path(out_dir) / f"host={host}"
    part_dir.mkdir(parents=True, exist_ok=True)
    target = part_dir / PART_FILE
    command = [closewait, "analyze", *extra_args, "--format", "parquet", "-o", str(target), *files]
    # CPU of the child (user + system, all its threads): with one thread per worker, the
    # only child that ends between the two readings is this one
    cpu_before = child_cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    cpu_seconds = child_cpu_seconds() - cpu_before
    if done.returncode != 0:
        # closewait leaves no file behind when it fails; leave no empty partition either
        shutil.rmtree(part_dir, ignore_errors=True)
        raise RuntimeError(
            f"host {host}: closewait exited with status {done.returncode}: {done.stderr.strip()}"
        )
    return HostResult(
        host=host,
        files=len(files),
        input_bytes=sum(os.path.getsize(f) for f in files),
        output=str(target),
        connections=connections_in(target),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        worker=os.uname().nodename + f"/{os.getpid()}",
    )


def child_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def connections_in(parquet_file):
    """Rows in a part, read from the `closewait_summary` footer metadata (no pyarrow
    needed on the workers): the Parquet footer ends with its length and `PAR1`."""
    with open(parquet_file, "rb") as f:
        f.seek(-8, os.SEEK_END)
        length = int.from_bytes(f.read(4), "little")
        f.seek(-8 - length, os.SEEK_END)
        footer = f.read(length)
    marker = b'"matched":'
    at = footer.find(marker)
    if at < 0:
        return -1
    digits = re.match(rb"\s*(\d+)", footer[at + len(marker) :])
    return int(digits.group(1)) if digits else -1


def prepare_output(out_dir, overwrite):
    """OUT must not hold parts of another run: a stale host=… directory would join the
    dataset. --overwrite removes the old parts first."""
    out = Path(out_dir)
    stale = sorted(out.glob("host=*")) if out.exists() else []
    if stale and not overwrite:
        raise LayoutError(f"{out} already holds {len(stale)} host=… parts; use --overwrite")
    for path in stale:
        shutil.rmtree(path)
    out.mkdir(parents=True, exist_ok=True)


def run(client, hosts, out_dir, closewait, extra_args=()):
    """Submits one task per host, largest first (its priority is its size: with fewer
    workers than hosts, the long ones start first and the short ones fill in), and returns
    the results as they finish."""
    from distributed import as_completed

    futures = [
        client.submit(
            analyze_host,
            closewait,
            h.host,
            h.files,
            str(out_dir),
            tuple(extra_args),
            key=f"closewait-analyze-{h.host}",
            priority=h.size,
            pure=False,
        )
        for h in hosts
    ]
    return [future.result() for future in as_completed(futures)]


def default_closewait():
    return os.environ.get("CLOSEWAIT_BIN") or shutil.which("closewait") or "closewait"


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="closewait analyze per capturing host on Dask; one Parquet dataset "
        "OUT/host=<host>/part-0.parquet (docs/scale.md)",
    )
    p.add_argument("input", help="directory of captures: DIR/<host>/*.pcap[ng][.gz]")
    p.add_argument("-o", "--output", required=True, help="dataset directory to write")
    p.add_argument(
        "--host-from",
        metavar="REGEX",
        help="take each capture's host from its path below DIR instead of its directory "
        "(the `host` group, or the first group)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=2, help="local cluster of N one-thread workers (2)"
    )
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler")
    p.add_argument(
        "--closewait",
        default=default_closewait(),
        help="the closewait binary, as the workers see it ($CLOSEWAIT_BIN, else PATH)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing host=… parts")
    p.add_argument("--stats", metavar="FILE", help="write per-host timings as JSON")
    p.add_argument(
        "analyze_args",
        nargs="*",
        metavar="-- ANALYZE-OPTION",
        help="options passed to every `closewait analyze` (after --), e.g. -- --time-wait 60",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from distributed import Client, LocalCluster

    try:
        hosts = (
            hosts_by_pattern(args.input, args.host_from)
            if args.host_from
            else hosts_by_directory(args.input)
        )
        if not hosts:
            raise LayoutError(f"{args.input}: no captures (DIR/<host>/*.pcap[ng][.gz])")
        prepare_output(args.output, args.overwrite)
    except (LayoutError, OSError, re.error) as e:
        print(f"closewait_dask: {e}", file=sys.stderr)
        return 2

    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        started = time.perf_counter()
        results = run(client, hosts, args.output, args.closewait, args.analyze_args)
        wall = time.perf_counter() - started
    except (RuntimeError, OSError) as e:
        # the first host that failed, with closewait's message; the others are cancelled
        print(f"closewait_dask: {e}", file=sys.stderr)
        return 2
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    for r in sorted(results, key=lambda r: r.host):
        print(
            f"{r.host}: {r.files} files, {r.input_bytes / 1e6:.1f} MB, "
            f"{r.connections} connections in {r.seconds:.2f} s ({r.cpu_seconds:.2f} s CPU) "
            f"on {r.worker}"
        )
    total = sum(r.input_bytes for r in results)
    print(f"{len(results)} hosts, {total / 1e6:.1f} MB in {wall:.2f} s → {args.output}")
    if args.stats:
        Path(args.stats).write_text(
            json.dumps(
                {
                    "workers": None if args.scheduler else args.workers,
                    "wall_seconds": wall,
                    "input_bytes": total,
                    "hosts": [asdict(r) for r in results],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
