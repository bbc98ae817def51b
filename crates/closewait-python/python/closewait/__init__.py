"""closewait for Python: how every TCP connection in tcpdump captures ended.

    import closewait
    table = closewait.analyze("x.pcap")             # pyarrow.Table, one row per connection
    rows = closewait.analyze_records(["a.pcap", "b.pcap"], kind="unanswered_fin")
    findings = closewait.diagnose("x.pcap", time_wait=240)["findings"]

`path` is one capture path or a list of them (merged in time order, as on the command
line). Keyword options are the command line's long options with `_` for `-`
(`time_wait=240` is `--time-wait 240`, `kind=["abort", "refused"]` repeats `--kind`,
`strict=True` is `--strict`). The table's columns are docs/parquet.md's; the records
equal `closewait analyze --jsonl`'s connection lines and the diagnosis `closewait
diagnose --json`'s document (docs/json.md).
"""

import json
import os

from . import _closewait

__all__ = ["analyze", "analyze_records", "diagnose", "SCHEMA_VERSION"]

#: The version of the table's columns (docs/parquet.md), also in the table's metadata.
SCHEMA_VERSION = _closewait.SCHEMA_VERSION


def _paths(path):
    if isinstance(path, (str, os.PathLike)):
        return [os.fspath(path)]
    paths = [os.fspath(p) for p in path]
    if not paths:
        raise ValueError("no capture given")
    return paths


def _flags(options):
    """Keyword options → command-line flags."""
    flags = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            flags.append(flag)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                flags += [flag, str(item)]
        else:
            flags += [flag, str(value)]
    return flags


def analyze(path, **options):
    """The connections of the capture(s) as a pyarrow.Table (docs/parquet.md), in the
    order they finished, as `closewait analyze --format parquet` writes them."""
    import pyarrow

    return pyarrow.table(_closewait.analyze_stream(_paths(path), _flags(options)))


def analyze_records(path, **options):
    """The connections as a list of dicts, each equal to a `--jsonl` connection line
    without its "type" (docs/json.md, connection)."""
    return json.loads(_closewait.analyze_json(_paths(path), _flags(options)))


def diagnose(path, **options):
    """The diagnosis as a dict, equal to `closewait diagnose --json`'s document."""
    return json.loads(_closewait.diagnose_json(_paths(path), _flags(options)))
