#!/usr/bin/env python3
"""Seeds for the `http` and `http_stream` fuzz targets: the HTTP conversations of the shipped
captures (both directions of the first streams of each, via `tshark -z follow,tcp,raw`) and
tests/data/http, written in each target's input format (see the targets' module docs).

Run from the repository root: python3 fuzz/http_seeds.py  (writes fuzz/seeds/http{,_stream}/)
"""
import glob
import os
import subprocess

SIZES = [1, 2, 3, 7, 16, 64, 100, 536, 1448, 1460, 4096, 8192, 16383, 16384, 16385, 65535]
MAX_PAYLOAD = 60000
STREAMS_PER_CAPTURE = 3


def follow(pcap, stream):
    """(client bytes, server bytes) of one TCP stream; the client speaks first."""
    out = subprocess.run(
        ["tshark", "-r", pcap, "-qz", f"follow,tcp,raw,{stream}"],
        capture_output=True, text=True, check=True).stdout
    client, server, inside = [], [], False
    for line in out.splitlines():
        if line.startswith("Node 1"):
            inside = True
            continue
        if not inside or line.startswith("===="):
            continue
        (server if line.startswith("\t") else client).append(line.strip())
    return bytes.fromhex("".join(client)), bytes.fromhex("".join(server))


def chunk_ops(length, side, size_index):
    """Feed ops covering `length` bytes for `side`: chunks of SIZES[size_index], then the
    largest sizes that fit."""
    ops, left = [], length
    while left > 0:
        index = size_index
        while SIZES[index] > left:
            index -= 1
        ops.append(side | (index << 3))
        left -= SIZES[index]
    return ops


def http_seed(client, server, size_index):
    ops = chunk_ops(len(client), 0, size_index) + chunk_ops(len(server), 1, size_index)
    return bytes([min(len(ops), 255)]) + bytes(ops[:255]) + client + server


def stream_seed(client, server, cover):
    split = len(client)
    return bytes([0, 1, 200, split & 0xFF, split >> 8, cover]) + client + server


def main():
    conversations = []
    for pair in sorted(glob.glob("tests/data/http/*-client-to-server.bin")):
        with open(pair, "rb") as c, open(pair.replace("client-to-server", "server-to-client"), "rb") as s:
            conversations.append((os.path.basename(pair)[:-4], c.read(), s.read()))
    for pcap in sorted(glob.glob("captures/*.pcap")):
        number = os.path.basename(pcap).split("-")[0]
        if not (number == "13" or "21" <= number <= "32"):
            continue
        for stream in range(STREAMS_PER_CAPTURE):
            client, server = follow(pcap, stream)
            if client or server:
                conversations.append((f"{number}-stream{stream}", client, server))
    for target in ("http", "http_stream"):
        os.makedirs(f"fuzz/seeds/{target}", exist_ok=True)
    for name, client, server in conversations:
        client = client[:MAX_PAYLOAD // 2]
        server = server[:MAX_PAYLOAD - len(client)]
        for size_index in (2, 9):  # 3-byte chunks, 1460-byte chunks
            with open(f"fuzz/seeds/http/{name}-{SIZES[size_index]}", "wb") as out:
                out.write(http_seed(client, server, size_index))
        for cover in (182, 183):  # 1457-byte segments, forwards and backwards
            with open(f"fuzz/seeds/http_stream/{name}-{cover}", "wb") as out:
                out.write(stream_seed(client, server, cover))
    print(f"{len(conversations)} conversations")


main()
