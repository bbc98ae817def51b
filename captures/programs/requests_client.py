#!/usr/bin/env python3
"""The client of captures/record-apps 26: Python requests (urllib3's pool) on one Session.

Usage: requests_client.py URL PAUSE_S
Round 1 sends one request; after PAUSE_S the second request finds the pooled connection
closed by the server (urllib3 checks a pooled connection for EOF before reuse), so the pool
closes it only then and opens a new one. JSON lines on stdout like PoolClient.java.
"""
import json
import sys
import time

import requests
import urllib3

T0 = time.monotonic()


def log(**ev):
    ev = {"who": "client", **ev, "t": round(time.monotonic() - T0, 6)}
    print(json.dumps(ev, separators=(",", ":")), flush=True)


def request(session, url, round_no):
    r = session.get(url, stream=True)
    sock = r.raw._connection.sock
    local = "%s:%d" % sock.getsockname()
    _ = r.content  # read to the end: the connection goes back to the pool
    log(ev="response", round=round_no, index=0, status=r.status_code, local=local,
        keep_alive=r.headers.get("Keep-Alive"))


def main():
    url, pause = sys.argv[1], float(sys.argv[2])
    session = requests.Session()
    log(ev="start", mode="requests", version=requests.__version__, urllib3=urllib3.__version__)
    request(session, url, 1)
    time.sleep(pause)
    request(session, url, 2)
    log(ev="done")
    time.sleep(600)  # killed after the capture: closing the session here is not the story


if __name__ == "__main__":
    main()
