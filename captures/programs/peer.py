#!/usr/bin/env python3
"""A scriptable TCP endpoint, run inside one network namespace by `record`.

Why a puppet rather than one tiny program per scenario: every close scenario is a
sequence of ordinary socket calls (connect, send, recv, shutdown, close, SO_LINGER…)
whose *timing* decides what the kernel does.  The orchestrator (scenarios.py) drives a
client puppet and a server puppet step by step over stdin/stdout, takes `ss` snapshots
between steps, and so knows exactly which call happened when.  Two higher-level
operations (`serve`, `pool`, `idle_pool`) run a small keep-alive HTTP server with an idle
timeout and client connection pools (leaky, or with their own idle timeout), for the
scenarios that need many connections at once.

Protocol: one JSON object per line on stdin ({"op": ..., ...}); one JSON reply per line
on stdout ({"ok": true, ...} or {"ok": false, "error": ...}).  Every blocking call has a
timeout; the process exits on EOF of stdin or after --max-seconds.
"""

import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

T0 = time.monotonic()

TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECEIVED", 4: "FIN_WAIT_1",
    5: "FIN_WAIT_2", 6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK",
    10: "LISTEN", 11: "CLOSING",
}

REQUEST = "GET /{n} HTTP/1.1\r\nHost: 10.77.0.2\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout={t}\r\n\r\nok\n"

socks = {}
log = []
log_lock = threading.Lock()


def now():
    return round(time.monotonic() - T0, 6)


def note(**kw):
    kw["t"] = now()
    with log_lock:
        log.append(kw)


def addr(a):
    return f"{a[0]}:{a[1]}"


def tcp_state(s):
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return TCP_STATES.get(info[0], str(info[0]))
    except OSError:
        return "CLOSED"


def set_keepalive(s, idle, intvl, cnt):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, intvl)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, cnt)


def recv_until(s, until, timeout, maxlen=1 << 20):
    """Read until `until` is seen (None: until EOF), EOF, or the timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    eof = False
    while len(buf) < maxlen:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            eof = True
            break
        buf += chunk
        if until is not None and until.encode() in buf:
            break
    s.settimeout(None)
    return buf, eof


# ---------------------------------------------------------------- serve: keep-alive server
class Server(threading.Thread):
    """Keep-alive HTTP/1.1 server that closes a connection after `idle` s without a request
    (like Tomcat's keepAliveTimeout).  Reads everything it is sent, so its close() sends a
    FIN, never a RST."""

    def __init__(self, listener, idle, max_seconds, close_on_eof=True):
        super().__init__(daemon=True)
        self.listener = listener
        self.idle = idle
        self.max_seconds = max_seconds
        self.close_on_eof = close_on_eof
        self.stop = threading.Event()
        self.conns = {}  # sock -> dict

    def run(self):
        sel = selectors.DefaultSelector()
        self.listener.setblocking(False)
        sel.register(self.listener, selectors.EVENT_READ)
        end = time.monotonic() + self.max_seconds
        while not self.stop.is_set() and time.monotonic() < end:
            for key, _ in sel.select(timeout=0.01):
                s = key.fileobj
                if s is self.listener:
                    try:
                        c, peer = s.accept()
                    except BlockingIOError:
                        continue
                    c.setblocking(False)
                    self.conns[c] = {"peer": addr(peer), "last": time.monotonic(), "buf": b"", "requests": 0}
                    sel.register(c, selectors.EVENT_READ)
                    note(who="server", ev="accept", peer=addr(peer))
                    continue
                st = self.conns[s]
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    note(who="server", ev="reset", peer=st["peer"])
                    sel.unregister(s)
                    s.close()
                    del self.conns[s]
                    continue
                if not data:
                    note(who="server", ev="eof", peer=st["peer"])
                    if self.close_on_eof:
                        sel.unregister(s)
                        s.close()
                        note(who="server", ev="close_after_eof", peer=st["peer"])
                        del self.conns[s]
                    else:
                        sel.unregister(s)
                    continue
                st["buf"] += data
                st["last"] = time.monotonic()
                while b"\r\n\r\n" in st["buf"]:
                    _, st["buf"] = st["buf"].split(b"\r\n\r\n", 1)
                    st["requests"] += 1
                    s.sendall(RESPONSE.replace(b"{t}", str(int(self.idle) or 1).encode()))
                    note(who="server", ev="response", peer=st["peer"], n=st["requests"])
            t = time.monotonic()
            for c, st in list(self.conns.items()):
                if t - st["last"] >= self.idle:
                    try:
                        sel.unregister(c)
                    except (KeyError, ValueError):
                        pass
                    c.close()
                    note(who="server", ev="idle_close", peer=st["peer"], idle_s=round(t - st["last"], 3))
                    del self.conns[c]


servers = {}


# ---------------------------------------------------------------- pool: leaky client pool
def run_pool(host, port, count, spacing, watch, close_idx, requests_each=1):
    """Open `count` connections (one every `spacing` s), send one request on each and read
    the response; then for `watch` s watch them all.  Connections whose index is in
    `close_idx` are closed as soon as the server's FIN (EOF) is read; all others are
    leaked: never read again, never closed (the pool forgot them)."""
    conns = []
    for i in range(count):
        s = socket.create_connection((host, port), timeout=5)
        local = addr(s.getsockname())
        for r in range(requests_each):
            s.sendall(REQUEST.format(n=f"{i}-{r}").encode())
            _, eof = recv_until(s, "ok\n", 5)
        conns.append({"i": i, "sock": s, "client": local, "fate": "leaked"})
        note(who="client", ev="pooled", i=i, client=local)
        time.sleep(spacing)
    sel = selectors.DefaultSelector()
    for c in conns:
        if c["i"] in close_idx:
            sel.register(c["sock"], selectors.EVENT_READ, c)
    end = time.monotonic() + watch
    pending = len(close_idx)
    while pending and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.05):
            c = key.data
            data = c["sock"].recv(65536)
            if not data:
                sel.unregister(c["sock"])
                c["sock"].close()
                c["fate"] = "closed_after_eof"
                note(who="client", ev="close_after_eof", client=c["client"])
                pending -= 1
    for c in conns:
        socks[f"pool{c['i']}"] = c["sock"]
    return [{"i": c["i"], "client": c["client"], "fate": c["fate"]} for c in conns]


# ---------------------------------------------------------------- idle_pool: pool with its own idle timeout
def run_idle_pool(host, port, count, spacing, client_idle, idle_close_idx, leak_idx, watch):
    """Open `count` connections (one every `spacing` s) and send one request on each.
    Connections whose index is in `idle_close_idx` are closed by the pool itself once they
    have been idle `client_idle` s (the pool's idle timeout, shorter than the server's).
    The others have no pool timeout: those in `leak_idx` are never read again (leaked),
    the rest are closed as soon as the server's FIN (EOF) is read.  One event loop does
    the opening and the timers, so every idle timeout fires on time."""
    conns, sel = [], selectors.DefaultSelector()
    start = time.monotonic()
    end = start + count * spacing + watch
    i = 0
    while time.monotonic() < end:
        t = time.monotonic()
        if i < count and t >= start + i * spacing:
            s = socket.create_connection((host, port), timeout=5)
            local = addr(s.getsockname())
            s.sendall(REQUEST.format(n=i).encode())
            recv_until(s, "ok\n", 5)
            c = {"i": i, "sock": s, "client": local, "last": time.monotonic(), "fate": "open"}
            if i in leak_idx:
                c["fate"] = "leaked"
            else:
                sel.register(s, selectors.EVENT_READ, c)
            conns.append(c)
            note(who="client", ev="pooled", i=i, client=local, idle_timeout=client_idle if i in idle_close_idx
                 else None)
            i += 1
            continue
        if i == count and all(c["fate"] != "open" for c in conns):
            break
        for key, _ in sel.select(timeout=0.005):
            c = key.data
            if not c["sock"].recv(65536):
                sel.unregister(c["sock"])
                c["sock"].close()
                c["fate"] = "closed_after_eof"
                note(who="client", ev="close_after_eof", client=c["client"])
        t = time.monotonic()
        for c in conns:
            if c["fate"] == "open" and c["i"] in idle_close_idx and t - c["last"] >= client_idle:
                sel.unregister(c["sock"])
                c["sock"].close()
                c["fate"] = "closed_idle"
                note(who="client", ev="idle_close", client=c["client"], idle_s=round(t - c["last"], 3))
    for c in conns:
        if c["fate"] != "closed_after_eof" and c["fate"] != "closed_idle":
            socks[f"pool{c['i']}"] = c["sock"]
    return [{"i": c["i"], "client": c["client"], "fate": c["fate"]} for c in conns]


# ---------------------------------------------------------------- operations
def op_listen(m):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((m["host"], m["port"]))
    s.listen(m.get("backlog", 128))
    socks[m["name"]] = s
    return {"local": addr(s.getsockname())}


def op_accept(m):
    lst = socks[m["listener"]]
    lst.settimeout(m.get("timeout", 5))
    c, peer = lst.accept()
    c.settimeout(None)
    socks[m["name"]] = c
    note(who=m.get("who", "?"), ev="accept", peer=addr(peer))
    return {"peer": addr(peer), "local": addr(c.getsockname())}


def op_connect(m):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if m.get("reuseaddr"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if m.get("bind_port"):
        s.bind(("0.0.0.0", m["bind_port"]))
    if m.get("keepalive"):
        set_keepalive(s, *m["keepalive"])
    socks[m["name"]] = s
    if m.get("nonblock"):
        s.setblocking(False)
        err = s.connect_ex((m["host"], m["port"]))
        note(who=m.get("who", "?"), ev="connect_started", err=os.strerror(err))
        return {"local": addr(s.getsockname()), "errno": err}
    s.settimeout(m.get("timeout", 5))
    try:
        s.connect((m["host"], m["port"]))
    except OSError as e:
        note(who=m.get("who", "?"), ev="connect_failed", error=str(e))
        return {"local": addr(s.getsockname()), "error": e.__class__.__name__, "strerror": e.strerror}
    s.settimeout(None)
    note(who=m.get("who", "?"), ev="connected", local=addr(s.getsockname()))
    return {"local": addr(s.getsockname()), "peer": addr(s.getpeername())}


def op_send(m):
    s = socks[m["name"]]
    data = m["data"].encode() if "data" in m else b"x" * m["size"]
    try:
        s.sendall(data)
    except OSError as e:
        note(who=m.get("who", "?"), ev="send_failed", error=e.__class__.__name__)
        return {"error": e.__class__.__name__}
    note(who=m.get("who", "?"), ev="send", bytes=len(data))
    return {"sent": len(data)}


def op_recv(m):
    s = socks[m["name"]]
    try:
        buf, eof = recv_until(s, m.get("until"), m.get("timeout", 5), m.get("maxlen", 1 << 20))
    except OSError as e:
        note(who=m.get("who", "?"), ev="recv_failed", error=e.__class__.__name__)
        return {"error": e.__class__.__name__, "eof": False, "len": 0}
    note(who=m.get("who", "?"), ev="recv", bytes=len(buf), eof=eof)
    return {"len": len(buf), "eof": eof, "head": buf[:40].decode("latin1")}


def op_shutdown(m):
    how = {"wr": socket.SHUT_WR, "rd": socket.SHUT_RD, "rdwr": socket.SHUT_RDWR}[m["how"]]
    socks[m["name"]].shutdown(how)
    note(who=m.get("who", "?"), ev="shutdown", how=m["how"])
    return {}


def op_close(m):
    s = socks.pop(m["name"])
    if m.get("linger0"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    note(who=m.get("who", "?"), ev="close", linger0=bool(m.get("linger0")))
    return {}


def op_keepalive(m):
    """Turn keep-alive on for an existing socket (whatever its state)."""
    set_keepalive(socks[m["name"]], m["idle"], m["intvl"], m["cnt"])
    note(who=m.get("who", "?"), ev="keepalive_on", idle=m["idle"], intvl=m["intvl"], cnt=m["cnt"])
    return {"state": tcp_state(socks[m["name"]])}


def op_state(m):
    return {"state": tcp_state(socks[m["name"]])}


def op_wait_connect(m):
    s = socks[m["name"]]
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_WRITE)
    ready = sel.select(timeout=m.get("timeout", 5))
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return {"done": bool(ready), "errno": err, "state": tcp_state(s)}


def op_serve(m):
    srv = Server(socks[m["listener"]], m["idle"], m.get("max_seconds", 120), m.get("close_on_eof", True))
    servers[m["listener"]] = srv
    srv.start()
    return {}


def op_serve_stop(m):
    srv = servers.pop(m["listener"])
    srv.stop.set()
    srv.join(5)
    return {"open": [st["peer"] for st in srv.conns.values()]}


def op_pool(m):
    return {"conns": run_pool(m["host"], m["port"], m["count"], m["spacing"], m["watch"], set(m["close_idx"]),
                              m.get("requests_each", 1))}


def op_idle_pool(m):
    return {"conns": run_idle_pool(m["host"], m["port"], m["count"], m["spacing"], m["client_idle"],
                                   set(m["idle_close_idx"]), set(m["leak_idx"]), m["watch"])}


def op_log(m):
    with log_lock:
        return {"log": list(log)}


def op_sleep(m):
    time.sleep(m["s"])
    return {}


OPS = {k[3:]: v for k, v in globals().items() if k.startswith("op_")}


def main():
    max_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 300
    threading.Timer(max_seconds, lambda: os._exit(3)).start()
    for line in sys.stdin:
        m = json.loads(line)
        if m["op"] == "exit":
            break
        try:
            r = OPS[m["op"]](m)
            r["ok"] = True
        except Exception as e:  # report, never hang the orchestrator
            r = {"ok": False, "error": f"{e.__class__.__name__}: {e}"}
        r["t"] = now()
        sys.stdout.write(json.dumps(r) + "\n")
        sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # die quietly when record is interrupted
    main()
