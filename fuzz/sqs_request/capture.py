#!/usr/bin/python3
"""Captures the SQS requests that real clients send, as raw HTTP bytes.

Runs a tiny HTTP listener on 127.0.0.1 that records every request (head
and body, exactly as received) into OUTDIR/<nn>-<proto>-<Action>.http and
answers with an empty result in the right protocol, then drives Debian's
boto3 (AWS query protocol), boto3 on a JSON 1.0 copy of its model (what
current SDKs send) and the aws CLI through every SQS action. The files are
the seed corpus of fuzz/sqs_request and the captured requests the unit
tests decode.

    /usr/bin/python3 fuzz/sqs_request/capture.py OUTDIR [C_HEADER]

With C_HEADER, also writes the captured requests as a C array (name, raw
bytes) for the unit tests (tests/unit/broker/test_sqs_captured.h).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading

MODEL = "/usr/lib/python3/dist-packages/botocore/data/sqs/2012-11-05/service-2.json"


class Listener(threading.Thread):
    def __init__(self, outdir):
        super().__init__(daemon=True)
        self.outdir = outdir
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.n = 0
        self.tag = "x"

    def run(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                more = c.recv(65536)
                if not more:
                    c.close()
                    return
                data += more
            head, _, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            n = int(m.group(1)) if m else 0
            while len(rest) < n:
                rest += c.recv(65536)
            body, data = rest[:n], rest[n:]
            raw = head + b"\r\n\r\n" + body
            t = re.search(rb"(?i)\r\nx-amz-target:\s*AmazonSQS\.(\w+)", head)
            if t:
                action, proto = t.group(1).decode(), "json"
            else:
                a = re.search(rb"(?:^|&)Action=(\w+)", body)
                action, proto = (a.group(1).decode() if a else "none"), "query"
            self.n += 1
            name = "%02d-%s-%s-%s.http" % (self.n, self.tag, proto, action)
            with open(os.path.join(self.outdir, name), "wb") as f:
                f.write(raw)
            if proto == "json":
                out = b"{}"
                ctype = b"application/x-amz-json-1.0"
            else:
                out = (
                    "<{a}Response><{a}Result></{a}Result><ResponseMetadata>"
                    "<RequestId>x</RequestId></ResponseMetadata></{a}Response>"
                ).format(a=action).encode()
                ctype = b"text/xml"
            c.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype
                + b"\r\nContent-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out
            )


def model(protocol):
    """The SQS model botocore 1.29 ships, with the message move task
    operations added, for protocol "query" or "json" (tests/e2e/sqstest.py
    builds it; the JSON copy is what current SDKs use)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "tests", "e2e"))
    import sqstest

    return sqstest.model_dir(protocol)


def drive_boto3(port):
    import boto3

    # A fresh session per run: the model search path (AWS_DATA_PATH) is
    # read when a session's loader is made.
    c = boto3.session.Session().client(
        "sqs", endpoint_url="http://127.0.0.1:%d" % port, region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
    )
    q = "http://127.0.0.1:%d/000000000000/q1" % port
    c.create_queue(QueueName="q1")
    c.create_queue(
        QueueName="f1.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true",
                    "VisibilityTimeout": "45"},
        tags={"team": "a", "env": "dev"},
    )
    c.list_queues()
    c.list_queues(QueueNamePrefix="q", MaxResults=5, NextToken="tok")
    c.get_queue_url(QueueName="q1", QueueOwnerAWSAccountId="000000000000")
    c.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])
    c.get_queue_attributes(QueueUrl=q, AttributeNames=["VisibilityTimeout", "DelaySeconds"])
    c.set_queue_attributes(QueueUrl=q, Attributes={
        "DelaySeconds": "2",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq",
                                     "maxReceiveCount": "3"}),
    })
    c.send_message(QueueUrl=q, MessageBody="hello & <world> \"q\" 'a' é ✓")
    c.send_message(
        QueueUrl=q, MessageBody="with attrs", DelaySeconds=5,
        MessageAttributes={
            "s": {"DataType": "String", "StringValue": "v1"},
            "n": {"DataType": "Number.int", "StringValue": "42"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        },
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String",
                                                    "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}},
    )
    c.send_message(QueueUrl=q.replace("q1", "f1.fifo"), MessageBody="fifo",
                   MessageGroupId="g1", MessageDeduplicationId="d1")
    c.send_message_batch(QueueUrl=q, Entries=[
        {"Id": "a", "MessageBody": "one"},
        {"Id": "b", "MessageBody": "two", "DelaySeconds": 1,
         "MessageAttributes": {"k": {"DataType": "String", "StringValue": "x"}}},
        {"Id": "c", "MessageBody": "three", "MessageGroupId": "g", "MessageDeduplicationId": "dd"},
    ])
    c.receive_message(QueueUrl=q)
    c.receive_message(QueueUrl=q, AttributeNames=["All"], MessageAttributeNames=["All"],
                      MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=1,
                      ReceiveRequestAttemptId="att1")
    c.delete_message(QueueUrl=q, ReceiptHandle="rh+/=1")
    c.delete_message_batch(QueueUrl=q, Entries=[{"Id": "a", "ReceiptHandle": "rh1"},
                                                {"Id": "b", "ReceiptHandle": "rh2"}])
    c.change_message_visibility(QueueUrl=q, ReceiptHandle="rh1", VisibilityTimeout=0)
    c.change_message_visibility_batch(QueueUrl=q, Entries=[
        {"Id": "a", "ReceiptHandle": "rh1", "VisibilityTimeout": 10},
        {"Id": "b", "ReceiptHandle": "rh2", "VisibilityTimeout": 20},
    ])
    c.list_dead_letter_source_queues(QueueUrl=q, MaxResults=10)
    c.tag_queue(QueueUrl=q, Tags={"a": "1", "b": "2"})
    c.untag_queue(QueueUrl=q, TagKeys=["a", "b"])
    c.list_queue_tags(QueueUrl=q)
    c.add_permission(QueueUrl=q, Label="l", AWSAccountIds=["111122223333"],
                     Actions=["SendMessage", "ReceiveMessage"])
    c.remove_permission(QueueUrl=q, Label="l")
    c.purge_queue(QueueUrl=q)
    c.delete_queue(QueueUrl=q)
    arn = "arn:aws:sqs:us-east-1:000000000000:dlq"
    c.start_message_move_task(SourceArn=arn, DestinationArn=arn.replace("dlq", "q1"),
                              MaxNumberOfMessagesPerSecond=50)
    c.list_message_move_tasks(SourceArn=arn, MaxResults=5)
    c.cancel_message_move_task(TaskHandle="eyJ0YXNrIjoxfQ==")


def drive_cli(port):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    q = "http://127.0.0.1:%d/000000000000/q1" % port
    base = ["/usr/bin/aws", "--endpoint-url", "http://127.0.0.1:%d" % port, "sqs"]
    for args in (
        ["create-queue", "--queue-name", "q1", "--attributes", "DelaySeconds=1"],
        ["list-queues"],
        ["get-queue-url", "--queue-name", "q1"],
        ["send-message", "--queue-url", q, "--message-body", "cli body",
         "--message-attributes", '{"a":{"DataType":"String","StringValue":"b"}}'],
        ["receive-message", "--queue-url", q, "--wait-time-seconds", "2",
         "--max-number-of-messages", "10", "--attribute-names", "All",
         "--message-attribute-names", "All"],
        ["delete-message", "--queue-url", q, "--receipt-handle", "rh"],
        ["purge-queue", "--queue-url", q],
    ):
        subprocess.run(base + args, env=env, check=False, capture_output=True, timeout=60)


def c_literal(raw):
    out, line = [], ""
    for b in raw:
        ch = chr(b)
        if ch == "\\" or ch == '"':
            piece = "\\" + ch
        elif ch == "\r":
            piece = "\\r"
        elif ch == "\n":
            piece = "\\n"
        elif 32 <= b < 127 and ch != "?":
            piece = ch
        else:
            piece = '\\%03o' % b
        line += piece
        if ch == "\n" or len(line) > 90:
            out.append('"%s"' % line)
            line = ""
    if line:
        out.append('"%s"' % line)
    return "\n        ".join(out) if out else '""'


def write_header(outdir, path):
    names = sorted(os.listdir(outdir))
    with open(path, "w") as f:
        f.write("/* Requests captured from Debian's boto3 1.26 (AWS query protocol), the\n"
                " * aws CLI 2.9 (query) and boto3 on a JSON 1.0 copy of its model (what\n"
                " * current SDKs send), by fuzz/sqs_request/capture.py. Signed with the\n"
                " * key pair AKIDEXAMPLE / secret. Generated: do not edit. */\n")
        f.write("struct captured { const char *name; const char *raw; size_t len; };\n\n")
        f.write("static const struct captured CAPTURED[] = {\n")
        for n in names:
            raw = open(os.path.join(outdir, n), "rb").read()
            f.write('    { "%s",\n        %s, %d },\n' % (n[:-5], c_literal(raw), len(raw)))
        f.write("};\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    lst = Listener(out)
    lst.start()
    for tag, protocol, drive in (("boto3", "query", drive_boto3), ("cli", "query", drive_cli),
                                 ("json", "json", drive_boto3)):
        d = model(protocol)
        try:
            os.environ["AWS_DATA_PATH"] = d
            lst.tag = tag
            drive(lst.port)
        finally:
            shutil.rmtree(d)
    if len(sys.argv) > 2:
        write_header(out, sys.argv[2])


if __name__ == "__main__":
    main()
