#!/usr/bin/env python3
"""A userspace delay line between two veth ends, run in a middle namespace.

Why: the simultaneous-close scenario needs both FINs in flight at the same time, which
a veth pair (latency ~µs) cannot give deterministically, and this kernel has no netem.
So the client's veth and the server's veth each end in a middle namespace that has no
IP address; this program reads every frame arriving on one end (AF_PACKET) and writes
it out of the other end `delay` seconds later.  The TCP endpoints stay the real kernels.

Frames sent by a local stack on veth carry a partial TCP checksum (checksum offload), so
the IPv4 and TCP checksums are recomputed before a frame is forwarded.

Usage: delayline.py IF_A IF_B DELAY_S MAX_SECONDS
"""

import heapq
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def fix_checksums(frame):
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    ip = bytearray(frame[14:14 + ihl])
    total = struct.unpack("!H", ip[2:4])[0]
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    out = bytearray(frame[:14]) + ip + bytearray(frame[14 + ihl:14 + total])
    if ip[9] == 6:  # TCP
        seg = out[14 + ihl:]
        seg[16:18] = b"\0\0"
        pseudo = bytes(ip[12:20]) + struct.pack("!BBH", 0, 6, len(seg))
        seg[16:18] = struct.pack("!H", csum(pseudo + bytes(seg)))
        out[14 + ihl:] = seg
    return bytes(out)


def main():
    if_a, if_b, delay, max_s = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    socks = {}
    for name in (if_a, if_b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        socks[name] = s
    other = {socks[if_a]: socks[if_b], socks[if_b]: socks[if_a]}
    queue = []  # (due, seq, out_sock, frame)
    seq = 0
    end = time.monotonic() + max_s
    print("ready", flush=True)
    while time.monotonic() < end:
        wait = 0.05
        if queue:
            wait = max(0.0, min(wait, queue[0][0] - time.monotonic()))
        ready, _, _ = select.select(list(other), [], [], wait)
        for s in ready:
            frame, meta = s.recvfrom(65535)
            if meta[2] == PACKET_OUTGOING:  # our own transmissions
                continue
            heapq.heappush(queue, (time.monotonic() + delay, seq, other[s], fix_checksums(frame)))
            seq += 1
        t = time.monotonic()
        while queue and queue[0][0] <= t:
            _, _, out, frame = heapq.heappop(queue)
            out.send(frame)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # die quietly when record is interrupted
    main()
