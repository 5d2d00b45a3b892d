#!/usr/bin/env python3
"""The server-side timeline of `docker run --rm` from a `minidock daemon` trace
(`MINIDOCK_TRACE=FILE`, src/daemon/trace.rs): for each run (a `create`, then a `wait` with
`condition=removed`), when each step happened after the create request came in, in ms; the
median of every run is printed, each step with the time since the one before.

Usage: timeline.py TRACE
"""
import re
import statistics
import sys

# (label, pattern of the trace line), in the order a run goes through them.
STEPS = [
    ("create answered", r"^< 201 POST \S*/containers/create"),
    ("attach upgraded", r"^< 101 POST \S*/attach"),
    ("wait headers sent", r"^< 200 POST \S*/wait\?condition=removed"),
    ("start came", r"^> POST \S*/start$"),
    ("shim: shim-step started", r"^shim: shim-step \[\]"),
    ("shim: container running", r"^shim: shim-step answered \"ok "),
    ("start answered", r"^< 204 POST \S*/start$"),
    ("shim: process exited", r"^shim: process \d+ (exited|killed)"),
    ("shim: exit recorded, removed", r"^shim: shim-step answered \"done\""),
    ("wait answered", r"^stream end$"),
]


def runs(lines):
    """Each run's (seconds, what) lines, from its create request on."""
    run = None
    for line in lines:
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) < 3:
            continue
        at, what = float(parts[0]), parts[2]
        if re.match(r"^> POST \S*/containers/create", what):
            run = [(at, what)]
        elif run is not None:
            run.append((at, what))
            if re.match(STEPS[-1][1], what):
                if any("condition=removed" in w for _, w in run):
                    yield run
                run = None


def main():
    found = {label: [] for label, _ in STEPS}
    count = 0
    for run in runs(open(sys.argv[1])):
        count += 1
        start = run[0][0]
        for label, pattern in STEPS:
            times = [at for at, what in run if re.match(pattern, what)]
            if times:
                found[label].append((times[0] - start) * 1000)
    print(f"server-side timeline of docker run --rm, median of {count} runs "
          "(ms after the create request came):")
    medians = sorted(
        (statistics.median(times), label) for label, times in found.items() if times
    )
    before = 0.0
    for at, label in medians:
        print(f"  {at:8.2f}  (+{at - before:6.2f})  {label}")
        before = at


if __name__ == "__main__":
    main()
