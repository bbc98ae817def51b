"""The HTTP facts of a captures/record-apps capture, for the truth file's "http" keys.

Why: issue 19 reads the bytes behind every close (requests, responses, status codes,
Connection / Keep-Alive headers, the request that met a reset). These facts come from an
independent judge, tshark's HTTP dissector, and are cross-checked against the applications'
own logs (the client's event lines: statuses and exceptions), so that closewait's HTTP
analysis can be tested against what really went over the wire and what the program saw.
"""

import subprocess

# RFC 9110 §9.2.2: the idempotent methods (a client may retry them after a failure).
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}

FIELDS = ["tcp.stream", "frame.number", "frame.time_relative", "tcp.srcport", "tcp.dstport",
          "http.request.method", "http.request.uri", "http.request.version", "http.response.code",
          "http.response.phrase", "http.response.version", "http.request.line", "http.response.line"]


def header_lines(value):
    """The header lines tshark joined (each ends with a literal \\r\\n, joined by ';')."""
    return [h for h in value.split("\\r\\n;") if h] if value else []


def header(lines, name):
    for line in lines:
        key, _, val = line.partition(":")
        if key.strip().lower() == name.lower():
            return val.strip().removesuffix("\\r\\n").strip()
    return None


def messages(pcap, port):
    """Every HTTP head in the capture, in frame order, with the client port it belongs to."""
    cmd = ["tshark", "-n", "-r", pcap, "-d", f"tcp.port=={port},http", "-Y", "http", "-T", "fields",
           "-E", "aggregator=;"] + [a for f in FIELDS for a in ("-e", f)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    heads = []
    for line in out.splitlines():
        (stream, frame, t, sport, dport, method, uri, rversion, code, phrase, sversion, reql,
         respl) = line.split("\t")
        if method:
            lines = header_lines(reql)
            heads.append({"client_port": int(sport), "frame": int(frame), "t": float(t), "request": True,
                          "line": f"{method} {uri} {rversion}", "method": method, "version": rversion,
                          "connection": header(lines, "Connection")})
        if code:
            lines = header_lines(respl)
            heads.append({"client_port": int(dport), "frame": int(frame), "t": float(t), "request": False,
                          "line": f"{sversion} {code} {phrase}".rstrip(), "status": int(code),
                          "version": sversion, "connection": header(lines, "Connection"),
                          "keep_alive": header(lines, "Keep-Alive")})
    return heads


def facts(heads, segs, client, server, close_reason):
    """The "http" object of one connection: its exchanges in order (HTTP/1.x without
    pipelining here: each response answers the oldest unanswered request), what the server
    advertised, whether the close was announced, and the request that met a reset."""
    port = int(client.rsplit(":", 1)[1])
    mine = [h for h in heads if h["client_port"] == port]
    exchanges, pending = [], []
    for h in mine:
        if h["request"]:
            ex = {"request": h["line"], "method": h["method"], "idempotent": h["method"] in IDEMPOTENT,
                  "request_frame": h["frame"], "request_at_s": round(h["t"], 6),
                  "request_connection": h["connection"], "status": None, "response": None}
            exchanges.append(ex)
            pending.append(ex)
        else:
            if not pending:
                raise ValueError(f"{client}: a response (frame {h['frame']}) answers no request")
            ex = pending.pop(0)
            ex.update(status=h["status"], response=h["line"], response_frame=h["frame"],
                      response_at_s=round(h["t"], 6), response_connection=h["connection"],
                      keep_alive=h["keep_alive"])
    responses = [e for e in exchanges if e["status"] is not None]
    last = responses[-1] if responses else None
    fin = {side: next((p for p in segs if p["fin"] and (p["src"] == client) == (side == "client")), None)
           for side in ("client", "server")}
    rst = next((p for p in segs if p["rst"]), None)
    closer = None
    if fin["client"] or fin["server"]:
        closer = min((p["t"], side) for side, p in fin.items() if p)[1]
    late = None
    if fin["server"] and rst and rst["src"] == server:
        after = [e for e in exchanges if e["request_at_s"] > fin["server"]["t"] and e["status"] is None]
        if after:
            e = after[0]
            late = {"request": e["request"], "method": e["method"], "idempotent": e["idempotent"],
                    "request_frame": e["request_frame"], "after_server_fin_s":
                        round(e["request_at_s"] - fin["server"]["t"], 6),
                    "rst_at_s": round(rst["t"], 6)}
    close = None
    if closer:
        first_fin = fin[closer]
        last_data = max((p["t"] for p in segs if p["len"] > 0 and p["t"] < first_fin["t"]), default=None)
        close = {"by": closer, "reason": close_reason,
                 "announced": bool(last and last["response_connection"]
                                   and last["response_connection"].lower() == "close"),
                 "idle_before_s": None if last_data is None else round(first_fin["t"] - last_data, 6)}
    versions = sorted({e["request"].rsplit(" ", 1)[1] for e in exchanges})
    return {
        "requests": len(exchanges),
        "responses": len(responses),
        "statuses": [e["status"] for e in responses],
        "request_versions": versions,
        "keep_alive_advertised": next((e["keep_alive"] for e in reversed(responses) if e["keep_alive"]), None),
        "close": close,
        "late_write": late,
        "exchanges": exchanges,
    }
