#!/usr/bin/env python3
"""Times one Engine API request against several daemons, interleaved, from this process (no
client start-up timed): each run connects to the daemon's unix socket, sends the request with
`Connection: close`, and reads the answer to its end. The time is from just before the connect
to the last byte. Each round runs every daemon once, in a new random order (as interleave.py).

Usage: api_time.py --runs N --warmup W --json OUT --path /v1.41/containers/json NAME=SOCKET...
OUT has interleave.py's shape: per name, every time in seconds. A status other than 200 stops
the bench.
"""
import argparse
import json
import random
import socket
import sys
import time


def run_once(path, request):
    start = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    elapsed = time.perf_counter() - start
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/1.1 200 "):
        sys.exit(f"api_time: {path}: {answer[:200]!r}")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("daemons", nargs="+")
    args = parser.parse_args()
    daemons = [d.split("=", 1) for d in args.daemons]
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: api_time\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    results = {name: {"socket": sock, "times": []} for name, sock in daemons}
    order = list(range(len(daemons)))
    for round_ in range(args.warmup + args.runs):
        random.shuffle(order)
        for i in order:
            name, sock = daemons[i]
            elapsed = run_once(sock, request)
            if round_ >= args.warmup:
                results[name]["times"].append(elapsed)
    with open(args.json, "w") as out:
        json.dump(results, out)


if __name__ == "__main__":
    main()
