#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Timestamp a QEMU serial port's bytes as they arrive (python3 stdlib only).

  serial-ts.py DIR NAME...

Listens on the Unix socket DIR/NAME.sock for every NAME (made before it
says "ready" on stdout), for QEMU's `-chardev socket,path=DIR/NAME.sock,
server=off -serial chardev:ID` to connect to. Each read is appended to
DIR/NAME.serial (the bytes, as a serial file: its size is the progress)
and a line "SECONDS BYTES" to DIR/NAME.ts, SECONDS the arrival time in
Unix time (CLOCK_REALTIME, as bash's $EPOCHREALTIME) with microseconds.
One process for many VMs: starting Python costs seconds in the lab. It
runs until killed, or until stdin closes.
"""
import os
import selectors
import socket
import sys
import time


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    d = argv[0]
    sel = selectors.DefaultSelector()
    for name in argv[1:]:
        path = os.path.join(d, name + ".sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(4)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, ("listen", name))
    sel.register(sys.stdin, selectors.EVENT_READ, ("stdin", None))
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            kind, name = key.data
            if kind == "stdin":
                if not os.read(sys.stdin.fileno(), 4096):
                    return 0
            elif kind == "listen":
                c, _ = key.fileobj.accept()
                c.setblocking(False)
                out = open(os.path.join(d, name + ".serial"), "ab",
                           buffering=0)
                ts = open(os.path.join(d, name + ".ts"), "a", buffering=1)
                sel.register(c, selectors.EVENT_READ, ("conn", (out, ts)))
            else:
                t = time.time()
                out, ts = name
                try:
                    b = key.fileobj.recv(65536)
                except OSError:
                    b = b""
                if not b:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                    continue
                out.write(b)
                ts.write("%.6f %d\n" % (t, len(b)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
