#!/usr/bin/env python3
"""Mixes odd closes into bench/record-big's capture (runs in the client namespace).

Usage: mixer.py SERVER_IP PORT COUNT OUT_JSON

COUNT connections in batches, kinds in turn:
  idle_answered  keep-alive request; nginx closes after keepalive_timeout; we close on EOF
  idle_leak      keep-alive request; nginx closes; we never close (CLOSE_WAIT) until we exit
  client_close   keep-alive request; we close first
  abort          keep-alive request; SO_LINGER 0 then close: a RST
  refused        connect to PORT+1 where nothing listens: RST,ACK
Writes the counts to OUT_JSON, then keeps the leaked sockets open until killed (at most
10 minutes). SIGUSR1 stops after the current batch. Every loop is bounded.
"""

import json
import resource
import selectors
import signal
import socket
import struct
import sys
import time

server, port, count, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
KINDS = ["idle_answered", "idle_leak", "client_close", "abort", "refused"]
REQ = b"GET /mix HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n"
BATCH = max(50, min(1000, count // 20))

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

stop = False


def on_usr1(*_):
    global stop
    stop = True


signal.signal(signal.SIGUSR1, on_usr1)

done = {k: 0 for k in KINDS}
leaked = []


def read_response(s):
    buf = b""
    deadline = time.time() + 5
    while not buf.endswith(b"short body\n") and time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk


n = 0
while n < count and not stop:
    waiting = []
    for i in range(min(BATCH, count - n)):
        kind = KINDS[(n + i) % len(KINDS)]
        s = socket.socket()
        s.settimeout(5)
        try:
            if kind == "refused":
                try:
                    s.connect((server, port + 1))
                except OSError:
                    pass
                s.close()
                done[kind] += 1
                continue
            s.connect((server, port))
            s.sendall(REQ)
            read_response(s)
        except OSError:
            s.close()
            continue
        if kind == "client_close":
            s.close()
        elif kind == "abort":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        elif kind == "idle_leak":
            leaked.append(s)
        else:
            waiting.append(s)
        done[kind] += 1
    n += BATCH
    # nginx closes idle keep-alive connections after 1 s: answer those FINs.
    # (epoll: the leaked sockets push descriptors past select()'s limit.)
    sel = selectors.DefaultSelector()
    for s in waiting:
        sel.register(s, selectors.EVENT_READ)
    deadline = time.time() + 5
    while waiting and time.time() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                waiting.remove(s)
    for s in waiting:
        sel.unregister(s)
        s.close()
    sel.close()

with open(out + ".tmp", "w") as f:
    json.dump({"mixed": done, "leaked_open": len(leaked)}, f)
import os  # noqa: E402

os.rename(out + ".tmp", out)
deadline = time.time() + 600
while time.time() < deadline:
    time.sleep(1)
