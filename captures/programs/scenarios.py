#!/usr/bin/env python3
"""Orchestrates one close scenario between namespaces prepared by `captures/record`.

Runs in the root namespace.  Starts tcpdump and two puppet endpoints (peer.py) inside
the namespaces, drives them step by step, snapshots `ss -tanoi` in both namespaces at the
key moments and at the end of the capture (before teardown), stops tcpdump with SIGINT,
and writes `<scenario>.truth.json` next to the capture.

The expected classification of every connection is stated by the scenario below (what
the scenario was built to produce); the expected end states are then checked against
the kernel's own `ss` output for that 4-tuple, and the run fails if they disagree,
unless the field is listed as unknowable (with a note saying why).  So a truth file is
only written for a scenario the kernel actually reproduced.

Usage: scenarios.py SCENARIO OUT_DIR NS_CLIENT NS_SERVER [NS_MIDDLE]
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer.py")
DELAYLINE = os.path.join(HERE, "delayline.py")

C_IP, S_IP, PORT = "10.77.0.1", "10.77.0.2", 8788
SERVER = f"{S_IP}:{PORT}"
REQ = "GET /{n} HTTP/1.1\r\nHost: 10.77.0.2\r\n\r\n"
RESP = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

SYSCTLS = ["net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl",
           "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_syn_linear_timeouts", "net.ipv4.tcp_tw_reuse",
           "net.ipv4.tcp_timestamps", "net.ipv4.tcp_sack", "net.ipv4.tcp_rfc1337", "net.ipv4.tcp_orphan_retries"]

# ss spelling of the netstat-style names used in "expected"
SS_NAME = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RECEIVED": "SYN-RECV",
           "FIN_WAIT_1": "FIN-WAIT-1", "FIN_WAIT_2": "FIN-WAIT-2", "CLOSE_WAIT": "CLOSE-WAIT",
           "CLOSING": "CLOSING", "LAST_ACK": "LAST-ACK", "TIME_WAIT": "TIME-WAIT", "CLOSED": "CLOSED"}


def run(cmd, timeout=10, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r.stdout


def exp(kind, initiator, first, first_by, rst_by, failed, client_state, server_state):
    return {"kind": kind, "initiator": initiator, "first": first, "first_by": first_by, "rst_by": rst_by,
            "who_failed_to_respond": failed, "client_state": client_state, "server_state": server_state}


class Failed(Exception):
    pass


class Peer:
    """One puppet endpoint (peer.py) inside a namespace."""

    def __init__(self, ns, who):
        self.who = who
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, "python3", PEER, "150"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            self.q.put(json.loads(line))
        self.q.put(None)

    def __call__(self, op, timeout=15, allow_error=False, **kw):
        kw.update(op=op, who=self.who)
        self.p.stdin.write(json.dumps(kw) + "\n")
        self.p.stdin.flush()
        try:
            r = self.q.get(timeout=timeout)
        except queue.Empty:
            raise Failed(f"{self.who} {op}: no reply within {timeout} s")
        if r is None:
            raise Failed(f"{self.who} {op}: puppet exited")
        if not r["ok"] and not allow_error:
            raise Failed(f"{self.who} {op}: {r['error']}")
        return r

    def close(self):
        try:
            self.p.stdin.write('{"op": "exit"}\n')
            self.p.stdin.flush()
            self.p.wait(5)
        except Exception:
            self.p.kill()
            self.p.wait(5)


def parse_ss(output):
    """{(local, peer): state} from `ss -tanoi` output (info lines are indented)."""
    out = {}
    for line in output.splitlines():
        if not line or line[0].isspace() or line.startswith("State"):
            continue
        f = line.split()
        if len(f) >= 5:
            out[(f[3], f[4])] = f[0]
    return out


class Lab:
    def __init__(self, name, out_dir, ns_c, ns_s, ns_m=None):
        self.name, self.out_dir = name, out_dir
        self.ns = {"client": ns_c, "server": ns_s, "middle": ns_m}
        self.role_ns = {"client": ns_c, "server": ns_s}  # where each role's sockets live
        self.snaps, self.conns, self.captures, self.peers = [], [], [], []
        self.settings, self.notes, self.faithful, self.checks = {}, [], True, {}
        self.tcpdump, self.post, self.procs = [], [], []
        self.t0 = time.monotonic()

    # -- environment
    def sysctl(self, role, key, value):
        run(["ip", "netns", "exec", self.ns[role], "sysctl", "-qw", f"{key}={value}"])

    def sysctls(self, role):
        vals = {}
        for k in SYSCTLS:
            v = run(["ip", "netns", "exec", self.ns[role], "sysctl", "-n", k], check=False).strip()
            vals[k.split(".")[-1]] = int(v) if v.isdigit() else v
        return vals

    def iptables(self, role, *rule):
        run(["ip", "netns", "exec", self.ns[role], "iptables", *rule])

    def peer(self, role, ns_role=None):
        p = Peer(self.ns[ns_role or role], role)
        self.peers.append(p)
        return p

    # -- capture
    def start_capture(self, file, ns_role="client", iface="veth-c", precision="micro", link_type="EN10MB",
                      fmt="pcap", snaplen=None):
        path = os.path.join(self.out_dir, file)
        cmd = ["ip", "netns", "exec", self.ns[ns_role], "tcpdump", "-i", iface, "-U", "--immediate-mode", "-n",
               "-w", path]
        if precision == "nano":
            cmd.append("--time-stamp-precision=nano")
        if snaplen:
            cmd += ["-s", str(snaplen)]
        cmd.append("tcp")
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = ""
        for _ in range(5):  # "listening on …" once the socket is bound (after a link-type line for -i any)
            line = p.stderr.readline()
            seen += line
            if "listening on" in line or not line:
                break
        if "listening on" not in seen:
            p.kill()
            raise Failed(f"tcpdump did not start: {seen}")
        self.tcpdump.append(p)
        self.captures.append({"file": file, "interface": iface if iface != "any" else "any",
                              "namespace": ns_role, "format": fmt, "link_type": link_type,
                              "timestamp_precision": precision})
        if snaplen:
            self.captures[-1]["snaplen"] = snaplen
        time.sleep(0.3)

    def stop_capture(self):
        time.sleep(0.3)
        for p in self.tcpdump:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failed("tcpdump did not stop on SIGINT")
            stats = p.stderr.read()
            m = re.search(r"(\d+) packets dropped by kernel", stats)
            if m and int(m.group(1)):
                raise Failed(f"tcpdump dropped packets: {stats}")
        self.tcpdump = []

    # -- kernel truth
    def ss(self, moment):
        for role in ("client", "server"):
            out = run(["ip", "netns", "exec", self.ns[role], "ss", "-tanoi"])
            self.snaps.append({"moment": moment, "namespace": role, "t": round(time.monotonic() - self.t0, 3),
                               "output": out})

    def kernel_state(self, role, local, peer, snaps=None):
        ns_role = "client" if self.role_ns[role] == self.ns["client"] else "server"
        snaps = snaps or [s for s in self.snaps if s["moment"] == "end of capture" and s["namespace"] == ns_role]
        return parse_ss(snaps[-1]["output"]).get((local, peer), "CLOSED")

    def conn(self, client, server, expected, unknowable=(), note=None, kernel_end_state=None):
        c = {"client": client, "server": server, "expected": expected, "kernel_end_state": kernel_end_state,
             "unknowable": list(unknowable)}
        if note:
            c["note"] = note
        self.conns.append(c)
        return c

    def wait_gone(self, role, local, peer, limit=15):
        """Poll ss (bounded) until the 4-tuple has no socket any more in role's namespace."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            out = run(["ip", "netns", "exec", self.role_ns[role], "ss", "-tan"])
            if (local, peer) not in parse_ss(out):
                return round(time.monotonic() - self.t0, 3)
            time.sleep(0.1)
        raise Failed(f"{role} socket {local}->{peer} still present after {limit} s")

    # -- result
    def finish(self, story):
        """Final ss snapshot, stop capture, fill and check kernel end states, write truth."""
        self.ss("end of capture")
        self.stop_capture()
        for cap in self.captures:
            if "converted_from" in cap:
                run(["editcap", "-F", "pcapng", os.path.join(self.out_dir, cap["converted_from"]),
                     os.path.join(self.out_dir, cap["file"])])
        for check in self.post:
            check()
        errors = []
        for c in self.conns:
            if c["kernel_end_state"] is None:
                c["kernel_end_state"] = {"client": self.kernel_state("client", c["client"], c["server"]),
                                         "server": self.kernel_state("server", c["server"], c["client"])}
            for role in ("client", "server"):
                field = f"{role}_state"
                want = SS_NAME[c["expected"][field]]
                got = c["kernel_end_state"][role]
                if field not in c["unknowable"] and want != got:
                    errors.append(f"{c['client']} {role}: expected {want}, kernel says {got}")
        if errors:
            raise Failed("kernel disagrees with expected end states: " + "; ".join(errors))
        logs = []
        for p in self.peers:
            try:
                logs += p("log", timeout=5)["log"]
            except Failed:
                pass
        sys_c, sys_s = self.sysctls("client"), self.sysctls("server")
        settings = {"tcp_fin_timeout": sys_s["tcp_fin_timeout"]}
        settings.update(self.settings)
        settings["sysctl_client_ns"], settings["sysctl_server_ns"] = sys_c, sys_s
        written = []
        for cap in self.captures:
            size = os.path.getsize(os.path.join(self.out_dir, cap["file"]))
            if size >= 200_000:
                raise Failed(f"{cap['file']} is {size} bytes")
            name = cap.pop("truth_name", None) or cap["file"].rsplit(".", 1)[0]
            truth = {
                "scenario": name,
                "story": story,
                "capture": cap,
                "settings": settings,
                "faithful": self.faithful,
                "notes": " ".join(self.notes),
                "connections": self.conns,
                "checks": self.checks,
                "kernel": os.uname().release,
                "ss": self.snaps,
                "program_log": sorted(logs, key=lambda e: (e["who"], e["t"])),
            }
            with open(os.path.join(self.out_dir, name + ".truth.json"), "w") as f:
                json.dump(truth, f, indent=1)
                f.write("\n")
            written.append(name)
        return written

    def cleanup(self):
        for p in self.tcpdump:
            p.kill()
        for p in self.peers:
            p.close()
        for p in self.procs:
            p.kill()
            p.wait(5)


def tshark_fields(path, *fields, filt=None):
    cmd = ["tshark", "-n", "-r", path, "-T", "fields"]
    if filt:
        cmd += ["-Y", filt]
    for f in fields:
        cmd += ["-e", f]
    rows = run(cmd, timeout=60).splitlines()
    return [r.split("\t") for r in rows]


# ============================================================== the scenarios
# Each returns the story.  Timing: sleeps are chosen so that the kernel's reaction to one
# step is complete before the next step (veth RTT is ~0.1 ms; delayed ACKs ≤ 40 ms here).

def simple_exchange(lab, c, s, n=1):
    c("send", name="c", data=REQ.format(n=n))
    s("recv", name="s", until="\r\n\r\n")
    s("send", name="s", data=RESP)
    c("recv", name="c", until="ok\n")


def connect_pair(lab, c, s, **kw):
    r = c("connect", name="c", host=S_IP, port=kw.pop("port", PORT), **kw)
    s("accept", name="s", listener="l")
    return r["local"]


def sc_client_closes_first(lab, file="01-client-closes-first.pcap", **cap):
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture(file, **cap)
    cl = connect_pair(lab, c, s)
    simple_exchange(lab, c, s)
    lab.ss("after response")
    c("close", name="c")
    time.sleep(0.2)
    lab.ss("after client close, before server close")
    r = s("recv", name="s", timeout=2)
    if not r["eof"]:
        raise Failed("server did not see EOF")
    s("close", name="s")
    time.sleep(0.2)
    lab.conn(cl, SERVER, exp("graceful", "client", "FIN", "client", None, None, "TIME_WAIT", "CLOSED"))
    return ("The client sends one HTTP request, reads the response and calls close(): its FIN goes first. "
            "The server reads EOF 0.2 s later and closes too. The client is left in TIME_WAIT, the server CLOSED.")


def sc_server_idle_close_client_leak(lab, file="02-server-idle-close-client-leak.pcap", loopback=False, **cap):
    idle = 1.0
    lab.settings["server_idle_timeout_s"] = idle
    if loopback:
        host, srv = "127.0.0.1", f"127.0.0.1:{PORT}"
        lab.role_ns["client"] = lab.ns["server"]
        s, c = lab.peer("server"), lab.peer("client", "server")
    else:
        host, srv = S_IP, SERVER
        s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=host, port=PORT)
    s("serve", listener="l", idle=idle)
    lab.start_capture(file, **cap)
    cl = c("connect", name="c", host=host, port=PORT)["local"]
    c("send", name="c", data=REQ.format(n=1))
    c("recv", name="c", until="ok\n")
    lab.ss("after response (idle keep-alive connection)")
    time.sleep(idle + 0.5)
    lab.ss("after server idle close")
    time.sleep(1.0)
    lab.conn(cl, srv, exp("unanswered_fin", "server", "FIN", "server", None, "client", "CLOSE_WAIT", "FIN_WAIT_2"))
    return (f"The client sends one request on a keep-alive connection and reads the response. The server "
            f"closes the connection after {idle} s idle (like Tomcat's keepAliveTimeout); the client's kernel "
            f"ACKs the FIN but the client program never reads or calls close(). At the end of the capture the "
            f"client is in CLOSE_WAIT and the server in FIN_WAIT_2 (tcp_fin_timeout 60 s, not expired).")


def sc_fin_timeout_then_rst(lab, before_expiry=False):
    idle = 1.0
    lab.settings["server_idle_timeout_s"] = idle
    if not before_expiry:
        lab.sysctl("server", "net.ipv4.tcp_fin_timeout", 2)
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    s("serve", listener="l", idle=idle)
    lab.start_capture("03b-late-write-rst-in-fin-wait-2.pcap" if before_expiry else "03-fin-timeout-then-rst.pcap")
    cl = c("connect", name="c", host=S_IP, port=PORT)["local"]
    c("send", name="c", data=REQ.format(n=1))
    c("recv", name="c", until="ok\n")
    time.sleep(idle + 0.3)
    lab.ss("after server idle close")
    if before_expiry:
        st = parse_ss(lab.snaps[-1]["output"]).get((SERVER, cl))
        if st != "FIN-WAIT-2":
            raise Failed(f"server not in FIN-WAIT-2: {st}")
        c("send", name="c", data=REQ.format(n=2))
        time.sleep(0.2)
        if c("state", name="c")["state"] != "CLOSED":
            raise Failed("client not reset")
        lab.conn(cl, SERVER, exp("fin_then_rst", "server", "FIN", "server", "server", "client", "CLOSED", "CLOSED"))
        lab.notes.append("Linux answers new data arriving at an orphaned FIN_WAIT_2 socket (closed by close(), "
                         "held as a timewait-style socket) with a RST and drops the socket: no need to wait for "
                         "tcp_fin_timeout.")
        return ("As 02 (server idle close after 1.0 s, tcp_fin_timeout 60, client never closes), but 0.3 s after "
                "the FIN, while ss still shows the server in FIN-WAIT-2, the client pool reuses the connection: "
                "its request draws an immediate RST from the server kernel. Both ends CLOSED.")
    gone = lab.wait_gone("server", SERVER, cl)
    lab.ss("after the server's orphaned FIN_WAIT_2 expired (tcp_fin_timeout 2 s)")
    lab.settings["server_fin_wait_2_gone_at_s"] = gone
    time.sleep(0.3)
    c("send", name="c", data=REQ.format(n=2))
    time.sleep(0.2)
    st = c("state", name="c")["state"]
    if st != "CLOSED":
        raise Failed(f"client not reset: {st}")
    lab.conn(cl, SERVER, exp("fin_then_rst", "server", "FIN", "server", "server", "client", "CLOSED", "CLOSED"))
    lab.notes.append("The expiry is not what makes the RST: Linux also answers data reaching a still-orphaned "
                     "FIN_WAIT_2 with RST (see 03b). Here the server kernel has no socket at all, and its RST has "
                     "no ACK flag (seq = the ACK number of the client's segment).")
    return ("As 02: the server closes the idle keep-alive connection after 1.0 s and the client never calls "
            "close() (CLOSE_WAIT). The server namespace has net.ipv4.tcp_fin_timeout=2, so its orphaned "
            "FIN_WAIT_2 socket is dropped about 2 s later (checked with ss). The client pool then reuses the "
            "connection: its late request reaches a server kernel with no socket for it, which answers RST. "
            "Both ends CLOSED.")


def sc_server_closes_client_follows(lab, file="04-server-closes-client-follows.pcap", **cap):
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture(file, **cap)
    cl = connect_pair(lab, c, s)
    c("send", name="c", data="GET / HTTP/1.1\r\nHost: 10.77.0.2\r\nConnection: close\r\n\r\n")
    s("recv", name="s", until="\r\n\r\n")
    lab.ss("request received")
    s("send", name="s", data=RESP.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"))
    s("close", name="s")
    r = c("recv", name="c", timeout=2)
    if not r["eof"]:
        raise Failed("client saw no EOF")
    c("close", name="c")
    time.sleep(0.2)
    lab.conn(cl, SERVER, exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "TIME_WAIT"))
    return ("HTTP/1.1 with 'Connection: close': the server sends the response and calls close() at once; the "
            "client reads to EOF and calls close() immediately. The server is left in TIME_WAIT, the client "
            "CLOSED.")


def sc_bulk_download_then_close(lab):
    body, snaplen = 1_500_000, 96
    file = "21-bulk-download-then-close.pcap"
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n"
    lab.settings.update(response_body_bytes=body, response_bytes=len(head) + body, snaplen=snaplen)
    # A veth hands the peer whole TSO/GSO super-segments (up to 64 KB: ~30 segments for this response);
    # one segment per skb makes the segments the MSS-sized frames a physical wire would carry.
    for role, dev in (("server", "veth-s"), ("client", "veth-c")):
        run(["ip", "-n", lab.ns[role], "link", "set", "dev", dev, "gso_max_segs", "1"])
    lab.settings["gso_max_segs"] = {"veth-s": 1, "veth-c": 1}
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture(file, snaplen=snaplen)
    cl = connect_pair(lab, c, s)
    c("send", name="c", data="GET /big HTTP/1.1\r\nHost: 10.77.0.2\r\nConnection: close\r\n\r\n")
    s("recv", name="s", until="\r\n\r\n")
    lab.ss("request received")
    # the server's sendall() blocks until the client reads: it runs in a thread while the client reads
    done = {}

    def serve():
        try:
            s("send", name="s", data=head)
            s("send", name="s", size=body, timeout=20)
            s("close", name="s")
        except Failed as e:
            done["error"] = str(e)

    t = threading.Thread(target=serve)
    t.start()
    r = c("recv", name="c", timeout=10, maxlen=2 * (len(head) + body))
    t.join(25)
    if "error" in done or t.is_alive():
        raise Failed(f"server did not send and close: {done.get('error', 'still running')}")
    if not r["eof"] or r["len"] != len(head) + body:
        raise Failed(f"client did not read the whole response and EOF: {r}")
    c("close", name="c")
    time.sleep(0.2)
    lab.conn(cl, SERVER, exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "TIME_WAIT"))
    lab.post.append(lambda: count_data_segments(lab, os.path.join(lab.out_dir, file), cl))
    return (f"HTTP/1.1 with 'Connection: close' and a large body: the client requests, the server sends one "
            f"{len(head) + body}-byte response (a {body}-byte body) and calls close() right after its last write; "
            f"the client reads to EOF and calls close() at once. Captured with a snaplen of {snaplen} bytes "
            f"(tcpdump -s {snaplen}): every frame is cut after the TCP header and a few payload bytes, so the "
            f"payload lengths can only be read from the IP headers. The server is left in TIME_WAIT, the "
            f"client CLOSED.")


def count_data_segments(lab, path, client):
    """How the kernel cut the response into segments, as the capture shows it (IP lengths, not caplen)."""
    rows = tshark_fields(path, "ip.src", "tcp.srcport", "tcp.seq", "tcp.len", "frame.cap_len", "frame.len",
                         "tcp.analysis.retransmission")
    data = [(int(r[2]), int(r[3]), r[6] != "") for r in rows if f"{r[0]}:{r[1]}" != client and int(r[3]) > 0]
    sent = max(seq + ln for seq, ln, _ in data) - 1  # relative sequence numbers: the first byte is 1
    ck = lab.checks
    ck["server_data_segments"] = len(data)
    ck["server_data_bytes"] = sum(ln for _, ln, _ in data)
    ck["server_stream_bytes"] = sent
    ck["server_retransmissions"] = sum(1 for *_, rx in data if rx)
    ck["server_largest_segment"] = max(ln for _, ln, _ in data)
    ck["truncated_frames"] = sum(1 for r in rows if int(r[4]) < int(r[5]))
    lab.notes.append(f"Checked in the capture with tshark: the server's {sent}-byte stream went out in "
                     f"{len(data)} data segments ({ck['server_data_bytes']} payload bytes, of which "
                     f"{ck['server_retransmissions']} segment(s) retransmitted; largest segment "
                     f"{ck['server_largest_segment']} bytes: gso_max_segs 1 on both veths, one MSS per segment "
                     f"as on a physical wire); {ck['truncated_frames']} frames are cut by the snaplen.")
    if sent != lab.settings["response_bytes"]:
        raise Failed(f"the server's stream in the capture is {sent} bytes, not {lab.settings['response_bytes']}")


def start_delay_line(lab, delay):
    """A userspace delay line in the middle namespace (record sets it up for 05, 17, 19)."""
    lab.settings["one_way_delay_s"] = delay
    lab.settings["topology"] = "veth-c <-> delayline (middle namespace) <-> veth-s"
    dl = subprocess.Popen(["ip", "netns", "exec", lab.ns["middle"], "python3", DELAYLINE, "m-c", "m-s",
                           str(delay), "60"], stdout=subprocess.PIPE, text=True)
    lab.procs.append(dl)
    if dl.stdout.readline().strip() != "ready":
        raise Failed("delay line did not start")


def sc_simultaneous_close(lab, file="05-simultaneous-close.pcap", first_by="client", **cap):
    delay = 0.1
    start_delay_line(lab, delay)
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture(file, **cap)
    cl = connect_pair(lab, c, s)
    c("send", name="c", data="hello\n")
    s("recv", name="s", until="\n")
    s("send", name="s", data="hello\n")
    c("recv", name="c", until="\n")
    time.sleep(0.6)
    lab.ss("established, idle, all data acknowledged")
    c("close", name="c")
    s("close", name="s")
    time.sleep(0.05)
    lab.ss("both closed, FINs in flight")
    time.sleep(0.8)
    lab.conn(cl, SERVER, exp("simultaneous", "both", "FIN", first_by, None, None, "TIME_WAIT", "TIME_WAIT"))
    lab.notes.append(DELAY_NOTE)
    lab.post.append(lambda: verify_fins_cross(lab, os.path.join(lab.out_dir, file), cl))
    return ("Client and server each call close() within a few milliseconds of each other while the path has "
            f"a {delay} s one-way delay (a userspace delay line in a middle namespace), so each FIN leaves "
            "before the other's arrives: both go FIN_WAIT_1 -> CLOSING -> TIME_WAIT. The client's close() "
            "is issued first" + (", so its FIN is first in the capture." if first_by == "client" else "."))


DELAY_NOTE = ("The 0.1 s one-way delay comes from a userspace delay line (programs/delayline.py) in a middle "
              "namespace, because this kernel has no netem; it only forwards frames later (recomputing "
              "checksums the sender left to offload). The capture is on the client's veth: client packets "
              "are stamped as they leave the client, server packets as they arrive 0.1 s after being sent.")


def verify_fins_cross(lab, path, client):
    """The FINs cross iff neither FIN's ACK number covers the other side's FIN."""
    rows = tshark_fields(path, "ip.src", "tcp.srcport", "tcp.seq_raw", "tcp.ack_raw", "tcp.len",
                         filt="tcp.flags.fin==1")
    fins = {}
    for src, sport, seq, ack, ln in rows:
        side = "client" if f"{src}:{sport}" == client else "server"
        fins.setdefault(side, (int(seq) + int(ln), int(ack)))  # (FIN's own seq, ack) of the first FIN
    cf, sf = fins["client"], fins["server"]
    crossed = cf[1] <= sf[0] and sf[1] <= cf[0]
    detail = (f"client FIN seq={cf[0]} ack={cf[1]}; server FIN seq={sf[0]} ack={sf[1]}: "
              f"{'neither' if crossed else 'one'} FIN acknowledges the other's FIN")
    lab.checks["fins_cross"] = crossed
    lab.checks["fins_cross_detail"] = detail
    lab.notes.append(f"Checked in the capture with tshark: the FINs cross ({detail}).")
    if not crossed:
        raise Failed("FINs did not cross: " + detail)


def sc_abort_linger_zero(lab):
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture("06-abort-linger-zero.pcap")
    cl = connect_pair(lab, c, s)
    simple_exchange(lab, c, s)
    lab.ss("after response")
    c("close", name="c", linger0=True)
    time.sleep(0.2)
    r = s("recv", name="s", timeout=1)
    lab.settings["server_recv_after_rst"] = r.get("error") or ("eof" if r["eof"] else "data")
    lab.conn(cl, SERVER, exp("abort", "client", "RST", "client", "client", None, "CLOSED", "CLOSED"))
    return ("After one request/response the client sets SO_LINGER {on, 0} and calls close(): the kernel sends a "
            "RST instead of a FIN and frees the socket at once (no TIME_WAIT). The server's next recv() fails "
            "with ECONNRESET. Both ends CLOSED.")


def sc_close_with_unread_data(lab):
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture("07-close-with-unread-data.pcap")
    cl = connect_pair(lab, c, s)
    simple_exchange(lab, c, s)
    c("send", name="c", data=REQ.format(n=2))
    time.sleep(0.1)
    lab.ss("second request unread in the server's receive buffer")
    s("close", name="s")
    time.sleep(0.2)
    r = c("recv", name="c", timeout=1)
    if r.get("error") != "ConnectionResetError":
        raise Failed(f"client did not see a reset: {r}")
    lab.conn(cl, SERVER, exp("abort", "server", "RST", "server", "server", None, "CLOSED", "CLOSED"))
    return ("The client sends a second (pipelined) request that the server never reads; the server calls close() "
            "with those bytes still in its receive buffer, so Linux sends a RST instead of a FIN (RFC 2525 "
            "2.17). The client's recv() fails with ECONNRESET. Both ends CLOSED.")


def sc_refused(lab):
    s, c = lab.peer("server"), lab.peer("client")
    lab.start_capture("08-connection-refused.pcap")
    r = c("connect", name="c", host=S_IP, port=PORT)
    if r.get("error") != "ConnectionRefusedError":
        raise Failed(f"connect was not refused: {r}")
    time.sleep(0.1)
    lab.conn(r["local"], SERVER, exp("refused", "none", "RST", "server", "server", None, "CLOSED", "CLOSED"))
    return ("Nothing listens on 10.77.0.2:8788: the client's SYN is answered by RST/ACK from the server kernel and "
            "connect() fails with ECONNREFUSED.")


def sc_syn_timeout(lab):
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    rule = ["-A", "INPUT", "-p", "tcp", "--dport", str(PORT), "--syn", "-j", "DROP"]
    lab.iptables("server", *rule)
    lab.settings["server_firewall"] = "iptables " + " ".join(rule)
    lab.start_capture("09-syn-timeout.pcap")
    r = c("connect", name="c", host=S_IP, port=PORT, nonblock=True)
    time.sleep(3.5)
    st = c("state", name="c")["state"]
    if st != "SYN_SENT":
        raise Failed(f"client not in SYN_SENT: {st}")
    lab.ss("client still retrying its SYN")
    lab.conn(r["local"], SERVER, exp("syn_timeout", "none", None, None, None, "server", "SYN_SENT", "CLOSED"))
    lab.notes.append("The capture ends 3.5 s after the first SYN while the client is still retrying "
                     "(tcp_syn_retries 6 would take ~127 s): ss shows SYN-SENT. The server has a listener; its "
                     "firewall drops the SYNs before TCP sees them, so it has no socket for this 4-tuple.")
    return ("A firewall rule in the server namespace drops incoming SYNs to port 8788. The client's SYN is sent "
            "at 0 s and retransmitted about 1, 2 and 3 s later (this kernel's tcp_syn_linear_timeouts=4 keeps the "
            "first retransmissions 1 s apart instead of doubling), never answered.")


def sc_keepalive_answered(lab):
    ka = (1, 1, 3)
    lab.settings["client_keepalive"] = {"TCP_KEEPIDLE": ka[0], "TCP_KEEPINTVL": ka[1], "TCP_KEEPCNT": ka[2]}
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture("10a-keepalive-answered.pcap")
    cl = connect_pair(lab, c, s, keepalive=ka)
    simple_exchange(lab, c, s)
    time.sleep(2.5)
    lab.ss("idle, keep-alive probes being answered")
    time.sleep(2.0)
    lab.conn(cl, SERVER, exp("open", "none", None, None, None, None, "ESTABLISHED", "ESTABLISHED"))
    return ("The client enables SO_KEEPALIVE with TCP_KEEPIDLE=1 s, TCP_KEEPINTVL=1 s, TCP_KEEPCNT=3. After one "
            "request/response the connection stays idle for ~4.5 s: the client's kernel sends a keep-alive probe "
            "after each second of idleness and the server's kernel answers each one. Nobody closes: the "
            "connection is still open at the end of the capture.")


def sc_keepalive_unanswered(lab):
    ka = (1, 1, 3)
    lab.settings["client_keepalive"] = {"TCP_KEEPIDLE": ka[0], "TCP_KEEPINTVL": ka[1], "TCP_KEEPCNT": ka[2]}
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture("10b-keepalive-unanswered.pcap")
    cl = connect_pair(lab, c, s, keepalive=ka)
    simple_exchange(lab, c, s)
    rule = ["-A", "INPUT", "-s", C_IP, "-j", "DROP"]
    lab.iptables("server", *rule)
    lab.settings["server_firewall_after_response"] = "iptables " + " ".join(rule)
    lab.ss("server vanished (firewall drops everything from the client)")
    end = time.monotonic() + 10
    while c("state", name="c")["state"] != "CLOSED":
        if time.monotonic() > end:
            raise Failed("client keep-alive never gave up")
        time.sleep(0.1)
    time.sleep(0.3)
    lab.conn(cl, SERVER, exp("abort", "client", "RST", "client", "client", None, "CLOSED", "CLOSED"),
             unknowable=["server_state"])
    lab.notes.append("The server's kernel never received the RST (dropped by its firewall) and still shows the "
                     "connection ESTAB; the capture sees the RST leave, and closewait takes a RST seen in the "
                     "capture as delivered, so the expected server_state is CLOSED and is listed as unknowable.")
    return ("As 10a, but right after the response the server silently disappears: a firewall rule in its "
            "namespace drops everything from the client. The client's kernel sends 3 keep-alive probes one "
            "second apart, none answered, and then gives up: it sends a RST and the client's socket is closed "
            "(ETIMEDOUT).")


def sc_half_close(lab):
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture("11-half-close.pcap")
    cl = connect_pair(lab, c, s)
    c("send", name="c", data="SEND ME EVERYTHING\n")
    c("shutdown", name="c", how="wr")
    r = s("recv", name="s", timeout=2)
    if not r["eof"]:
        raise Failed("server saw no EOF")
    lab.ss("after client shutdown(SHUT_WR)")
    for _ in range(5):
        s("send", name="s", size=1000)
        time.sleep(0.2)
    s("close", name="s")
    r = c("recv", name="c", timeout=2)
    if not r["eof"] or r["len"] != 5000:
        raise Failed(f"client did not get all data + EOF: {r}")
    c("close", name="c")
    time.sleep(0.2)
    lab.conn(cl, SERVER, exp("half_close", "client", "FIN", "client", None, None, "TIME_WAIT", "CLOSED"))
    return ("The client sends its request and calls shutdown(SHUT_WR): its FIN goes first. The server reads "
            "the request and EOF, keeps sending 5 x 1000 bytes 0.2 s apart, then calls close(). The client "
            "reads everything to EOF. Client TIME_WAIT, server CLOSED.")


def sc_pool_leak(lab):
    idle, count, closed = 1.0, 50, [0, 10, 20, 30, 40]
    lab.settings.update(server_idle_timeout_s=idle, connections=count, client_closes_indexes=closed,
                        connection_spacing_s=0.02)
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    s("serve", listener="l", idle=idle)
    lab.start_capture("12-pool-leak-many.pcap")
    r = c("pool", host=S_IP, port=PORT, count=count, spacing=0.02, watch=4.0, close_idx=closed, timeout=30)
    time.sleep(idle + 0.5)
    lab.ss("after every connection was idle-closed by the server")
    log = s("log")["log"]
    idle_closed = {e["peer"] for e in log if e["ev"] == "idle_close"}
    for conn in r["conns"]:
        if conn["client"] not in idle_closed:
            raise Failed(f"{conn['client']} was not idle-closed by the server")
        if conn["fate"] == "closed_after_eof":
            e = exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "TIME_WAIT")
        else:
            e = exp("unanswered_fin", "server", "FIN", "server", None, "client", "CLOSE_WAIT", "FIN_WAIT_2")
        lab.conn(conn["client"], SERVER, e, note=f"pool index {conn['i']}: {conn['fate'].replace('_', ' ')}")
    leaked = sum(1 for x in r["conns"] if x["fate"] == "leaked")
    lab.settings["leaked"] = leaked
    return (f"A client pool opens {count} keep-alive connections to 10.77.0.2:8788, one every 20 ms, sends one "
            f"request on each and keeps them. The server closes each after {idle} s idle. The pool notices the "
            f"EOF on {count - leaked} of them (indexes {closed}) and closes those at once (server TIME_WAIT); "
            f"the other {leaked} are leaked: never read, never closed (client CLOSE_WAIT, server FIN_WAIT_2) - "
            f"the netstat full of CLOSE_WAIT of the seed article.")


def sc_keepalive_reuse(lab):
    idle = 1.0
    lab.settings["server_idle_timeout_s"] = idle
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    s("serve", listener="l", idle=idle)
    lab.start_capture("13-http-keepalive-reuse.pcap")
    cl = c("connect", name="c", host=S_IP, port=PORT)["local"]
    for n in range(1, 4):
        if n > 1:
            time.sleep(0.5)
        c("send", name="c", data=REQ.format(n=n))
        c("recv", name="c", until="ok\n")
    lab.ss("after the third response")
    r = c("recv", name="c", timeout=idle + 2)
    if not r["eof"]:
        raise Failed("client saw no EOF")
    c("close", name="c")
    time.sleep(0.2)
    lab.conn(cl, SERVER, exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "TIME_WAIT"))
    return (f"One HTTP/1.1 keep-alive connection carries three requests 0.5 s apart (each within the server's "
            f"{idle} s idle timeout). After the third response the connection idles; the server closes it after "
            f"{idle} s, and this client notices the EOF and closes at once. Server TIME_WAIT, client CLOSED.")


def sc_port_reuse(lab):
    port = 40123
    lab.settings["client_bind_port"] = port
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    lab.start_capture("14-port-reuse.pcap")
    cl = connect_pair(lab, c, s, bind_port=port, reuseaddr=True)
    simple_exchange(lab, c, s)
    s("close", name="s")
    r = c("recv", name="c", timeout=2)
    if not r["eof"]:
        raise Failed("client saw no EOF")
    c("close", name="c")
    time.sleep(0.5)
    lab.ss("after connection 1: server TIME-WAIT")
    tw = parse_ss(lab.snaps[-1]["output"]).get((SERVER, cl))
    if tw != "TIME-WAIT":
        raise Failed(f"server not in TIME-WAIT after connection 1: {tw}")
    cl2 = connect_pair(lab, c, s, bind_port=port, reuseaddr=True)
    if cl2 != cl:
        raise Failed("second connection did not reuse the port")
    simple_exchange(lab, c, s, n=2)
    lab.ss("connection 2 established on the same 4-tuple")
    c("close", name="c")
    time.sleep(0.1)
    if not s("recv", name="s", timeout=2)["eof"]:
        raise Failed("server saw no EOF")
    s("close", name="s")
    time.sleep(0.2)
    lab.conn(cl, SERVER, exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "CLOSED"),
             kernel_end_state={"client": "CLOSED", "server": "CLOSED"},
             note="connection 1: the server's TIME-WAIT (seen by ss after it) ended when connection 2's SYN "
                  "arrived on the same 4-tuple; the kernel accepted the SYN and replaced the TIME-WAIT socket.")
    lab.conn(cl, SERVER, exp("graceful", "client", "FIN", "client", None, None, "TIME_WAIT", "CLOSED"),
             note="connection 2")
    lab.notes.append("Both connections share the 4-tuple; they are listed in capture order. Connection 1's "
                     "kernel_end_state is not read from ss (the 4-tuple now belongs to connection 2): its server "
                     "TIME-WAIT was ended by connection 2's SYN, which a capture shows (SYN in TIME-WAIT with a "
                     "higher sequence number and timestamp, RFC 1122 4.2.2.13 / RFC 6191), so the expected server_state is CLOSED, not TIME_WAIT.")
    return (f"Two consecutive connections from 10.77.0.1:{port} (bound explicitly with SO_REUSEADDR) to "
            f"10.77.0.2:8788. Connection 1: one request, the server closes first and is left in TIME_WAIT. "
            f"0.5 s later connection 2 starts from the same port; the server's kernel accepts its SYN on the "
            f"TIME_WAIT 4-tuple. Connection 2: one request, the client closes first (client TIME_WAIT).")


def sc_close_wait_keepalive(lab):
    idle, ka, after_close = 1.0, (1, 1, 3), 6.0
    file = "16-close-wait-keepalive.pcap"
    lab.settings.update(server_idle_timeout_s=idle, observed_after_server_close_s=after_close,
                        client_keepalive={"TCP_KEEPIDLE": ka[0], "TCP_KEEPINTVL": ka[1], "TCP_KEEPCNT": ka[2],
                                          "enabled": "after the server's FIN (client already in CLOSE_WAIT)"})
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    s("serve", listener="l", idle=idle)
    lab.start_capture(file)
    cl = c("connect", name="c", host=S_IP, port=PORT)["local"]
    c("send", name="c", data=REQ.format(n=1))
    c("recv", name="c", until="ok\n")
    lab.ss("after response (idle keep-alive connection)")
    end = time.monotonic() + idle + 2
    while c("state", name="c")["state"] != "CLOSE_WAIT":  # TCP_INFO: the program still reads nothing
        if time.monotonic() > end:
            raise Failed("the server did not idle-close")
        time.sleep(0.02)
    closed_at = time.monotonic()
    time.sleep(0.1)
    c("keepalive", name="c", idle=ka[0], intvl=ka[1], cnt=ka[2])
    lab.ss("after server idle close, keep-alive switched on in CLOSE_WAIT")
    time.sleep(3.5)
    lab.ss("CLOSE_WAIT for 3.5 s, keep-alive probes answered by the server's FIN_WAIT_2")
    for role, want in (("client", "CLOSE-WAIT"), ("server", "FIN-WAIT-2")):
        snap = [x for x in lab.snaps if x["namespace"] == role][-1]
        local, peer = (cl, SERVER) if role == "client" else (SERVER, cl)
        st = parse_ss(snap["output"]).get((local, peer))
        if st != want:
            raise Failed(f"{role} in {st}, not {want}, while probing")
    if "keepalive" not in [x for x in lab.snaps if x["namespace"] == "client"][-1]["output"]:
        raise Failed("ss shows no keepalive timer on the client socket")
    time.sleep(max(0.0, closed_at + after_close - time.monotonic()))
    lab.conn(cl, SERVER, exp("unanswered_fin", "server", "FIN", "server", None, "client", "CLOSE_WAIT", "FIN_WAIT_2"))
    lab.post.append(lambda: verify_keepalive_in_close_wait(lab, os.path.join(lab.out_dir, file), cl))
    lab.notes.append("Keep-alive is switched on (SO_KEEPALIVE, TCP_KEEPIDLE 1, TCP_KEEPINTVL 1, TCP_KEEPCNT 3) "
                     "0.1 s after the client socket reached CLOSE_WAIT, not at connect: with a 1 s keep-alive "
                     "idle and the server's 1.0 s idle timeout, a probe sent at connect time would race the FIN. "
                     "The timer counts from the last segment received (the FIN), so the first probe still "
                     "leaves ~1 s after the FIN. Linux keeps sending keep-alive probes in CLOSE_WAIT (ss: "
                     "timer:(keepalive…)); the server's socket is an orphaned FIN_WAIT_2 held as a timewait "
                     "socket (ss: timer:(timewait…)), for which a probe (seq = RCV.NXT - 1) is out of window: "
                     "it answers with a pure ACK, so the probes never fail and the CLOSE_WAIT lives on.")
    return (f"As 02: one request on a keep-alive connection; the server closes it after {idle} s idle and the "
            f"client program never reads or calls close() (CLOSE_WAIT). The client socket has keep-alive on "
            f"(idle 1 s, interval 1 s): its kernel keeps probing the half-closed connection once a second and "
            f"the server kernel (orphaned FIN_WAIT_2, tcp_fin_timeout 60 s) answers every probe with an ACK. The "
            f"capture runs {after_close} s past the FIN: CLOSE_WAIT / FIN_WAIT_2 the whole time, kept alive.")


def verify_keepalive_in_close_wait(lab, path, client):
    """Count the client's keep-alive probes after the server's FIN (pure ACKs one below the client's
    SND.NXT, i.e. below the seq of its ACK of the FIN), and the server's answers (pure ACKs with
    seq = FIN + 1 acknowledging the client's SND.NXT)."""
    rows = tshark_fields(path, "frame.time_relative", "ip.src", "tcp.srcport", "tcp.flags.fin", "tcp.seq_raw",
                         "tcp.ack_raw", "tcp.len")
    fin_seq = fin_t = snd_nxt = None
    probes, answers = 0, 0
    for t, src, sport, fin, seq, ack, ln in rows:
        mine, seq, ack, ln = f"{src}:{sport}" == client, int(seq), int(ack), int(ln)
        if fin_seq is None:
            if not mine and fin == "1":
                fin_seq, fin_t = (seq + ln) & 0xFFFFFFFF, float(t)
            continue
        if mine and ln == 0 and snd_nxt is None:
            snd_nxt = seq  # the client's ACK of the FIN
        elif mine and ln == 0 and seq == (snd_nxt - 1) & 0xFFFFFFFF:
            probes += 1
        elif not mine and ln == 0 and seq == (fin_seq + 1) & 0xFFFFFFFF and ack == snd_nxt:
            answers += 1
    lab.checks["keepalive_probes_after_fin"] = probes
    lab.checks["keepalive_answers"] = answers
    lab.checks["close_wait_seen_s"] = round(float(rows[-1][0]) - fin_t, 3)
    lab.notes.append(f"Checked in the capture with tshark: {probes} keep-alive probes after the FIN "
                     f"(seq = the client's SND.NXT - 1), {answers} ACKs from the server's FIN_WAIT_2; the "
                     f"capture ends {lab.checks['close_wait_seen_s']} s after the FIN.")
    if probes < 4 or answers != probes:
        raise Failed(f"expected >= 4 answered probes: {probes} probes, {answers} answers")


def sc_keepalive_race_rst(lab):
    delay, idle, send_after = 0.1, 1.0, 0.955
    file = "17-keepalive-race-rst.pcap"
    start_delay_line(lab, delay)
    lab.settings.update(server_idle_timeout_s=idle, client_second_request_after_response_s=send_after)
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    s("serve", listener="l", idle=idle)
    lab.start_capture(file)
    cl = c("connect", name="c", host=S_IP, port=PORT)["local"]
    c("send", name="c", data=REQ.format(n=1))
    c("recv", name="c", until="ok\n")
    got = time.monotonic()
    lab.ss("after response (idle keep-alive connection)")
    # the server's idle clock started when the request reached it, one delay before the response reached
    # us: it closes ~idle - delay after `got`; its FIN reaches us ~idle after `got`. Send in between.
    time.sleep(max(0.0, got + send_after - time.monotonic()))
    st = c("state", name="c")["state"]
    if st != "ESTABLISHED":
        raise Failed(f"client already in {st} before its second request: too late")
    sent = c("send", name="c", data=REQ.format(n=2))["t"]
    # poll (TCP_INFO, reads nothing) to learn which of the server's RSTs closed the client socket
    end = time.monotonic() + 0.6
    while (r := c("state", name="c"))["state"] != "CLOSED":
        if time.monotonic() > end:
            raise Failed(f"client not reset: {r['state']}")
        time.sleep(0.005)
    closed_within = r["t"] - sent
    lab.settings["client_closed_within_s_of_request"] = round(closed_within, 4)
    time.sleep(0.2)
    r = c("recv", name="c", timeout=0.2)
    lab.settings["client_recv_after_reset"] = r.get("error") or ("eof" if r["eof"] else "data")
    time.sleep(0.3)
    lab.conn(cl, SERVER, exp("fin_then_rst", "server", "FIN", "server", "server", "client", "CLOSED", "CLOSED"))
    lab.notes.append(DELAY_NOTE)
    lab.post.append(lambda: verify_request_crosses_fin(lab, os.path.join(lab.out_dir, file), cl, closed_within))
    return (f"HTTP keep-alive race over a path with {delay} s one-way delay (the delay line of 05): after one "
            f"request/response the connection idles; the server closes it after {idle} s, and "
            f"{send_after} s after reading the response the client, which has not seen the FIN yet, sends its "
            f"next request on it. Request and FIN cross in flight. The request reaches a server socket that is "
            f"closed (FIN_WAIT_1), so the server kernel answers it with RST (RFC 1122 4.2.2.13 / Linux "
            f"TCPAbortOnData); the client kernel, in CLOSE_WAIT by then, accepts the RST. Both ends CLOSED.")


def verify_request_crosses_fin(lab, path, client, closed_within):
    """The client's second request and the server's FIN cross iff neither acknowledges the other.
    Also tells which server RST closed the client socket: the client was seen CLOSED at most
    `closed_within` s after its request left."""
    rows = tshark_fields(path, "frame.time_relative", "ip.src", "tcp.srcport", "tcp.flags.fin", "tcp.flags.reset",
                         "tcp.seq_raw", "tcp.ack_raw", "tcp.len")
    rows = [(float(r[0]), f"{r[1]}:{r[2]}" == client, r[3] == "1", r[4] == "1", int(r[5]), int(r[6]), int(r[7]))
            for r in rows]
    req = [r for r in rows if r[1] and r[6] > 0][-1]
    fin = next(r for r in rows if not r[1] and r[2])
    rsts = [r for r in rows if not r[1] and r[3]]
    req_ack, fin_seq, fin_ack = req[5], fin[4] + fin[6], fin[5]
    crossed = req_ack == fin_seq and fin_ack == req[4]
    detail = (f"request seq={req[4]} len={req[6]} ack={req_ack}; server FIN (own seq {fin_seq}) ack={fin_ack}: "
              f"{'neither acknowledges the other' if crossed else 'one acknowledges the other'}; "
              f"server RSTs seq={[r[4] for r in rsts]}")
    lab.checks["request_crosses_fin"] = crossed
    lab.checks["request_crosses_fin_detail"] = detail
    lab.notes.append(f"Checked in the capture with tshark: {detail}.")
    if not crossed or not rsts:
        raise Failed("request and FIN did not cross, or no RST: " + detail)
    # both times are the client program's own clock; 10 ms covers the gap between the request's capture
    # stamp and send() returning, far less than the ~0.1 s between the two RSTs
    closed_by = [r for r in rsts if r[0] <= req[0] + closed_within + 0.01]
    if len(closed_by) == 1 and closed_by[0][4] == fin_seq:
        lab.checks["client_reset_by_rst_with_seq_rcv_nxt_minus_1"] = True
        lab.notes.append(
            f"The client socket was seen CLOSED {closed_within:.3f} s after its request left, before the "
            f"second RST arrived ({rsts[-1][0] - req[0]:.3f} s after): the first RST closed it. Its seq is the "
            f"FIN's own sequence number, one below the client's RCV.NXT (the FIN had arrived): RFC 9293's "
            f"window check would make it unacceptable, but Linux accepts a RST with seq = RCV.NXT - 1 in "
            f"CLOSE_WAIT, CLOSING and LAST_ACK (tcp_reset_check), for exactly this race. The second RST "
            f"answers the client's ACK of the FIN, which reached a server with no socket left.")
    else:
        lab.checks["client_reset_by_rst_with_seq_rcv_nxt_minus_1"] = None
        lab.notes.append(f"The client was seen CLOSED {closed_within:.3f} s after its request; which RST "
                         f"closed it is not determined by this run.")


def sc_many_idle_timeouts(lab):
    idle, client_idle, count, spacing = 1.0, 0.5, 30, 0.05
    no_timeout = [i for i in range(count) if i % 3 == 0]
    leak = [i for i in no_timeout if i % 6 == 3]
    idle_close = [i for i in range(count) if i not in no_timeout]
    lab.settings.update(server_idle_timeout_s=idle, client_idle_timeout_s=client_idle, connections=count,
                        connection_spacing_s=spacing, client_idle_timeout_indexes=idle_close,
                        client_no_idle_timeout_indexes=no_timeout, leaked_indexes=leak)
    s, c = lab.peer("server"), lab.peer("client")
    s("listen", name="l", host=S_IP, port=PORT)
    s("serve", listener="l", idle=idle)
    lab.start_capture("20-many-idle-timeouts.pcap")
    r = c("idle_pool", host=S_IP, port=PORT, count=count, spacing=spacing, client_idle=client_idle,
          idle_close_idx=idle_close, leak_idx=leak, watch=idle + 1.0, timeout=30)
    time.sleep(0.5)
    lab.ss("after every connection was idle-closed by one side")
    log = s("log")["log"]
    server_closed = {e["peer"] for e in log if e["ev"] == "idle_close"}
    fates = {}
    for conn in r["conns"]:
        fate = conn["fate"]
        fates[fate] = fates.get(fate, 0) + 1
        if fate == "closed_idle":
            if conn["client"] in server_closed:
                raise Failed(f"{conn['client']}: the server idle-closed a connection the pool should close first")
            e = exp("graceful", "client", "FIN", "client", None, None, "TIME_WAIT", "CLOSED")
            note = f"pool index {conn['i']}: pool idle timeout {client_idle} s fired first, client closed"
        else:
            if conn["client"] not in server_closed:
                raise Failed(f"{conn['client']} ({fate}) was not idle-closed by the server")
            if fate == "closed_after_eof":
                e = exp("graceful", "server", "FIN", "server", None, None, "CLOSED", "TIME_WAIT")
            elif fate == "leaked":
                e = exp("unanswered_fin", "server", "FIN", "server", None, "client", "CLOSE_WAIT", "FIN_WAIT_2")
            else:
                raise Failed(f"{conn['client']}: unexpected fate {fate}")
            note = f"pool index {conn['i']}: no pool idle timeout, server idle-closed after {idle} s, " + \
                fate.replace("_", " ")
        lab.conn(conn["client"], SERVER, e, note=note)
    lab.settings["fates"] = fates
    return (f"A client pool opens {count} HTTP keep-alive connections, one every {spacing} s, one request each. "
            f"The server's idle timeout is {idle} s. For {len(idle_close)} of them the pool has its own idle "
            f"timeout of {client_idle} s, shorter than the server's, so the pool closes first (client "
            f"TIME_WAIT; the server reads EOF and closes: CLOSED). The other {len(no_timeout)} (every third, "
            f"indexes {no_timeout}) have no pool timeout and are idle-closed by the server after {idle} s: the "
            f"pool notices the EOF and closes {len(no_timeout) - len(leak)} of them (server TIME_WAIT) and leaks "
            f"{len(leak)} (indexes {leak}: client CLOSE_WAIT, server FIN_WAIT_2).")


def sc_pcapng_nano(lab):
    story = sc_client_closes_first(lab, file="15d-pcap-nanosecond.pcap", precision="nano")
    lab.captures.append({"file": "15a-pcapng-nanosecond.pcapng", "interface": "veth-c", "namespace": "client",
                         "format": "pcapng", "link_type": "EN10MB", "timestamp_precision": "nano",
                         "converted_from": "15d-pcap-nanosecond.pcap"})
    lab.notes.append("tcpdump cannot write pcapng: 15d is tcpdump's own nanosecond pcap (magic 0xa1b23c4d) and "
                     "15a the same packets converted with `editcap -F pcapng` (if_tsresol 9).")
    return ("Same run saved as 15d (tcpdump nanosecond pcap) and 15a (pcapng, nanosecond if_tsresol). " + story)


def sc_loopback(lab):
    lab.settings["loopback"] = True
    lab.notes.append("Client and server share the server namespace and talk over 127.0.0.1 (not 10.77.0.x); "
                     "ss snapshots of the client namespace are therefore empty, and both sockets appear in the "
                     "server namespace's snapshots. Each packet appears once on lo.")
    story = sc_server_idle_close_client_leak(lab, file="15b-loopback.pcap", loopback=True, ns_role="server",
                                             iface="lo")
    return ("On the server namespace's loopback interface (client and server both on 127.0.0.1): " + story)


def sc_any_sll2(lab):
    story = sc_server_closes_client_follows(lab, file="15c-any-sll2.pcap", iface="any", link_type="LINUX_SLL2")
    return "Captured with `tcpdump -i any` in the client namespace (Linux cooked v2 headers). " + story


SCENARIOS = {
    "01-client-closes-first": sc_client_closes_first,
    "02-server-idle-close-client-leak": sc_server_idle_close_client_leak,
    "03-fin-timeout-then-rst": sc_fin_timeout_then_rst,
    "03b-late-write-rst-in-fin-wait-2": lambda lab: sc_fin_timeout_then_rst(lab, before_expiry=True),
    "04-server-closes-client-follows": sc_server_closes_client_follows,
    "05-simultaneous-close": sc_simultaneous_close,
    "06-abort-linger-zero": sc_abort_linger_zero,
    "07-close-with-unread-data": sc_close_with_unread_data,
    "08-connection-refused": sc_refused,
    "09-syn-timeout": sc_syn_timeout,
    "10a-keepalive-answered": sc_keepalive_answered,
    "10b-keepalive-unanswered": sc_keepalive_unanswered,
    "11-half-close": sc_half_close,
    "12-pool-leak-many": sc_pool_leak,
    "13-http-keepalive-reuse": sc_keepalive_reuse,
    "14-port-reuse": sc_port_reuse,
    "15a-pcapng-nanosecond": sc_pcapng_nano,
    "15b-loopback": sc_loopback,
    "15c-any-sll2": sc_any_sll2,
    "16-close-wait-keepalive": sc_close_wait_keepalive,
    "17-keepalive-race-rst": sc_keepalive_race_rst,
    "18-server-side-vantage": lambda lab: server_vantage(
        "Captured on the server's veth (veth-s), the server's vantage point. ",
        sc_server_idle_close_client_leak(lab, file="18-server-side-vantage.pcap", ns_role="server",
                                         iface="veth-s"), lab=lab),
    "19-simultaneous-server-vantage": lambda lab: server_vantage(
        "Scenario 05 captured on the server's veth (veth-s). The client's close() is issued first, but on the "
        "server's wire the server's own FIN leaves before the client's FIN arrives (0.1 s later), so here the "
        "first FIN is the server's. ",
        sc_simultaneous_close(lab, file="19-simultaneous-server-vantage.pcap", first_by="server",
                              ns_role="server", iface="veth-s"), lab=lab, delayed=True),
    "20-many-idle-timeouts": sc_many_idle_timeouts,
    "21-bulk-download-then-close": sc_bulk_download_then_close,
}


def server_vantage(prefix, story, lab=None, delayed=False):
    if not delayed:
        lab.notes.append("Only the vantage point differs from the client-side captures: on veth-s the server's "
                         "segments are stamped as they leave and the client's as they arrive, microseconds "
                         "apart on a veth pair; the segments themselves are the same.")
    else:  # the capture is on the server's side of the delay line
        lab.notes = [n.replace("The capture is on the client's veth: client packets are stamped as they leave "
                               "the client, server packets as they arrive 0.1 s after being sent.",
                               "The capture is on the server's veth: server packets are stamped as they leave "
                               "the server, client packets as they arrive 0.1 s after being sent.")
                     for n in lab.notes]
    return prefix + story


def main():
    name, out_dir, ns_c, ns_s = sys.argv[1:5]
    ns_m = sys.argv[5] if len(sys.argv) > 5 else None
    lab = Lab(name, out_dir, ns_c, ns_s, ns_m)
    try:
        story = SCENARIOS[name](lab)
        written = lab.finish(story)
        print("wrote " + ", ".join(written))
    finally:
        lab.cleanup()


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
