#!/usr/bin/env python3
"""Drives an interactive shell on a pseudo-terminal, as a user at a
keyboard would, for the job-control tests (tests/escape.rs).

usage: pty_session.py STEPS_JSON

STEPS_JSON is a list of steps: ["send", TEXT] writes TEXT to the terminal
(control characters included, "\\u001a" is ^Z); ["expect", REGEX, SECONDS]
reads until the terminal's output since the last match matches REGEX;
["pause", SECONDS] waits, as a user does before pressing ^C. The
shell is `bash --norc --noprofile -i`, so it has job control. Exits 0 when
every step passed, 1 on the first that timed out, and prints everything
the terminal showed either way.
"""
import json
import os
import pty
import re
import select
import signal
import sys
import time


def main():
    steps = json.loads(sys.argv[1])
    pid, master = pty.fork()
    if pid == 0:
        os.environ["PS1"] = "$ "
        os.environ["TERM"] = "dumb"
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
    seen = ""
    unread = ""
    failed = None
    for step in steps:
        if step[0] == "send":
            os.write(master, step[1].encode())
            continue
        if step[0] == "pause":
            time.sleep(step[1])
            continue
        pattern, limit = re.compile(step[1]), time.monotonic() + step[2]
        while not pattern.search(unread):
            left = limit - time.monotonic()
            if left <= 0:
                failed = step
                break
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096).decode(errors="replace")
            except OSError:
                failed = step
                break
            seen += chunk
            unread += chunk
        if failed:
            break
        unread = unread[pattern.search(unread).end():]
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    sys.stdout.write(seen)
    if failed:
        sys.stdout.write("\n--- timed out waiting for %r\n" % failed[1])
        sys.exit(1)


if __name__ == "__main__":
    main()
