#!/usr/bin/python3
"""An email or SMS worker for the payments example: it drains its queue
with long polling, never sends faster than its provider allows, and lets
the dead-letter queue take the jobs it cannot do.

    examples/sns/worker.py --channel email --rate 10
    examples/sns/worker.py --channel sms --rate 2 --poison 7

  --channel    email (queue email-jobs) or sms (queue sms-jobs)
  --rate       sends a second at most (a token bucket: the provider's limit)
  --poison N   payments whose number is a multiple of N always fail (a bad
               address, say): after 3 receives the queue moves them to its
               dead-letter queue (email-dlq / sms-dlq), where --dlq reads them
  --idle-exit  stop after this many seconds without work (0: run forever)

A job that fails is not deleted: it comes back after a short visibility
timeout (set to 1 s here, so retries are quick) and its receive count
grows until the queue's redrive policy moves it. On exit the worker prints
one JSON line: what it sent, what failed, and the dead letters it found.
"""

import argparse
import json
import sys
import time

import boto3
from botocore.config import Config


class Bucket:
    """At most rate sends a second, evenly spaced (no bursts)."""

    def __init__(self, rate):
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    def take(self):
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
        self.next = max(self.next, now) + self.interval


def deliver(channel, job, poison):
    """Stands in for the email or SMS provider. Returns False on failure."""
    number = int(job["payment_id"].rsplit("_", 1)[1])
    if poison and number % poison == 0:
        return False
    to = job["customer"]["email" if channel == "email" else "phone"]
    print(f"{channel}: payment {job['payment_id']} of {job['amount']} {job['currency']} -> {to}",
          flush=True)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default="http://127.0.0.1:9324")
    ap.add_argument("--channel", choices=["email", "sms"], required=True)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--poison", type=int, default=0)
    ap.add_argument("--idle-exit", type=float, default=0.0)
    ap.add_argument("--wait", type=int, default=20, help="long-poll seconds")
    args = ap.parse_args()
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=args.endpoint,
                       aws_access_key_id="demo", aws_secret_access_key="demo",
                       config=Config(retries={"total_max_attempts": 3}, read_timeout=args.wait + 10))
    jobs = sqs.get_queue_url(QueueName=f"{args.channel}-jobs")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=f"{args.channel}-dlq")["QueueUrl"]
    bucket = Bucket(args.rate)
    stats = {"channel": args.channel, "sent": 0, "failed_attempts": 0, "dead_letters": [],
             "first_send": None, "last_send": None}
    idle_since = time.monotonic()
    wait = args.wait if not args.idle_exit else min(args.wait, max(1, int(args.idle_exit)))
    while True:
        r = sqs.receive_message(QueueUrl=jobs, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                AttributeNames=["ApproximateReceiveCount"])
        msgs = r.get("Messages", [])
        if not msgs:
            # Anything the queue gave up on is in the dead-letter queue.
            for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
                job = json.loads(json.loads(m["Body"])["Message"])
                stats["dead_letters"].append(job["payment_id"])
                print(f"{args.channel}: dead letter {job['payment_id']}", flush=True)
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
            if args.idle_exit and time.monotonic() - idle_since > args.idle_exit:
                break
            continue
        idle_since = time.monotonic()
        for m in msgs:
            job = json.loads(json.loads(m["Body"])["Message"])  # the SNS envelope, then the event
            bucket.take()
            if deliver(args.channel, job, args.poison):
                now = time.time()
                stats["first_send"] = stats["first_send"] or now
                stats["last_send"] = now
                stats["sent"] += 1
                sqs.delete_message(QueueUrl=jobs, ReceiptHandle=m["ReceiptHandle"])
            else:
                stats["failed_attempts"] += 1
                sqs.change_message_visibility(QueueUrl=jobs, ReceiptHandle=m["ReceiptHandle"],
                                              VisibilityTimeout=1)
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
