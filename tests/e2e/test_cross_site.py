"""Requests a web browser can be made to send to a listener on this machine
(docs/security.md): a page of another site posting forms or text/plain
bodies, or a DNS-rebinding name pointed at 127.0.0.1. The gateway's admin
API and the broker's APIs must refuse them, keep serving tools (curl,
requests, boto3 send no Origin), answer CORS for configured origins, and
take bearer tokens where configured."""

import os
import shutil
import subprocess
import tempfile

import pytest
import requests

from fgtest import binary, free_port, scaled, start, wait_log, wait_port
from gwtest import addr_of, backends, config, gateway, service, to_yaml, wait_until

T = scaled(10)
TOKEN = "0123456789abcdef0123456789abcdef"
EVIL = {"Origin": "http://evil.example"}


def curl_status(*args):
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", str(int(T)), *args],
                       capture_output=True, text=True, timeout=T + 5)
    return p.stdout


@pytest.fixture
def tmpdir_():
    d = tempfile.mkdtemp(prefix="fg-xsite-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_token(d, value=TOKEN, name="token"):
    path = os.path.join(d, name)
    with open(path + ".tmp", "w") as f:
        f.write(value + "\n")
    os.replace(path + ".tmp", path)
    return path


# ---- the gateway's admin API ------------------------------------------------

def test_gw_admin_refuses_forged_requests():
    with backends("a") as (a,):
        cfg = config([service("app", [addr_of(a)])], threads=1)
        with gateway(cfg) as gw:
            url = gw.admin_url("/guard/deny")
            # The request from the report, exactly: it used to answer 201
            # and deny every client.
            assert curl_status("-X", "POST", "-H", "Origin: http://evil.example", "-H", "Host: evil.example",
                               "-H", "Content-Type: text/plain", "-d", '{"cidr":"0.0.0.0/0"}', url) == "403"
            # The admin's own Host, a foreign Origin: a cross-site page.
            assert curl_status("-X", "POST", "-H", "Origin: http://evil.example", "-H", "Content-Type: text/plain",
                               "-d", '{"cidr":"0.0.0.0/0"}', url) == "403"
            r = requests.post(url, json={"cidr": "0.0.0.0/0"}, headers=EVIL, timeout=T)
            assert r.status_code == 403 and "Origin" in r.json()["error"]
            # Another port of this host is same-site, yet another origin.
            r = requests.post(url, json={"cidr": "0.0.0.0/0"}, headers={"Origin": "http://127.0.0.1:1"}, timeout=T)
            assert r.status_code == 403
            r = requests.post(url, json={"cidr": "0.0.0.0/0"}, headers={"Sec-Fetch-Site": "cross-site"}, timeout=T)
            assert r.status_code == 403
            # A browser that sent no Origin still cannot send JSON without
            # a preflight: form and text/plain bodies are refused.
            assert curl_status("-X", "POST", "-H", "Content-Type: text/plain", "-d", '{"cidr":"0.0.0.0/0"}',
                               url) == "415"
            assert curl_status("-X", "POST", "-d", '{"cidr":"0.0.0.0/0"}', url) == "415"  # curl's form type
            r = requests.post(url, data=b'{"cidr":"0.0.0.0/0"}', timeout=T)  # no Content-Type at all
            assert r.status_code == 415
            # DNS rebinding: the page's own name, now 127.0.0.1, reading.
            for path in ("/services", "/metrics", "/guard"):
                r = requests.get(gw.admin_url(path), headers={"Host": f"evil.example:{gw.admin_port}"}, timeout=T)
                assert r.status_code == 403, path
                assert "rebinding" in r.json()["error"]
            r = requests.delete(gw.admin_url("/services/app/servers/" + addr_of(a)),
                                headers={"Host": "evil.example"}, timeout=T)
            assert r.status_code == 403

            # Nothing of it happened: no deny rule, the server still listed,
            # clients still served.
            assert gw.admin("GET", "/guard").json()["deny"] == []
            assert [s["address"] for s in gw.admin("GET", "/services/app").json()["servers"]] == [addr_of(a)]
            assert requests.get(gw.url("/"), timeout=T).status_code == 200
            assert "admin: refused POST /guard/deny" in gw.log()

            # Tools and same-origin pages keep working.
            for host in (f"127.0.0.1:{gw.admin_port}", f"localhost:{gw.admin_port}", "127.0.0.1"):
                assert requests.get(gw.admin_url("/guard"), headers={"Host": host}, timeout=T).status_code == 200
            r = requests.post(url, json={"cidr": "203.0.113.0/24"}, timeout=T)
            assert r.status_code == 201, r.text
            origin = f"http://127.0.0.1:{gw.admin_port}"
            r = requests.post(gw.admin_url("/guard/allow"), json={"cidr": "198.51.100.0/24"},
                              headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"}, timeout=T)
            assert r.status_code == 201, r.text
            assert curl_status("-X", "POST", gw.admin_url("/reload")) == "200"  # no body, no type


def test_gw_admin_token_and_allowed_hosts(tmpdir_):
    tok = write_token(tmpdir_)
    auth = {"Authorization": "Bearer " + TOKEN}
    with backends("a") as (a,):
        cfg = config([service("pool", [addr_of(a)])], threads=1,
                     admin={"token_file": tok, "allowed_hosts": ["gw-admin.test"]})
        with gateway(cfg) as gw:
            url = gw.admin_url("/services/pool")
            r = requests.get(url, timeout=T)
            assert r.status_code == 401
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=T).status_code == 401
            assert requests.get(url, headers=auth, timeout=T).status_code == 200
            assert requests.get(gw.admin_url("/health"), timeout=T).status_code == 200  # probes stay open
            assert requests.get(gw.admin_url("/metrics"), timeout=T).status_code == 401
            assert requests.get(gw.admin_url("/metrics"), headers=auth, timeout=T).status_code == 200
            assert requests.post(gw.admin_url("/guard/deny"), json={"cidr": "0.0.0.0/0"},
                                 timeout=T).status_code == 401
            # A configured name passes the rebinding check; others do not.
            assert requests.get(url, headers={**auth, "Host": "GW-ADMIN.test:443"}, timeout=T).status_code == 200
            assert requests.get(url, headers={**auth, "Host": "other.test"}, timeout=T).status_code == 403

            # echo --register sends the token from its file...
            port = free_port()
            args = ["echo", "-l", str(port), "--name", "b", "--register", url]
            with start(args + ["--register-token-file", tok], port=port) as b:
                me = f"127.0.0.1:{port}"
                listed = lambda: [s["address"] for s in  # noqa: E731
                                  requests.get(url, headers=auth, timeout=T).json()["servers"]]
                wait_until(lambda: me in listed(), 5, what="registration")
                assert b.stop() == 0
            assert listed() == [addr_of(a)]
            # ... and without it is refused, clearly.
            p = subprocess.run([binary(), "echo", "-l", str(free_port()), "--register", url],
                               capture_output=True, text=True, timeout=T * 3)
            assert p.returncode == 1
            assert "status 401" in p.stderr

            # A reload reads the token file again.
            write_token(tmpdir_, "fedcba9876543210fedcba9876543210")
            assert requests.post(gw.admin_url("/reload"), headers=auth, timeout=T).status_code == 200
            assert requests.get(url, headers=auth, timeout=T).status_code == 401
            r = requests.get(url, headers={"Authorization": "Bearer fedcba9876543210fedcba9876543210"}, timeout=T)
            assert r.status_code == 200


def test_gw_admin_bad_token_file_refuses_to_start(tmpdir_):
    tok = write_token(tmpdir_, "short")
    with backends("a") as (a,):
        cfg = config([service("pool", [addr_of(a)])], admin={"token_file": tok})
        d = tempfile.mkdtemp(prefix="fg-gw-", dir=tmpdir_)
        cfg["listen"] = f"127.0.0.1:{free_port()}"
        cfg["admin"] = {"listen": f"127.0.0.1:{free_port()}", "token_file": tok}
        path = os.path.join(d, "gw.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        p = subprocess.run([binary(), "gateway", "-c", path], capture_output=True, text=True, timeout=T * 3)
        assert p.returncode != 0
        assert "admin.token_file" in p.stderr and "at least 16" in p.stderr


# ---- the broker --------------------------------------------------------------

def start_broker(datadir, config=None, admin_port=None):
    port = free_port()
    args = ["broker", "--listen", f"127.0.0.1:{port}", "--data", os.path.join(datadir, "data")]
    if config:
        path = os.path.join(datadir, "broker.yaml")
        with open(path, "w") as f:
            f.write(config)
        args += ["--config", path]
    srv = start(args, port=port)
    wait_log(srv, "listening on")
    if admin_port:
        wait_port(admin_port, proc=srv.proc)
    return srv


def form(srv, params, headers=None, method="POST"):
    h = dict(headers or {})
    if method == "GET":
        return requests.get(srv.url("/"), params=params, headers=h, timeout=T)
    h.setdefault("Content-Type", "application/x-www-form-urlencoded")
    return requests.post(srv.url("/"), data=params, headers=h, timeout=T)


def test_broker_refuses_cross_site_requests(tmpdir_):
    srv = start_broker(tmpdir_)
    try:
        v1 = srv.url("/v1")
        assert requests.put(f"{v1}/queues/jobs", json={}, timeout=T).status_code == 200
        assert requests.post(f"{v1}/queues/jobs/messages", data=b"keep me", timeout=T).status_code == 200
        qurl = srv.url("/000000000000/jobs")

        # A form on another site posting DeleteQueue: the form's Origin.
        r = form(srv, {"Action": "DeleteQueue", "QueueUrl": qurl}, EVIL)
        assert r.status_code == 403
        assert "<Code>AccessDenied</Code>" in r.text
        r = form(srv, {"Action": "DeleteQueue", "QueueUrl": qurl}, {"Origin": "null"})
        assert r.status_code == 403
        # fetch() with a text/plain body to the native API.
        r = requests.post(f"{v1}/queues/jobs/purge", data="x",
                          headers={**EVIL, "Content-Type": "text/plain"}, timeout=T)
        assert r.status_code == 403 and r.json()["code"] == "AccessDenied"
        r = requests.delete(f"{v1}/queues/jobs", headers=EVIL, timeout=T)
        assert r.status_code == 403
        # An <img src> GET: no Origin, but fetch metadata.
        r = form(srv, {"Action": "DeleteQueue", "QueueUrl": qurl}, {"Sec-Fetch-Site": "cross-site"}, method="GET")
        assert r.status_code == 403
        r = form(srv, {"Action": "DeleteQueue", "QueueUrl": qurl}, {"Sec-Fetch-Site": "same-site"}, method="GET")
        assert r.status_code == 403
        # The AWS JSON protocol from a foreign page (it would need a
        # preflight, which is refused too).
        r = requests.post(srv.url("/"), data="{}", timeout=T,
                          headers={**EVIL, "X-Amz-Target": "AmazonSQS.ListQueues",
                                   "Content-Type": "application/x-amz-json-1.0"})
        assert r.status_code == 403 and "AccessDenied" in r.text
        r = requests.options(srv.url("/"), headers={**EVIL, "Access-Control-Request-Method": "POST"}, timeout=T)
        assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers
        # SNS.
        assert form(srv, {"Action": "CreateTopic", "Name": "alerts", "Version": "2010-03-31"}).status_code == 200
        r = form(srv, {"Action": "DeleteTopic", "TopicArn": "arn:aws:sns:us-east-1:000000000000:alerts",
                       "Version": "2010-03-31"}, EVIL)
        assert r.status_code == 403 and "<Code>AuthorizationError</Code>" in r.text
        # DNS rebinding: a name that now points here, reading or writing.
        for path in ("/v1/queues", "/metrics", "/healthz"):
            r = requests.get(srv.url(path), headers={"Host": f"evil.example:{srv.port}"}, timeout=T)
            assert r.status_code == 403, path
        r = form(srv, {"Action": "PurgeQueue", "QueueUrl": qurl}, {"Host": "evil.example"})
        assert r.status_code == 403

        # Nothing happened: the queue and its message are there, the topic too.
        r = requests.get(f"{v1}/queues/jobs", timeout=T)
        assert r.status_code == 200, r.text
        r = requests.post(f"{v1}/queues/jobs/receive", timeout=T)
        assert r.status_code == 200 and "keep me" in r.text
        assert "alerts" in form(srv, {"Action": "ListTopics", "Version": "2010-03-31"}).text
        assert "broker: refused POST /" in srv.log()
        # Tools: localhost and IP hosts, same-origin pages.
        assert requests.get(srv.url("/healthz"), headers={"Host": f"localhost:{srv.port}"}, timeout=T).ok
        r = requests.get(f"{v1}/queues", timeout=T,
                         headers={"Origin": f"http://127.0.0.1:{srv.port}", "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200
    finally:
        assert srv.stop() == 0


def test_broker_cors_for_allowed_origins(tmpdir_):
    app = "http://localhost:3000"
    srv = start_broker(tmpdir_, config="broker:\n"
                                       "  allowed_hosts: [sqs.test]\n"
                                       "  cors:\n"
                                       f"    allow_origins: [\"{app}\"]\n")
    try:
        ask = "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent,amz-sdk-invocation-id"
        r = requests.options(srv.url("/"), headers={"Origin": app, "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": ask}, timeout=T)
        assert r.status_code == 200, r.text
        assert r.headers["Access-Control-Allow-Origin"] == app
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert r.headers["Access-Control-Allow-Headers"] == ask
        assert int(r.headers["Access-Control-Max-Age"]) > 0
        # Headers outside what SDKs send are not echoed.
        r = requests.options(srv.url("/v1/queues/x"), headers={"Origin": app, "Access-Control-Request-Method": "PUT",
                                                               "Access-Control-Request-Headers": "x-evil"}, timeout=T)
        assert r.status_code == 200 and "x-evil" not in r.headers["Access-Control-Allow-Headers"]
        r = requests.options(srv.url("/"), headers={"Origin": "http://localhost:3001",
                                                    "Access-Control-Request-Method": "POST"}, timeout=T)
        assert r.status_code == 403

        # The actual request, as a browser sends it.
        h = {"Origin": app, "Sec-Fetch-Site": "same-site", "Content-Type": "application/x-amz-json-1.0",
             "X-Amz-Target": "AmazonSQS.CreateQueue"}
        r = requests.post(srv.url("/"), data='{"QueueName":"web"}', headers=h, timeout=T)
        assert r.status_code == 200, r.text
        assert r.headers["Access-Control-Allow-Origin"] == app
        assert "Origin" in r.headers["Vary"]
        assert "x-amzn-RequestId" in r.headers["Access-Control-Expose-Headers"]
        r = requests.post(srv.url("/v1/queues/web/messages"), data=b"from the page",
                          headers={"Origin": app, "Content-Type": "text/plain"}, timeout=T)
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == app
        # Another origin is still refused; tools get no CORS headers.
        r = requests.post(srv.url("/v1/queues/web/purge"), headers={"Origin": "https://localhost:3000"}, timeout=T)
        assert r.status_code == 403
        r = requests.get(srv.url("/v1/queues/web"), timeout=T)
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
        assert "1" in str(r.json())  # the page's message is there
        # A configured name passes the rebinding check.
        r = requests.get(srv.url("/healthz"), headers={"Host": f"sqs.test:{srv.port}"}, timeout=T)
        assert r.status_code == 200
    finally:
        assert srv.stop() == 0


def test_broker_admin_token(tmpdir_):
    tok = write_token(tmpdir_)
    aport = free_port()
    srv = start_broker(tmpdir_, admin_port=aport,
                       config=f"broker:\n  admin:\n    listen: \"127.0.0.1:{aport}\"\n    token_file: \"{tok}\"\n")
    try:
        base = f"http://127.0.0.1:{aport}"
        wait_until(lambda: requests.get(base + "/healthz", timeout=T).status_code == 200, 5, what="admin")
        r = requests.get(base + "/queues", timeout=T)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert requests.get(base + "/queues", headers={"Authorization": "Bearer " + TOKEN}, timeout=T).ok
        assert requests.get(base + "/metrics", headers={"Authorization": "Bearer " + TOKEN}, timeout=T).ok
        r = requests.get(base + "/queues", headers={"Authorization": "Bearer " + TOKEN, "Host": "evil.example"},
                         timeout=T)
        assert r.status_code == 403
    finally:
        assert srv.stop() == 0
