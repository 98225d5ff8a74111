"""Crash test of `floodgate broker`: producers and consumers keep running
while the broker is killed with SIGKILL at random moments, ten times,
and restarted on the same data directory. A ledger of what the clients
saw is then checked:

  1. every send the broker acknowledged was delivered at least once;
  2. nothing was invented: every delivered body was sent by a producer;
  3. no message came back after its deletion was acknowledged.

For 3 the ledger keeps each delivery's ApproximateReceiveCount. A delete
with the receipt of delivery k that is acknowledged either removed the
message durably or found it already delivered again (delivery k+1 came
first, and the receipt was stale, which SQS allows: the delete succeeds
and removes nothing). Either way no delivery requested after that
acknowledgement may carry a count of k+1 or less. Receive counts may go
back after a crash (a delivery whose record was not yet durable is
forgotten and the message is delivered again: the at-least-once window);
a receipt from such a forgotten delivery still deletes, as the latest
one the broker knows of, so an acknowledged delete is never undone.
"""

import os
import random
import shutil
import signal
import tempfile
import threading
import time

import requests

from fgtest import free_port, scaled, start

KILLS = 10
PRODUCERS = 3
CONSUMERS = 3
VISIBILITY = 2
PAD = "x" * 200  # bodies large enough to roll small segments often
# Small segments, so that segments roll, compaction runs and old segments
# are dropped while the broker is being killed.
CONFIG = "broker:\n  segment_bytes: 64k\n  compact_ratio: 0.5\n"


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = set()
        self.acked = set()
        self.received = []      # (body, count, t_request)
        self.deleted = []       # (body, count, t_ack)


def start_broker(datadir, port, config):
    return start(["broker", "--listen", f"127.0.0.1:{port}", "--data", datadir, "--config", config],
                 port=port, timeout=20)


def producer(base, ledger, pid, stop):
    s = requests.Session()
    seq = 0
    while not stop.is_set():
        body = f"p{pid}-{seq}-" + PAD
        seq += 1
        with ledger.lock:
            ledger.attempted.add(body)
        try:
            r = s.post(f"{base}/v1/queues/crash/messages", data=body.encode(),
                       headers={"Content-Type": "text/plain"}, timeout=scaled(5))
            if r.status_code == 200:
                with ledger.lock:
                    ledger.acked.add(body)
        except requests.RequestException:
            s = requests.Session()
            time.sleep(0.05)


def consumer(base, ledger, stop):
    s = requests.Session()
    while not stop.is_set():
        t_req = time.monotonic()
        try:
            r = s.post(f"{base}/v1/queues/crash/receive",
                       params={"max": 10, "wait": 1, "visibility": VISIBILITY}, timeout=scaled(5))
            if r.status_code != 200:
                time.sleep(0.05)
                continue
            msgs = r.json()["messages"]
        except (requests.RequestException, ValueError):
            s = requests.Session()
            time.sleep(0.05)
            continue
        with ledger.lock:
            for m in msgs:
                ledger.received.append((m["body"], m["receive_count"], t_req))
        for m in msgs:
            try:
                d = s.delete(f"{base}/v1/queues/crash/messages/{m['receipt']}", timeout=scaled(5))
                if d.status_code == 200:
                    t_ack = time.monotonic()
                    with ledger.lock:
                        ledger.deleted.append((m["body"], m["receive_count"], t_ack))
            except requests.RequestException:
                s = requests.Session()
                break


def test_kill9_many_times_ledger_holds():
    datadir = tempfile.mkdtemp(prefix="fg-broker-crash-")
    config = datadir + ".yaml"
    with open(config, "w") as f:
        f.write(CONFIG)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ledger = Ledger()
    srv = start_broker(datadir, port, config)
    rng = random.Random(os.getpid())
    try:
        assert requests.put(f"{base}/v1/queues/crash").status_code == 200
        stop_prod, stop_cons = threading.Event(), threading.Event()
        threads = [threading.Thread(target=producer, args=(base, ledger, i, stop_prod))
                   for i in range(PRODUCERS)]
        threads += [threading.Thread(target=consumer, args=(base, ledger, stop_cons))
                    for _ in range(CONSUMERS)]
        for t in threads:
            t.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.2) * (1.5 if scaled(1) > 1 else 1))
            os.kill(srv.pid, signal.SIGKILL)
            srv.proc.wait()
            srv = start_broker(datadir, port, config)
        # Let the producers run a moment against the last broker, then
        # drain: in-flight messages come back after VISIBILITY seconds.
        time.sleep(0.5)
        stop_prod.set()
        deadline = time.monotonic() + scaled(20)
        while time.monotonic() < deadline:
            with ledger.lock:
                got = {b for b, _, _ in ledger.received}
                missing = ledger.acked - got
            q = requests.get(f"{base}/v1/queues").json()["queues"][0]
            if not missing and q["messages"] == 0 and q["in_flight"] == 0:
                break
            time.sleep(0.2)
        stop_cons.set()
        for t in threads:
            t.join(scaled(15))
        assert srv.alive(), srv.log()
    finally:
        text = requests.get(f"{base}/metrics").text if srv.alive() else ""
        srv.stop()
        shutil.rmtree(datadir, ignore_errors=True)
        os.unlink(config)
    dropped = [ln for ln in text.splitlines() if ln.startswith("floodgate_broker_store_compactions_total")]
    print("crash metrics:", dropped)

    got = {b for b, _, _ in ledger.received}
    print(f"crash ledger: {len(ledger.attempted)} sends tried, {len(ledger.acked)} acknowledged, "
          f"{len(ledger.received)} deliveries of {len(got)} bodies, {len(ledger.deleted)} deletes acknowledged")
    assert len(ledger.acked) > 100, "the producers barely ran"
    missing = ledger.acked - got
    assert not missing, f"{len(missing)} acknowledged sends never delivered, e.g. {sorted(missing)[:5]}"
    invented = got - ledger.attempted
    assert not invented, f"delivered but never sent: {sorted(invented)[:5]}"
    by_body = {}
    for body, count, t_req in ledger.received:
        by_body.setdefault(body, []).append((count, t_req))
    back = [(b, k, c) for b, k, t_ack in ledger.deleted for c, t_req in by_body.get(b, ())
            if t_req > t_ack and c <= k + 1]
    assert not back, f"delivered again after an acknowledged delete (body, k, count): {back[:5]}"
