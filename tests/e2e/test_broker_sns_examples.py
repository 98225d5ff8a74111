"""The payments example (examples/sns) against the real broker: the
payment service stand-in publishes, the email and SMS workers drain their
queues with long polling at their rate limits, and the SMS worker's
undeliverable jobs end in its dead-letter queue."""

import json
import os
import shutil
import subprocess
import tempfile
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from fgtest import free_port, scaled, start

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples", "sns")
PY = "/usr/bin/python3"


@pytest.fixture
def broker():
    d = tempfile.mkdtemp(prefix="fg-sns-ex-")
    port = free_port()
    srv = start(["broker", "--listen", f"127.0.0.1:{port}", "--data", d], port=port)
    deadline = time.monotonic() + scaled(15)
    while "listening on" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.02)
    try:
        boto3.client("sns", region_name="us-east-1", endpoint_url=srv.url(""), aws_access_key_id="x",
                     aws_secret_access_key="y").list_topics()
    except ClientError:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
        raise
    yield srv
    srv.stop()
    shutil.rmtree(d, ignore_errors=True)


def run(*args, timeout=120):
    r = subprocess.run([PY, *args], capture_output=True, text=True, timeout=scaled(timeout))
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_payments_email_and_sms_workers(broker):
    ep = broker.url("").rstrip("/")
    run(os.path.join(EXAMPLES, "payments.py"), "--endpoint", ep, "--setup-only")
    workers = [
        subprocess.Popen([PY, os.path.join(EXAMPLES, "worker.py"), "--endpoint", ep, "--channel", "email",
                          "--rate", "20", "--idle-exit", str(scaled(3))], stdout=subprocess.PIPE, text=True),
        subprocess.Popen([PY, os.path.join(EXAMPLES, "worker.py"), "--endpoint", ep, "--channel", "sms",
                          "--rate", "10", "--poison", "7", "--idle-exit", str(scaled(6))],
                         stdout=subprocess.PIPE, text=True),
    ]
    try:
        published = json.loads(run(os.path.join(EXAMPLES, "payments.py"), "--endpoint", ep,
                                   "--count", "60", "--rate", "100").strip().splitlines()[-1])
        outs = [w.communicate(timeout=scaled(120))[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    email, sms = (json.loads(o.strip().splitlines()[-1]) for o in outs)
    assert published["published"] == 60
    assert email["sent"] == published["succeeded"] and email["dead_letters"] == []
    # Every SMS-eligible payment is either sent or, when its number is a
    # multiple of 7, in the dead-letter queue after three receives.
    assert sms["sent"] + len(sms["dead_letters"]) == published["sms_eligible"]
    assert sms["dead_letters"], "some jobs were poison"
    assert all(int(p.rsplit("_", 1)[1]) % 7 == 0 for p in sms["dead_letters"])
    assert sms["failed_attempts"] == 3 * len(sms["dead_letters"])
    # The workers kept to their rate limits.
    for stats, rate in ((email, 20), (sms, 10)):
        if stats["sent"] > 5:
            assert (stats["sent"] - 1) / (stats["last_send"] - stats["first_send"]) <= rate * 1.1
