#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A small QMP client for test scripts (python3 standard library only).

  qmp.py [-t SECS] SOCKET REQUEST
  qmp.py [-t SECS] SOCKET -
      the first form runs one request and prints its answer; the second
      reads requests from stdin, one a line, and answers each on one line
      of stdout, on one QMP connection (no Python start-up per request:
      seconds each in a slow guest). A request is one of:
        COMMAND [JSON-ARGS]       a QMP command; answers its "return"
        wait-event NAME           the next event NAME (or one already seen)
        migrate-wait [STATUS,...] polls query-migrate until its status is
                                  one of STATUS (default completed) or
                                  final (completed, failed, cancelled)
        status-wait STATUS[,...]  polls query-status until the run state is
                                  one of them
      prefixed by "-t SECS" for its own time limit (default: -t, 30 s),
      connecting to QEMU included (the socket is retried until it exists).
      Answers: "ok JSON"; "fail JSON" when a wait ended in a status not
      asked for; "error TEXT" for a QMP error, or when QEMU cannot be
      reached or went away; "timeout TEXT".
      In the first form the answer's JSON or TEXT goes to stdout or
      stderr, and the exit status is 0 ok, 1 fail or error, 2 QEMU gone,
      3 timeout.
"""
import json
import socket
import sys
import time

FINAL = ["completed", "failed", "cancelled"]


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""
        self.events = []
        self.deadline = 0

    def connect(self):
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                self.check_time()
                time.sleep(0.1)
        self.sock = s
        self.recv()                         # the greeting
        self.cmd("qmp_capabilities")

    def check_time(self):
        if time.monotonic() > self.deadline:
            raise TimeoutError("timed out")

    def recv(self):
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("timed out")
            if not data:
                raise ConnectionError("QEMU closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self.recv()
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise QMPError("%s: %s" % (name, r["error"].get("desc", r)))
            elif "return" in r:
                return r["return"]

    def event(self, name):
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    del self.events[:i + 1]
                    return e
            self.events = []
            r = self.recv()
            if "event" in r:
                self.events.append(r)

    def poll(self, name, wanted, final=()):
        while True:
            r = self.cmd(name)
            if r.get("status") in wanted or r.get("status") in final:
                return r
            self.check_time()
            time.sleep(0.2)

    def request(self, line, timeout):
        """One request line; returns (answer word, JSON or text)."""
        words = line.split(None, 2)
        if len(words) == 3 and words[0] == "-t":
            timeout = float(words[1])
            line = words[2]
        self.deadline = time.monotonic() + timeout
        what, _, args = line.strip().partition(" ")
        rest = args.split()
        try:
            if self.sock is None:
                self.connect()
            if what == "wait-event" and len(rest) == 1:
                return "ok", self.event(rest[0])
            if what == "migrate-wait" and len(rest) <= 1:
                wanted = rest[0].split(",") if rest else ["completed"]
                r = self.poll("query-migrate", wanted, FINAL)
                return ("ok" if r["status"] in wanted else "fail"), r
            if what == "status-wait" and len(rest) == 1:
                return "ok", self.poll("query-status", rest[0].split(","))
            return "ok", self.cmd(what, json.loads(args) if args else None)
        except QMPError as e:
            return "error", str(e)
        except TimeoutError:
            return "timeout", "%s: timed out after %g s" % (what, timeout)
        except OSError as e:
            # QEMU is gone (or never came): every later request fails too.
            self.sock = False
            return "error", "%s: %s" % (what, e)
        except ValueError as e:
            return "error", "%s: bad JSON: %s" % (what, e)


def main(argv):
    timeout = 30.0
    if len(argv) > 2 and argv[0] == "-t":
        timeout = float(argv[1])
        argv = argv[2:]
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    q = QMP(argv[0])
    if argv[1:] != ["-"]:
        word, r = q.request(" ".join(argv[1:]), timeout)
        if word in ("ok", "fail"):
            print(json.dumps(r))
        else:
            print("qmp: " + r, file=sys.stderr)
        return {"ok": 0, "fail": 1, "timeout": 3}.get(
            word, 2 if q.sock is False else 1)
    for line in sys.stdin:
        if not line.strip():
            continue
        if q.sock is False:
            word, r = "error", "QEMU is gone"
        else:
            word, r = q.request(line, timeout)
        print(word, json.dumps(r) if word in ("ok", "fail") else r,
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
