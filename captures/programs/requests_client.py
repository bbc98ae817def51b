#!/usr/bin/env python3
"""The client of captures/record-apps 26: Python requests (urllib3's pool) on one Session.

Usage: requests_client.py URL PAUSE_S [ROUND1 SPACING_S ROUND2]
Round 1 sends ROUND1 requests (default 1) SPACING_S apart; after PAUSE_S, round 2 sends ROUND2
(default 1). In 26 the second request finds the pooled connection closed by the server (urllib3
checks a pooled connection for EOF before reuse), so the pool closes it only then and opens a
new one. JSON lines on stdout like PoolClient.java; urllib3's own log (DEBUG: new connections,
request lines with status, "Resetting dropped connection") on stderr.
"""
import json
import logging
import sys
import time

import requests
import urllib3

T0 = time.monotonic()


def log(**ev):
    ev = {"who": "client", **ev, "t": round(time.monotonic() - T0, 6), "epoch": round(time.time(), 3)}
    print(json.dumps(ev, separators=(",", ":")), flush=True)


def request(session, url, round_no, index):
    r = session.get(url, stream=True)
    sock = r.raw._connection.sock
    if sock is None:  # "Connection: close": http.client handed the socket over to the response
        sock = r.raw._fp.fp.raw._sock
    local = "%s:%d" % sock.getsockname()
    _ = r.content  # read to the end: the connection goes back to the pool
    log(ev="response", round=round_no, index=index, status=r.status_code, local=local,
        keep_alive=r.headers.get("Keep-Alive"), connection=r.headers.get("Connection"))


def main():
    url, pause = sys.argv[1], float(sys.argv[2])
    first, spacing, second = (int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 3 else (1, 0, 1)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                        format="%(asctime)s.%(msecs)03dZ %(levelname)s [%(name)s] %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    logging.Formatter.converter = time.gmtime
    session = requests.Session()
    log(ev="start", mode="requests", version=requests.__version__, urllib3=urllib3.__version__)
    for rnd, count in ((1, first), (2, second)):
        if rnd == 2:
            time.sleep(pause)
        for i in range(count):
            if i:
                time.sleep(spacing)
            request(session, url, rnd, i)
    log(ev="done")
    time.sleep(600)  # killed after the capture: closing the session here is not the story


if __name__ == "__main__":
    main()
