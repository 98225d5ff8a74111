"""Damage to the broker's log on disk, with the real binary and the native
API: the broker refuses to start on a log it cannot trust, naming the
file and offset (or the missing segment); `floodgate broker --check`
reports the damage with a non-zero exit; `--repair` keeps every record
that verifies, sets the damaged original aside and says what it dropped;
the broker then starts and serves every intact message.

  - a byte flipped in the middle of the active segment of a stopped
    broker (a message body): everything but that message comes back;
  - the first segment deleted: the start names the missing segment; the
    repair accepts the loss and the messages of the other segments come
    back.

Neither runs beside a broker on the same directory (its lock).
"""

import glob
import os
import shutil
import subprocess
import tempfile

import requests

from fgtest import binary, free_port, scaled, start

PAD = "x" * 300


def start_broker(datadir, port, config=None):
    args = ["broker", "--listen", f"127.0.0.1:{port}", "--data", datadir]
    if config:
        args += ["--config", config]
    return start(args, port=port, timeout=20)


def run_broker(args, timeout=30):
    """Runs `floodgate broker ARGS` to its end: (exit code, output)."""
    p = subprocess.run([binary(), "broker", *args], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=scaled(timeout))
    return p.returncode, p.stdout + p.stderr


def fill(base, n):
    s = requests.Session()
    assert s.put(f"{base}/v1/queues/dmg").status_code == 200
    bodies = []
    for i in range(n):
        body = f"m{i:05d}-{PAD}"
        r = s.post(f"{base}/v1/queues/dmg/messages", data=body.encode(),
                   headers={"Content-Type": "text/plain"}, timeout=scaled(5))
        assert r.status_code == 200, r.text
        bodies.append(body)
    return bodies


def drain(base):
    """Every body the queue holds (received once each, then deleted)."""
    s = requests.Session()
    got = []
    while True:
        r = s.post(f"{base}/v1/queues/dmg/receive", params={"max": 10, "wait": 0, "visibility": 60},
                   timeout=scaled(5))
        assert r.status_code == 200, r.text
        msgs = r.json()["messages"]
        if not msgs:
            return got
        for m in msgs:
            got.append(m["body"])
            assert s.delete(f"{base}/v1/queues/dmg/messages/{m['receipt']}").status_code == 200


def segments(datadir):
    return sorted(glob.glob(os.path.join(datadir, "*.seg")))


def refused_start(datadir, port, config=None):
    args = ["--listen", f"127.0.0.1:{port}", "--data", datadir]
    if config:
        args += ["--config", config]
    return run_broker(args)


def test_flipped_byte_in_active_segment_refuse_check_repair():
    datadir = tempfile.mkdtemp(prefix="fg-broker-damage-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        srv = start_broker(datadir, port)
        try:
            bodies = fill(base, 300)
            # Not beside a running broker: the directory is locked.
            rc, out = run_broker(["--data", datadir, "--repair"])
            assert rc == 1 and "locked" in out, out
        finally:
            assert srv.stop() == 0, srv.log()
        segs = segments(datadir)
        assert len(segs) == 1
        seg = segs[0]
        name = os.path.basename(seg)
        with open(seg, "rb") as f:
            img = bytearray(f.read())
        victim = bodies[150]
        at = img.find(victim.encode())
        assert at > 0 and img.find(victim.encode(), at + 1) < 0
        off = at + 100  # inside that body, in the middle of the segment
        img[off] ^= 0x5A
        with open(seg, "wb") as f:
            f.write(img)

        # The start refuses, naming the file and the offset of the record.
        rc, out = refused_start(datadir, port)
        assert rc != 0, out
        assert name in out and "offset" in out and "intact records" in out, out
        assert "--repair" in out, out

        # --check reports it and fails; it changes nothing.
        rc, out = run_broker(["--data", datadir, "--check"])
        assert rc == 1, out
        assert "DAMAGED" in out and name in out, out
        with open(seg, "rb") as f:
            assert f.read() == bytes(img)

        # --repair keeps the rest, sets the original aside, says what it dropped.
        rc, out = run_broker(["--data", datadir, "--repair"])
        assert rc == 0, out
        assert "dropped bytes" in out and name in out and "repaired" in out, out
        aside = glob.glob(os.path.join(datadir, "damaged-*", name))
        assert len(aside) == 1, out
        with open(aside[0], "rb") as f:
            assert f.read() == bytes(img), "the original is kept as it was"
        rc, out = run_broker(["--data", datadir, "--check"])
        assert rc == 0, out

        # The broker starts and serves every intact message.
        srv = start_broker(datadir, port)
        try:
            got = drain(base)
        finally:
            srv.stop()
        want = set(bodies) - {victim}
        assert sorted(got) == sorted(want), (len(got), len(want))
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


def test_deleted_first_segment_refuse_then_repair():
    datadir = tempfile.mkdtemp(prefix="fg-broker-damage-")
    config = datadir + ".yaml"
    with open(config, "w") as f:
        f.write("broker:\n  segment_bytes: 64k\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        srv = start_broker(datadir, port, config)
        try:
            bodies = fill(base, 600)
        finally:
            assert srv.stop() == 0, srv.log()
        segs = segments(datadir)
        assert len(segs) >= 3, segs
        first = os.path.basename(segs[0])
        os.unlink(segs[0])
        rest = b"".join(open(p, "rb").read() for p in segs[1:])
        kept = {b for b in bodies if b.encode() in rest}
        assert 0 < len(kept) < len(bodies)

        rc, out = refused_start(datadir, port, config)
        assert rc != 0, out
        assert first in out and "missing" in out, out

        rc, out = run_broker(["--data", datadir, "--config", config, "--check"])
        assert rc == 1, out
        assert first in out and "MISSING" in out, out

        rc, out = run_broker(["--data", datadir, "--config", config, "--repair"])
        assert rc == 0, out
        assert first in out and "lost" in out, out

        srv = start_broker(datadir, port, config)
        try:
            got = drain(base)
        finally:
            srv.stop()
        assert sorted(got) == sorted(kept)
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
        os.unlink(config)
