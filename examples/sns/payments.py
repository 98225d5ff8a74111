#!/usr/bin/python3
"""A payment service stand-in: one event becomes an email, an SMS and an
analytics record, each handled by its own workers at its own pace.

    examples/sns/payments.py --endpoint http://127.0.0.1:9324 --count 100

It sets up (idempotently) on a floodgate broker, with the ordinary AWS SDK:
  - the topic "payments";
  - the queues email-jobs and sms-jobs, each with its dead-letter queue
    (email-dlq, sms-dlq: a job received 3 times without success moves
    there), and analytics (raw events);
  - subscriptions with filter policies: email gets every
    payment.succeeded, sms only those of 100 or more, analytics every
    event, raw (no envelope);
then publishes --count payment events (about one in ten a
payment.failed) at --rate per second and prints one JSON line: what it
published. Workers (worker.py) drain the queues.
"""

import argparse
import json
import random
import sys
import time

import boto3
from botocore.config import Config

ACCOUNT = "000000000000"


def clients(endpoint):
    kw = dict(region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="demo",
              aws_secret_access_key="demo", config=Config(retries={"total_max_attempts": 3}))
    return boto3.client("sns", **kw), boto3.client("sqs", **kw)


def queue(sqs, name, dlq=None):
    attrs = {"VisibilityTimeout": "5"}
    if dlq:
        attrs["RedrivePolicy"] = json.dumps({
            "deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{dlq}", "maxReceiveCount": "3"})
    sqs.create_queue(QueueName=name, Attributes=attrs)
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def setup(sns, sqs):
    topic = sns.create_topic(Name="payments", Attributes={"DisplayName": "Payments"})["TopicArn"]
    queue(sqs, "email-dlq")
    queue(sqs, "sms-dlq")
    routes = [
        (queue(sqs, "email-jobs", "email-dlq"), {"event": ["payment.succeeded"]}, False),
        (queue(sqs, "sms-jobs", "sms-dlq"),
         {"event": ["payment.succeeded"], "amount": [{"numeric": [">=", 100]}]}, False),
        (queue(sqs, "analytics"), None, True),
    ]
    for arn, policy, raw in routes:
        attrs = {"RawMessageDelivery": "true" if raw else "false"}
        if policy:
            attrs["FilterPolicy"] = json.dumps(policy)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attrs)
    return topic


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default="http://127.0.0.1:9324")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=50.0, help="events a second")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--setup-only", action="store_true")
    args = ap.parse_args()
    sns, sqs = clients(args.endpoint)
    topic = setup(sns, sqs)
    if args.setup_only:
        print(json.dumps({"topic": topic}))
        return 0
    rnd = random.Random(args.seed)
    stats = {"published": 0, "succeeded": 0, "failed": 0, "sms_eligible": 0}
    start = time.monotonic()
    for i in range(args.count):
        ok = rnd.random() >= 0.1
        amount = round(rnd.uniform(5, 400), 2)
        event = {
            "payment_id": f"pay_{args.seed}_{i:05d}",
            "amount": amount,
            "currency": "EUR",
            "customer": {"email": f"customer{i}@example.com", "phone": f"+3361234{i:04d}"},
        }
        kind = "payment.succeeded" if ok else "payment.failed"
        sns.publish(TopicArn=topic, Message=json.dumps(event), Subject=kind, MessageAttributes={
            "event": {"DataType": "String", "StringValue": kind},
            "amount": {"DataType": "Number", "StringValue": str(amount)},
            "currency": {"DataType": "String", "StringValue": "EUR"},
        })
        stats["published"] += 1
        stats["succeeded" if ok else "failed"] += 1
        if ok and amount >= 100:
            stats["sms_eligible"] += 1
        pause = start + (i + 1) / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
