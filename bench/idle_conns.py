#!/usr/bin/env python3
"""Hold N idle keep-alive connections open against an HTTP server.

usage: idle_conns.py HOST PORT N [TIMEOUT_S]

Opens N TCP connections (at most 256 connecting at a time), sends one
GET / on each, reads the whole response, and keeps the connection open.
When every connection has been answered (or TIMEOUT_S, default 60, has
passed) it prints one line "ready OK FAILED" on stdout and then waits,
holding the sockets, until SIGTERM or SIGINT.
"""
import errno
import resource
import selectors
import signal
import socket
import sys
import time

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle-conns\r\n\r\n"
MAX_CONNECTING = 256


def response_complete(data):
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            return data.endswith(b"0\r\n\r\n")
    return len(data) >= end + 4 + length


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    sel = selectors.DefaultSelector()
    state = {}  # sock -> [phase, buffer]; phase: "connect" or "read"
    held = []
    failed = 0
    started = 0
    connecting = 0
    deadline = time.monotonic() + timeout

    def fail(s):
        nonlocal failed
        sel.unregister(s)
        state.pop(s, None)
        s.close()
        failed += 1

    while len(held) + failed < n and time.monotonic() < deadline:
        while started < n and connecting < MAX_CONNECTING:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((host, port))
            started += 1
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                failed += 1
                continue
            connecting += 1
            state[s] = ["connect", b""]
            sel.register(s, selectors.EVENT_WRITE)
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            st = state.get(s)
            if st is None:
                continue
            if st[0] == "connect":
                connecting -= 1
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    fail(s)
                    continue
                try:
                    s.send(REQ)
                except OSError:
                    fail(s)
                    continue
                st[0] = "read"
                sel.modify(s, selectors.EVENT_READ)
            else:
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    fail(s)
                    continue
                if not chunk:
                    fail(s)
                    continue
                st[1] += chunk
                if response_complete(st[1]):
                    sel.unregister(s)
                    del state[s]
                    held.append(s)

    failed += len(state)
    print(f"ready {len(held)} {failed}", flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        signal.pause()
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
