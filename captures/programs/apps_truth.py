#!/usr/bin/env python3
"""Writes the truth file of one captures/record-apps scenario (Tomcat + HttpClient).

The expected verdict of every connection is stated by the scenario (what the client's
configuration makes it do); its end states are then compared with the kernel's own `ss`
output taken at the end of the capture, and each side's state sequence is derived from the
packets by the kernel's rules (RFC 9293 §3.10.7.4 as Linux implements it, captures/README.md
"truth.json"): the run fails unless sequence, expected end state and ss agree.

Usage: apps_truth.py NAME RUN_DIR OUT_DIR KEEPALIVE_MS MODE CONNS SPACING_MS SLEEP_MS PAUSE_MS
                     SECOND T_CAPTURE T_SS [MAX_REQUESTS CLIENT_IDLE_MS VERDICTS]

From 27 on, the scenario states each connection's verdict (VERDICTS, in capture order, words of
VERDICT below), and the truth file also gets the HTTP facts (programs/http_truth.py: per
connection "http", cross-checked against the client's log) and the applications' own logs are
saved next to the capture as NAME.app.log.
"""

import json
import os
import shutil
import subprocess
import sys

import http_truth
from scenarios import exp, parse_ss  # the same ss reading and verdict vocabulary as captures/record

SERVER = "10.77.0.2:8788"
SS_NAME = {"ESTABLISHED": "ESTAB", "FIN_WAIT_2": "FIN-WAIT-2", "CLOSE_WAIT": "CLOSE-WAIT",
           "TIME_WAIT": "TIME-WAIT", "CLOSED": "CLOSED", "LAST_ACK": "LAST-ACK"}


class Failed(Exception):
    pass


# The verdicts a scenario from 27 on states for its connections (VERDICTS argument).
VERDICT = {
    "server-close": exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "TIME_WAIT"),
    "client-close": exp("graceful", "client", "FIN", "client", None, None, "TIME_WAIT", "CLOSED"),
    "late-write-rst": exp("fin_then_rst", "server", "FIN", "server", "server", "client", "CLOSED", "CLOSED"),
    "open": exp("open", "none", None, None, None, None, "ESTABLISHED", "ESTABLISHED"),
}

# Per mode and verdict: the connection's note and the close reason in its "http" facts.
STATED = {
    ("stale-post", "late-write-rst"): ("a round-2 request written into this connection Tomcat had idle-closed "
                                       "drew its kernel's RST", "server_idle_timeout"),
    ("stale-post", "open"): ("the retry of the GET, on a new connection, idle in the pool at the end", None),
    ("conn-close", "server-close"): ("Tomcat answered with 'Connection: close' (maxKeepAliveRequests 1) "
                                     "and closed; HttpClient closed its side on reading the EOF", "announced"),
    ("requests-close", "server-close"): ("nginx's second answer said 'Connection: close' (keepalive_requests 2) "
                                         "and nginx closed; urllib3 closed its side after reading it", "announced"),
    ("curl10", "server-close"): ("HTTP/1.0 without keep-alive: nginx answered with 'Connection: close' and "
                                 "closed; curl closed on the EOF", "announced"),
    ("curl10", "client-close"): ("HTTP/1.0 with 'Connection: keep-alive': nginx kept the connection, curl "
                                 "reused it for its second URL and closed it when it exited", "client_exit"),
    ("go", "client-close"): ("Go's Transport closed the idle connection after its IdleConnTimeout, before "
                             "nginx's keepalive_timeout; nginx answered at once", "client_idle_timeout"),
    ("go", "server-close"): ("nginx closed the idle connection after its keepalive_timeout; Go's background "
                             "read loop met the EOF and the Transport closed its side at once",
                             "server_idle_timeout"),
    ("go", "open"): ("round 2, on a new connection (the Transport had dropped the closed one), idle at the end",
                     None),
}
NGINX_MODES = ("requests", "requests-close", "curl10", "go")


def packets(path):
    fields = ["frame.time_relative", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.flags.syn",
              "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset", "tcp.seq_raw", "tcp.ack_raw", "tcp.len"]
    cmd = ["tshark", "-n", "-r", path, "-T", "fields"] + [a for f in fields for a in ("-e", f)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        t, src, sp, dst, dp, syn, ack, fin, rst, seq, an, ln = line.split("\t")
        flag = lambda v: v in ("1", "True")
        rows.append({"t": float(t), "src": f"{src}:{sp}", "dst": f"{dst}:{dp}", "syn": flag(syn), "ack": flag(ack),
                     "fin": flag(fin), "rst": flag(rst), "seq": int(seq), "an": int(an), "len": int(ln)})
    return rows


def connections(rows):
    """Segments per connection, in order of the first SYN (no port is reused in these runs)."""
    conns = {}
    for p in rows:
        client = p["src"] if p["dst"] == SERVER else p["dst"]
        conns.setdefault(client, []).append(p)
    return conns


def states(segs, client):
    """Each side's state sequence by the kernel's rules, from client-side packets (no
    segments cross in these scenarios, so the order seen here is the order each side saw)."""
    st = {"client": [], "server": []}
    fin_end = {}  # side -> sequence number just past its FIN

    def go(side, s):
        if not st[side] or st[side][-1] != s:
            st[side].append(s)

    for p in segs:
        me = "client" if p["src"] == client else "server"
        peer = "server" if me == "client" else "client"
        if p["syn"] and not p["ack"]:
            go("client", "SYN_SENT")
            go("server", "SYN_RECEIVED")
            continue
        if p["syn"]:
            go("client", "ESTABLISHED")
            continue
        if p["rst"]:
            go(me, "CLOSED")
            go(peer, "CLOSED")
            continue
        # the receiver: first the ACK of its FIN, then the sender's FIN
        cur = st[peer][-1]
        if cur == "SYN_RECEIVED" and p["ack"]:
            go(peer, "ESTABLISHED")
        cur = st[peer][-1]
        if peer in fin_end and p["ack"] and p["an"] >= fin_end[peer]:
            go(peer, {"FIN_WAIT_1": "FIN_WAIT_2", "CLOSING": "TIME_WAIT", "LAST_ACK": "CLOSED"}.get(cur, cur))
        if p["fin"]:
            cur = st[peer][-1]
            go(peer, {"ESTABLISHED": "CLOSE_WAIT", "FIN_WAIT_1": "CLOSING", "FIN_WAIT_2": "TIME_WAIT"}.get(cur, cur))
            cur = st[me][-1]
            go(me, {"ESTABLISHED": "FIN_WAIT_1", "CLOSE_WAIT": "LAST_ACK"}.get(cur, cur))
            fin_end[me] = p["seq"] + p["len"] + 1
    return st


def main():
    (name, run_dir, out_dir, kat, mode, nconns, spacing, sleep_ms, pause, second, t_cap, t_ss) = sys.argv[1:13]
    max_requests, client_idle_ms, verdicts = (sys.argv[13:16] + ["", "", ""])[:3]
    max_requests = int(max_requests or 100)
    verdicts = [v for v in verdicts.split(",") if v]
    kat, nconns, second = int(kat), int(nconns), int(second)
    pcap = os.path.join(run_dir, name + ".pcap")
    rows = packets(pcap)
    conns = connections(rows)
    log = [json.loads(l) for l in open(os.path.join(run_dir, "client.log")) if l.startswith("{")]
    round_of = {e["local"]: e["round"] for e in log if e["ev"] == "response"}
    ss_c = open(os.path.join(run_dir, "ss-client.txt")).read()
    ss_s = open(os.path.join(run_dir, "ss-server.txt")).read()
    kc, ks = parse_ss(ss_c), parse_ss(ss_s)
    checks, notes, out = {}, [], []
    heads = http_truth.messages(pcap, SERVER.rsplit(":", 1)[1]) if verdicts else []
    if verdicts and len(verdicts) != len(conns):
        raise Failed(f"the scenario states {len(verdicts)} verdicts, the capture has {len(conns)} connections")
    for index, (client, segs) in enumerate(conns.items()):
        if not (segs[0]["syn"] and not segs[0]["ack"]):
            raise Failed(f"{client}: capture does not start with the SYN")
        server_fin = next((p for p in segs if p["fin"] and p["src"] == SERVER), None)
        client_fin = next((p for p in segs if p["fin"] and p["src"] == client), None)
        rst = next((p for p in segs if p["rst"]), None)
        if verdicts:
            e = dict(VERDICT[verdicts[index]])
            note, close_reason = STATED[(mode, verdicts[index])]
        elif mode in ("honoured", "requests"):
            if round_of.get(client) == 1:
                e, note = exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "TIME_WAIT"), \
                    "round 1: closed by the pool when round 2 leased it, after Tomcat's keep-alive close"
            else:
                e, note = exp("open", "none", None, None, None, None, "ESTABLISHED", "ESTABLISHED"), \
                    "round 2: idle in the pool at the end of the capture"
        elif mode == "ignored":
            data_after_fin = server_fin and any(p["src"] == client and p["len"] > 0 and p["t"] > server_fin["t"]
                                                for p in segs)
            if data_after_fin:
                e, note = exp("fin_then_rst", "server", "FIN", "server", "server", "client", "CLOSED", "CLOSED"), \
                    "the round-2 request, sent on this stale connection, drew the server kernel's RST"
            else:
                e, note = exp("unanswered_fin", "server", "FIN", "server", None, "client", "CLOSE_WAIT",
                              "FIN_WAIT_2"), "leaked: Tomcat's keep-alive close, never answered"
        else:
            e, note = exp("graceful", "client", "FIN", "client", None, None, "TIME_WAIT", "CLOSED"), \
                "closed by the evictor's sweep, Tomcat answered its FIN at once"
        kernel = {"client": kc.get((client, SERVER), "CLOSED"), "server": ks.get((SERVER, client), "CLOSED")}
        st = states(segs, client)
        for side in ("client", "server"):
            want = e[f"{side}_state"]
            if SS_NAME[want] != kernel[side]:
                raise Failed(f"{client} {side}: expected {want}, kernel says {kernel[side]}")
            if st[side][-1] != want:
                raise Failed(f"{client} {side}: derived states {st[side]} do not end in {want}")
        c = {"client": client, "server": SERVER, "expected": e, "kernel_end_state": kernel, "unknowable": [],
             "note": note, "states": st}
        if verdicts:
            try:
                c["http"] = http_truth.facts(heads, segs, client, SERVER, close_reason)
            except ValueError as err:
                raise Failed(str(err))
        if server_fin and client_fin and server_fin["t"] < client_fin["t"]:
            c["answer_delay_s"] = round(client_fin["t"] - server_fin["t"], 6)
        if server_fin and mode != "evictor" and (not client_fin or server_fin["t"] < client_fin["t"]):
            last_data = max(p["t"] for p in segs if p["len"] > 0 and p["t"] < server_fin["t"])
            c["server_idle_before_fin_s"] = round(server_fin["t"] - last_data, 6)
            c["server_fin_at_s"] = round(server_fin["t"], 6)
        if client_fin and (mode == "evictor" or (verdicts and (not server_fin or client_fin["t"] < server_fin["t"]))):
            last_data = max(p["t"] for p in segs if p["len"] > 0 and p["t"] < client_fin["t"])
            c["client_idle_before_fin_s"] = round(client_fin["t"] - last_data, 6)
            c["client_fin_at_s"] = round(client_fin["t"], 6)
        out.append(c)
    kinds = {}
    for c in out:
        kinds[c["expected"]["kind"]] = kinds.get(c["expected"]["kind"], 0) + 1
    checks["kinds"] = kinds
    if mode == "ignored":
        if kinds.get("fin_then_rst") != 1:
            raise Failed(f"expected one reset connection, got {kinds}")
        errors = [e for e in log if e["ev"] == "error"]
        if not errors:
            raise Failed("the request on the stale connection did not fail")
        checks["client_exception"] = errors[0]["exception"]
    keep_alive = sorted({e["keep_alive"] for e in log if e["ev"] == "response" and e.get("keep_alive")})
    checks["keep_alive_headers"] = keep_alive
    # the instants of the idle closes (to 10 ms): one per sweep of an evictor or of Tomcat's poller
    for closer in (("client", "server") if verdicts else ("client" if mode == "evictor" else "server",)):
        times = sorted({round(c[f"{closer}_fin_at_s"], 2) for c in out if f"{closer}_fin_at_s" in c})
        if times or not verdicts:
            checks[f"{closer}_fin_times_s"] = times
    if verdicts:
        checks.update(app_log_agrees(mode, log, out, run_dir))
        write_app_log(name, mode, run_dir, out_dir)
    size = os.path.getsize(pcap)
    if size >= 1_000_000:
        raise Failed(f"{pcap} is {size} bytes")
    packages = {"requests": ["nginx"], "requests-close": ["nginx"], "curl10": ["nginx", "curl"],
                "go": ["nginx", "golang-go"]}.get(mode, ["tomcat10", "libhttpclient-java"])
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}; "] + packages,
                             capture_output=True, text=True).stdout
    stories = {
        "honoured": "Tomcat 10.1 (keepAliveTimeout {kat} ms) and an Apache HttpClient 4.5 pool with the default "
                    "ConnectionKeepAliveStrategy, which honours Tomcat's 'Keep-Alive: timeout={kats}'. Round 1: "
                    "{n} concurrent requests open {n} connections. Tomcat closes each after its keep-alive "
                    "timeout (its poller checks about once a second); the pool does nothing until round 2, "
                    "{pause} ms later, leases a connection: it then closes every expired one (client FIN "
                    "from CLOSE_WAIT, seconds after Tomcat's FIN) and opens {second} new ones, idle at the "
                    "end. No leak, but slow answers: each socket sat in CLOSE_WAIT until the next hand-out.",
        "ignored": "Tomcat 10.1 (keepAliveTimeout {kat} ms) and an Apache HttpClient 4.5 pool whose "
                   "keep-alive strategy returns -1 (keep forever) and whose stale check is off "
                   "(validateAfterInactivity -1), retries disabled: the seed's leak. Round 1: {n} "
                   "concurrent requests open {n} connections; Tomcat closes each after its keep-alive "
                   "timeout, the client's kernel ACKs the FIN and the pool never notices (CLOSE_WAIT). "
                   "{pause} ms later one request is sent on a stale connection: Tomcat's orphaned "
                   "FIN_WAIT_2 answers it with RST and the client gets {exc}. The other connections stay "
                   "in CLOSE_WAIT / FIN_WAIT_2.",
        "requests": "nginx 1.22 (keepalive_timeout {kat} ms) and Python requests {rv} (urllib3's pool) on one "
                    "Session. One request; nginx closes the idle connection after its keep-alive timeout; the "
                    "client's kernel ACKs the FIN and the program does nothing. {pause} ms after the first "
                    "request a second one finds the pooled connection dropped (urllib3 checks it for EOF "
                    "before reuse), closes it (client FIN from CLOSE_WAIT, seconds after nginx's FIN) and opens "
                    "a new one, idle at the end. No leak, but a slow answer.",
        "stale-post": "Tomcat 10.1 (keepAliveTimeout {kat} ms, answers 'Keep-Alive: timeout={kats}') and an "
                      "Apache HttpClient 4.5 pool whose keep-alive strategy returns -1 (keep forever) and whose "
                      "stale check is off (validateAfterInactivity -1), with HttpClient's default retry handler "
                      "(DefaultHttpRequestRetryHandler: 3 retries, none once a non-idempotent request was sent). "
                      "Round 1: {n} concurrent GETs open {n} connections; Tomcat idle-closes them, the pool never "
                      "notices. {pause} ms later, one after the other, a POST /orders and a GET are each handed "
                      "one of the stale connections: both are written into a connection Tomcat had closed and "
                      "draw a RST. HttpClient logs NoHttpResponseException for both; it retries the GET on a "
                      "new connection (200 OK) and gives the POST up: the application gets "
                      "'{exc}'. The order was lost.",
        "conn-close": "Tomcat 10.1 with maxKeepAliveRequests 1: every answer says 'Connection: close' and Tomcat "
                      "closes the connection after it. An Apache HttpClient 4.5 pool (default strategy) sends {n} "
                      "GETs started {spacing} ms apart; each gets a new connection, Tomcat's FIN comes right after its "
                      "answer and HttpClient closes its side on reading it (graceful, the server first).",
        "requests-close": "nginx 1.22 (keepalive_requests {maxreq}, keepalive_timeout {kat} ms) and Python requests "
                          "{rv} on one Session, {n} GETs {spacing} ms apart. nginx answers the {maxreq}nd request "
                          "of each connection with 'Connection: close' and closes it; urllib3 reads the answer, "
                          "closes its side and opens a new connection for the next request.",
        "curl10": "nginx 1.22 (keepalive_timeout {kat} ms) and curl {rv} speaking HTTP/1.0 (-0). Connection 1: a "
                  "plain HTTP/1.0 GET (no keep-alive in HTTP/1.0 unless asked): nginx answers 'Connection: "
                  "close' and closes first. {pause} ms later, connection 2: one curl run with two URLs and "
                  "'Connection: keep-alive': nginx answers 'Connection: keep-alive', curl reuses the "
                  "connection for the second GET and closes it itself when it exits.",
        "go": "nginx 1.22 (keepalive_timeout {kat} ms, advertised as 'Keep-Alive: timeout={kats}') and a Go "
              "{rv} net/http client (standard library Transport) with IdleConnTimeout {idle} ms. Round 1: {n} "
              "GETs {spacing} ms apart on one reused connection; then {pause} ms without requests{round2}.",
        "evictor": "Tomcat 10.1 (keepAliveTimeout {kat} ms, as in the seed) and an Apache HttpClient 4.5 pool "
                   "with HttpClientBuilder.evictIdleConnections(1 s): a thread that every second closes the "
                   "connections idle 1 s or more. {n} requests start {spacing} ms apart and Tomcat holds each "
                   "{sleep} ms, so {n} connections are open at once and go idle at different moments; the "
                   "evictor closes them in sweeps (client FIN, Tomcat answers at once): each connection "
                   "idle between 1 and 2 s, closed at one of a few instants.",
    }
    story = stories[mode].format(kat=kat, kats=kat // 1000, n=nconns, pause=pause, second=second, spacing=spacing,
                                 sleep=sleep_ms, exc=checks.get("client_exception", ""), maxreq=max_requests,
                                 idle=client_idle_ms,
                                 round2=go_round2(int(client_idle_ms or 0), kat, second),
                                 rv=next((e.get("version") or e.get("go", "").removeprefix("go") or None
                                          for e in log if e["ev"] == "start"), "?"))
    truth = {
        "scenario": name,
        "story": story,
        "capture": {"file": name + ".pcap", "interface": "veth-c", "namespace": "client", "format": "pcap",
                    "link_type": "EN10MB", "timestamp_precision": "micro"},
        "settings": {"tcp_fin_timeout": 60, "server_idle_timeout_s": kat / 1000,
                     **({"nginx_keepalive_timeout_ms": kat, "nginx_keepalive_requests": max_requests}
                        if mode in NGINX_MODES
                        else {"tomcat_keep_alive_timeout_ms": kat, "tomcat_max_keep_alive_requests": max_requests}),
                     **({"nginx_keep_alive_header_s": kat // 1000} if mode == "go" else {}),
                     **({"client_idle_conn_timeout_ms": int(client_idle_ms)} if client_idle_ms else {}),
                     "client_mode": mode, "connections": nconns,
                     "connection_spacing_ms": int(spacing), "server_sleep_ms": int(sleep_ms), "pause_ms": int(pause),
                     "second_round": second,
                     **({"client_evictor_sleep_s": 1.0, "client_max_idle_s": 1.0} if mode == "evictor" else {}),
                     "software": "Debian packages: " + version.strip("; ") + "".join(
                         f"; Python requests {e['version']}, urllib3 {e['urllib3']}" for e in log
                         if e["ev"] == "start" and "urllib3" in e),
                     **({} if mode in NGINX_MODES else {"java": subprocess.run(
                         ["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]})},
        "faithful": True,
        "notes": " ".join(notes + [f"recorded by captures/record-apps; ss -tanpo ran at t={t_ss} s, tcpdump "
                                   f"started at t={t_cap} s (seconds since the scenario started, "
                                   + ("the server's start included)" if verdicts else "Tomcat's JVM start included)")]),
        "connections": out,
        "checks": checks,
        "kernel": os.uname().release,
        "ss": [{"moment": "end of capture", "namespace": "client", "t": float(t_ss), "output": ss_c},
               {"moment": "end of capture", "namespace": "server", "t": float(t_ss), "output": ss_s}],
        "program_log": log,
    }
    if verdicts:
        truth["app_log"] = name + ".app.log"
    with open(os.path.join(out_dir, name + ".truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    shutil.copy(pcap, os.path.join(out_dir, name + ".pcap"))
    print(f"{name}: {len(out)} connections {kinds}, {size} bytes")


def go_round2(idle_ms, kat, second):
    if idle_ms and idle_ms < kat:
        return (": the Transport's idle timeout fires first and it closes the connection (client FIN), "
                "nginx answers at once")
    return (": nginx's keepalive_timeout fires first (server FIN). Go's Transport has a background read loop "
            "per connection, blocked in a read while the connection is idle: it meets the EOF at once and "
            "the Transport closes its side within a millisecond (no CLOSE_WAIT to speak of, nothing to "
            f"leak). Round 2: {second} GET on a new connection, no error, idle at the end")


# The client's own log, the server's access log and the library log, one file per capture: per
# mode family, (file in the run directory, what it is).
EVENTS = ("client.log", "client: its event lines (stdout; t = seconds since it started, epoch = wall clock)")
TOMCAT_ACCESS = ("access.log", "server: Tomcat 10.1's AccessLogValve (begin and end ms since the epoch, peer, "
                               "request line, status, bytes, Connection and Keep-Alive sent, X/+/- = aborted / "
                               "kept alive / closed)")
NGINX_ACCESS = ("access.log", "server: nginx's access log ($msec at the end of the request, peer, request line, "
                              "status, bytes, the connection's serial number and the request's number on it)")
LOG_PARTS = {
    "tomcat": [EVENTS, ("client.err", "client: Apache HttpClient 4.5's own log (commons-logging on "
                                      "java.util.logging, programs/java/logging.properties; UTC)"), TOMCAT_ACCESS],
    "requests-close": [EVENTS, ("client.err", "client: urllib3's own log (DEBUG, UTC)"), NGINX_ACCESS],
    "curl10": [EVENTS, ("client.err", "client: curl -v (request and response heads)"), NGINX_ACCESS],
    "go": [EVENTS, NGINX_ACCESS],  # net/http writes no log of its own: the events say what it did
}


def write_app_log(name, mode, run_dir, out_dir):
    lines = [f"# {name}: the applications' own logs during the capture (captures/record-apps)"]
    for file, what in LOG_PARTS.get(mode, LOG_PARTS["tomcat"]):
        path = os.path.join(run_dir, file)
        body = open(path).read().splitlines() if os.path.exists(path) else []
        lines += [f"## {what}"] + [l for l in body if l.strip()]
    with open(os.path.join(out_dir, name + ".app.log"), "w") as f:
        f.write("\n".join(lines) + "\n")


def app_log_agrees(mode, log, out, run_dir):
    """The client's log and the packets tell the same story: every status it logged is a response
    on that connection in the capture, and every request that met a reset is an error it logged
    (or a retry HttpClient logged). Returns the log's facts for "checks"."""
    by_port = {c["client"]: c for c in out}
    statuses = [e["status"] for e in log if e["ev"] == "response"]
    for e in log:
        if e["ev"] != "response" or not e.get("local"):
            continue
        c = by_port.get(e["local"])
        if c is None or e["status"] not in c["http"]["statuses"]:
            raise Failed(f"the client logged {e['status']} on {e['local']}, not in the capture")
    wire = sum(c["http"]["responses"] for c in out)
    if wire != len(statuses):
        raise Failed(f"{wire} responses in the capture, the client logged {len(statuses)}")
    late = [c["http"]["late_write"] for c in out if c["http"]["late_write"]]
    errors = [e for e in log if e["ev"] == "error"]
    facts = {"client_statuses": statuses, "late_writes": [w["request"] for w in late]}
    if mode == "stale-post":
        err = open(os.path.join(run_dir, "client.err")).read()
        retried = err.count("Retrying request to")
        lost = [w for w in late if not w["idempotent"]]
        if len(errors) != len(lost) or any(e.get("method") != w["method"] for e, w in zip(errors, lost)):
            raise Failed(f"errors logged {errors}, non-idempotent late writes {lost}")
        if retried != len(late) - len(lost) or err.count("NoHttpResponseException") < len(late):
            raise Failed(f"{retried} retries logged for {len(late)} late writes ({len(lost)} not idempotent)")
        facts.update(client_exception=errors[0]["exception"], client_exception_message=errors[0]["message"],
                     lost_requests=[w["request"] for w in lost], retried_requests=[w["request"] for w in late
                                                                                 if w["idempotent"]])
    elif errors or late:
        raise Failed(f"unexpected errors {errors} / late writes {late}")
    return facts


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"apps_truth: {e}", file=sys.stderr)
        sys.exit(1)
