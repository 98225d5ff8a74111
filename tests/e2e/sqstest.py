"""Helpers for the broker's SQS end-to-end tests (test_broker_sqs_*.py).

The tests drive the real broker with real AWS clients: Debian's boto3 1.26
(botocore 1.29) and aws CLI 2.9, both of which speak the SQS *query*
protocol, and the same clients switched onto the AWS JSON 1.0 protocol
(what current SDKs send) by a copy of their SQS model:

    d = model_dir("json")      # <d>/sqs/2012-11-05/service-2.json
    env AWS_DATA_PATH=d        # botocore and the CLI load it instead

The JSON copy sets metadata protocol/jsonVersion/targetPrefix as the
current model does and drops the query protocol's member aliases
(locationName), so requests carry "Attributes", "MessageAttributes",
"Tags" exactly like current SDKs. Both copies also gain the message move
task operations (StartMessageMoveTask, ListMessageMoveTasks,
CancelMessageMoveTask), which SQS added after botocore 1.29.

botocore 1.29 does not check the MD5 digests in SQS responses, so
md5_of_attributes() is an independent implementation of the documented
algorithm the tests check every digest with.
"""

import copy
import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
import time
import urllib.request

import fgtest

MODEL = "/usr/lib/python3/dist-packages/botocore/data/sqs/2012-11-05/service-2.json"
ACCOUNT = "000000000000"
REGION = "us-east-1"

# The message move task operations, as the current SQS model defines them.
_MOVE_OPS = {
    "StartMessageMoveTask": {
        "name": "StartMessageMoveTask", "http": {"method": "POST", "requestUri": "/"},
        "input": {"shape": "StartMessageMoveTaskRequest"},
        "output": {"shape": "StartMessageMoveTaskResult",
                   "resultWrapper": "StartMessageMoveTaskResult"},
        "errors": [{"shape": "ResourceNotFoundException"}, {"shape": "UnsupportedOperation"}],
    },
    "ListMessageMoveTasks": {
        "name": "ListMessageMoveTasks", "http": {"method": "POST", "requestUri": "/"},
        "input": {"shape": "ListMessageMoveTasksRequest"},
        "output": {"shape": "ListMessageMoveTasksResult",
                   "resultWrapper": "ListMessageMoveTasksResult"},
        "errors": [{"shape": "ResourceNotFoundException"}, {"shape": "UnsupportedOperation"}],
    },
    "CancelMessageMoveTask": {
        "name": "CancelMessageMoveTask", "http": {"method": "POST", "requestUri": "/"},
        "input": {"shape": "CancelMessageMoveTaskRequest"},
        "output": {"shape": "CancelMessageMoveTaskResult",
                   "resultWrapper": "CancelMessageMoveTaskResult"},
        "errors": [{"shape": "ResourceNotFoundException"}, {"shape": "UnsupportedOperation"}],
    },
}
_MOVE_SHAPES = {
    "Long": {"type": "long"},
    "StartMessageMoveTaskRequest": {
        "type": "structure", "required": ["SourceArn"],
        "members": {"SourceArn": {"shape": "String"}, "DestinationArn": {"shape": "String"},
                    "MaxNumberOfMessagesPerSecond": {"shape": "Integer"}}},
    "StartMessageMoveTaskResult": {"type": "structure",
                                   "members": {"TaskHandle": {"shape": "String"}}},
    "ListMessageMoveTasksRequest": {
        "type": "structure", "required": ["SourceArn"],
        "members": {"SourceArn": {"shape": "String"}, "MaxResults": {"shape": "Integer"}}},
    "ListMessageMoveTasksResult": {
        "type": "structure", "members": {"Results": {"shape": "ListMessageMoveTasksResultEntryList"}}},
    "ListMessageMoveTasksResultEntryList": {
        "type": "list", "flattened": True,
        "member": {"shape": "ListMessageMoveTasksResultEntry",
                   "locationName": "ListMessageMoveTasksResultEntry"}},
    "ListMessageMoveTasksResultEntry": {
        "type": "structure",
        "members": {"TaskHandle": {"shape": "String"}, "Status": {"shape": "String"},
                    "SourceArn": {"shape": "String"}, "DestinationArn": {"shape": "String"},
                    "MaxNumberOfMessagesPerSecond": {"shape": "Integer"},
                    "ApproximateNumberOfMessagesMoved": {"shape": "Long"},
                    "ApproximateNumberOfMessagesToMove": {"shape": "Long"},
                    "FailureReason": {"shape": "String"}, "StartedTimestamp": {"shape": "Long"}}},
    "CancelMessageMoveTaskRequest": {"type": "structure", "required": ["TaskHandle"],
                                     "members": {"TaskHandle": {"shape": "String"}}},
    "CancelMessageMoveTaskResult": {
        "type": "structure", "members": {"ApproximateNumberOfMessagesMoved": {"shape": "Long"}}},
    "ResourceNotFoundException": {
        "type": "structure", "members": {}, "exception": True,
        "error": {"code": "ResourceNotFoundException", "httpStatusCode": 404, "senderFault": True}},
}


def model_dir(protocol):
    """A temporary AWS_DATA_PATH directory holding the SQS model for
    protocol "query" or "json" (caller removes it: shutil.rmtree)."""
    with open(MODEL) as f:
        m = json.load(f)
    m["operations"].update(copy.deepcopy(_MOVE_OPS))
    m["shapes"].update(copy.deepcopy(_MOVE_SHAPES))
    if protocol == "json":
        m["metadata"].update({"protocol": "json", "jsonVersion": "1.0",
                              "targetPrefix": "AmazonSQS"})
        for shape in m["shapes"].values():
            shape.pop("locationName", None)
            for member in shape.get("members", {}).values():
                member.pop("locationName", None)
    d = tempfile.mkdtemp(prefix="fg-sqs-model-")
    os.makedirs(os.path.join(d, "sqs", "2012-11-05"))
    with open(os.path.join(d, "sqs", "2012-11-05", "service-2.json"), "w") as f:
        json.dump(m, f)
    return d


class Broker:
    """A broker on a free loopback port with a temporary data directory."""

    def __init__(self, config=None):
        self.port = fgtest.free_port()
        self.data = tempfile.mkdtemp(prefix="fg-broker-")
        args = ["broker", "--listen", f"127.0.0.1:{self.port}", "--data", self.data]
        if config is not None:
            path = os.path.join(self.data, "..", os.path.basename(self.data) + ".yaml")
            self.config_path = os.path.abspath(path)
            with open(self.config_path, "w") as f:
                f.write(config)
            args += ["--config", self.config_path]
        self.srv = fgtest.start(args, port=self.port)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def queue_url(self, name):
        return f"{self.endpoint}/{ACCOUNT}/{name}"

    def log(self):
        return self.srv.log()

    def long_polls(self):
        """Receives parked in the broker now (its /metrics gauge): a test
        sends once the receive it wants to wake is waiting, however long
        the client took to get there."""
        with urllib.request.urlopen(self.endpoint + "/metrics", timeout=fgtest.scaled(5)) as r:
            text = r.read().decode()
        m = re.search(r"^floodgate_broker_long_polls (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def wait_long_polls(self, n, timeout=30):
        """Waits until at least n receives are parked."""
        deadline = time.monotonic() + fgtest.scaled(timeout)
        while self.long_polls() < n:
            assert time.monotonic() < deadline, f"fewer than {n} receives waiting"
            time.sleep(0.02)

    def stop(self):
        rc = self.srv.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        if getattr(self, "config_path", None):
            try:
                os.unlink(self.config_path)
            except OSError:
                pass
        return rc


def boto3_client(endpoint, data_path, key="AKIDEXAMPLE", secret="secret"):
    """A boto3 SQS client on the model in data_path (see model_dir), with no
    retries (a failure shows at once) and timeouts that allow 20 s polls."""
    import boto3
    import botocore.config
    import botocore.session

    bs = botocore.session.get_session()
    bs.set_config_variable("data_path", data_path)
    session = boto3.session.Session(botocore_session=bs)
    cfg = botocore.config.Config(retries={"mode": "standard", "max_attempts": 1},
                                 connect_timeout=5, read_timeout=fgtest.scaled(40))
    return session.client("sqs", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)


def _lp(b):
    return struct.pack(">I", len(b)) + b


def md5_of_attributes(attrs):
    """MD5OfMessageAttributes as SQS documents it: attributes sorted by
    name; name, data type and value each with a 4-byte big-endian length;
    a transport byte 1 (StringValue) or 2 (BinaryValue) before the value.
    None when there are no attributes."""
    if not attrs:
        return None
    h = hashlib.md5()
    for name in sorted(attrs):
        a = attrs[name]
        h.update(_lp(name.encode()))
        h.update(_lp(a["DataType"].encode()))
        if "StringValue" in a:
            h.update(b"\x01" + _lp(a["StringValue"].encode()))
        else:
            v = a["BinaryValue"]
            h.update(b"\x02" + _lp(v if isinstance(v, bytes) else v.encode()))
    return h.hexdigest()


def md5_of_body(body):
    return hashlib.md5(body.encode()).hexdigest()


def error_code(exc):
    """The error code of a botocore ClientError."""
    return exc.response.get("Error", {}).get("Code")
