#!/usr/bin/env python3
"""Times commands interleaved: each round runs every command once, in a new random order, so a
change in the machine's load (other builds, a cron job) falls on every command alike. hyperfine
runs all runs of one command before the next, which lets a burst of load land on one of them.

Usage: interleave.py --runs N --warmup W --json OUT NAME=COMMAND...
A COMMAND is split on spaces (no shell: a shell's start would be timed too). Each run is
posix_spawn + waitpid of the command with stdin, stdout and stderr on /dev/null; the wall time
is from just before the spawn to just after waitpid returns. A run that exits
non-zero stops the bench. OUT gets, per command, every time in seconds. (Peak RSS is not
measured here: posix_spawn's child shares this Python process's memory until execve, and
ru_maxrss would count it.)
"""
import argparse
import json
import os
import random
import sys
import time


def run_once(argv):
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
    finally:
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"interleave: {' '.join(argv)} exited {code}")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", required=True)
    parser.add_argument("commands", nargs="+")
    args = parser.parse_args()
    commands = [c.split("=", 1) for c in args.commands]
    results = {name: {"command": command, "times": []} for name, command in commands}
    order = list(range(len(commands)))
    for round_ in range(args.warmup + args.runs):
        random.shuffle(order)
        for i in order:
            name, command = commands[i]
            elapsed = run_once(command.split())
            if round_ >= args.warmup:
                results[name]["times"].append(elapsed)
    with open(args.json, "w") as out:
        json.dump(results, out)


if __name__ == "__main__":
    main()
