"""SIGTERM with connections still in the listener's accept queue: they
were accepted by the kernel, so the gateway serves them (and closes them
after their response) instead of letting the close of the listener reset
them."""

import os
import signal
import socket
import time

from fgtest import scaled
from gwtest import backends, config, gateway, service


def test_connections_queued_at_sigterm_are_served():
    with backends("a") as (a,):
        with gateway(config([service("app", [a])], threads=1, timeouts={"drain": "5s"}),
                     check_exit=False) as gw:
            pid = gw.proc.pid
            os.kill(pid, signal.SIGSTOP)
            try:
                socks = []
                for _ in range(20):  # handshakes completed by the kernel, not accepted yet
                    s = socket.create_connection(("127.0.0.1", gw.port), timeout=scaled(5))
                    s.sendall(b"GET /q HTTP/1.1\r\nHost: t\r\n\r\n")
                    socks.append(s)
                os.kill(pid, signal.SIGTERM)
            finally:
                os.kill(pid, signal.SIGCONT)
            answers = []
            for s in socks:
                s.settimeout(scaled(5))
                data = b""
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError as e:
                    data = repr(e).encode()
                s.close()
                answers.append(data)
            bad = [(i, d[:80]) for i, d in enumerate(answers) if not d.startswith(b"HTTP/1.1 200")]
            assert not bad, (bad, gw.log()[-3000:])
            # (Connections served before the worker saw SIGTERM answer keep-alive
            # and are closed as idle right after; the rest say Connection: close.)
            assert gw.proc.wait(timeout=scaled(10)) == 0, gw.log()
