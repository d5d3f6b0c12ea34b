"""Publishing to S3 over real HTTP (moto server + a fault-injecting proxy) and to file://;
`i2i publish --dry-run` and `--verify` against both."""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import logging
import os
import posixpath
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from PIL import Image

import i2i.targets.s3
from i2i import I2IError
from i2i.cli import main
from i2i.config import CONFIG_SCHEMA, load_yaml
from i2i.core.files import write_bytes, write_json
from i2i.stages.audit.keys import key_pattern
from i2i.stages.gallery.upload import DEFAULT_PAGE_CACHE_CONTROL, site_files, upload_site
from i2i.stages.publish import DEFAULT_CACHE_CONTROL, object_key, publish, publish_to_marker
from i2i.targets import BreakerOpen, Unreachable, target_for
from i2i.targets.breaker import THRESHOLD, Breaker, reset
from i2i.targets.s3 import S3Options, clear_s3_clients, explain, s3_client

from conftest import copy_workflow, planned, snakemake

moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")

SECRET = "i2iSECRETneverLOGGED0123456789"
ACL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessControlListNotSupported</Code>'
    b"<Message>The bucket does not allow ACLs</Message><RequestId>TEST</RequestId>"
    b"<HostId>TEST</HostId></Error>"
)
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>TEST</RequestId>"
    b"<HostId>TEST</HostId></Error>"
)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect"}
BUCKETS = itertools.count()


class FaultProxy(ThreadingHTTPServer):
    """An HTTP proxy on 127.0.0.1 in front of moto that logs requests and injects faults."""

    daemon_threads = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.drop_puts = 0
        self.slow_down = 0
        self.slowed = 0
        self.acl_disabled: set[str] = set()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def count(self, method: str, fragment: str = "") -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and fragment in p)


class ProxyHandler(BaseHTTPRequestHandler):
    """Forward one request upstream, or drop it mid-body, or answer with an S3 error."""

    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self.forward()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def forward(self) -> None:
        proxy = self.server
        length = int(self.headers.get("Content-Length") or 0)
        with proxy.lock:
            proxy.requests.append((self.command, self.path))
            drop = self.command == "PUT" and proxy.drop_puts > 0
            proxy.drop_puts -= drop
        if drop:
            self.rfile.read(length // 2)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else None
        with proxy.lock:
            slow = proxy.slow_down > 0
            proxy.slow_down -= slow
            proxy.slowed += slow
        if slow:
            self.reply(503, [("Content-Type", "application/xml")], SLOW_DOWN)
            return
        bucket = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        if self.command == "PUT" and "x-amz-acl" in self.headers and bucket in proxy.acl_disabled:
            self.reply(400, [("Content-Type", "application/xml")], ACL_ERROR)
            return
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        if self.command == "HEAD":
            kept.append(("Content-Length", response.getheader("Content-Length") or "0"))
        self.reply(response.status, kept, data)

    def reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.connections: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for connection in self.connections:
            connection.close()
        self.socket.close()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Test credentials in the environment only; no profile files, no instance metadata;
    no client cached by an earlier test (it would hold that test's credentials)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAI2ITEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clear_s3_clients()
    yield
    clear_s3_clients()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    host, port = moto_url.removeprefix("http://").split(":")
    server = FaultProxy((host, int(port)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()


@pytest.fixture
def s3(moto_url: str, aws_env: None) -> Any:
    """A client straight to moto (not through the proxy), to set up and read back."""
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture(autouse=True)
def fresh_proxy(request: pytest.FixtureRequest) -> None:
    """Each test starts with an empty request log and no faults armed."""
    if "proxy" in request.fixturenames:
        proxy: FaultProxy = request.getfixturevalue("proxy")
        with proxy.lock:
            proxy.requests.clear()
            proxy.drop_puts = 0
            proxy.slow_down = proxy.slowed = 0


@pytest.fixture
def bucket(s3: Any, proxy: FaultProxy) -> str:
    name = f"i2i-test-{next(BUCKETS)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "final.webp"
    Image.effect_noise((96, 64), 40).convert("RGB").save(path, "WEBP", quality=90)
    return path


def settings(proxy: FaultProxy, bucket: str, **extra: Any) -> dict[str, Any]:
    return {"target": f"s3://{bucket}/site/v1", "endpoint_url": proxy.url, **extra}


FAST = {"max_attempts": 3}
ALBUM, PHOTO, STYLE = "Côte d'Azur & Paris", "café crème", "oil_paint"
KEY = f"site/v1/{ALBUM}/{PHOTO}_{STYLE}.webp"


def test_upload_sets_headers_and_metadata(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    marker = publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket))
    head = s3.head_object(Bucket=bucket, Key=KEY)
    assert head["ContentType"] == "image/webp"
    assert head["CacheControl"] == DEFAULT_CACHE_CONTROL
    assert head["Metadata"]["sha256"] == marker["sha256"]
    assert head["ContentLength"] == image.stat().st_size == marker["size"]
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == image.read_bytes()
    assert marker["uploaded"] is True
    assert marker["key"] == KEY
    assert marker["etag"] == head["ETag"].strip('"')
    assert marker["url"].startswith(f"{proxy.url}/{bucket}/site/v1/C%C3%B4te%20d%27Azur")
    assert proxy.count("PUT") == 1
    assert SECRET not in caplog.text
    assert SECRET not in repr(marker)


def test_unchanged_file_is_not_uploaded_again(proxy: FaultProxy, bucket: str, image: Path) -> None:
    first = publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket))
    second = publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket))
    assert (first["uploaded"], second["uploaded"]) == (True, False)
    assert second["etag"] == first["etag"]
    assert proxy.count("PUT") == 1
    assert proxy.count("HEAD") == 3
    changed = publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket, cache_control="no-cache"))
    assert changed["uploaded"] is True
    assert proxy.count("PUT") == 2


def test_changed_content_is_uploaded(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, tmp_path: Path
) -> None:
    publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket))
    other = tmp_path / "other.webp"
    Image.new("RGB", (32, 32), "red").save(other, "WEBP")
    marker = publish(other, ALBUM, PHOTO, STYLE, settings(proxy, bucket))
    assert marker["uploaded"] is True
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == other.read_bytes()


def test_dropped_connection_is_retried_and_marker_follows_success(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, tmp_path: Path
) -> None:
    proxy.drop_puts = 1
    marker_path = tmp_path / "published" / "marker.json"
    record = publish_to_marker(
        image, marker_path, ALBUM, PHOTO, STYLE, settings(proxy, bucket), overrides=FAST
    )
    assert proxy.count("PUT") == 2
    assert marker_path.is_file()
    assert record["uploaded"] is True
    assert s3.head_object(Bucket=bucket, Key=KEY)["Metadata"]["sha256"] == record["sha256"]


def test_a_marker_written_again_for_an_unchanged_copy_has_the_same_bytes(
    proxy: FaultProxy, bucket: str, image: Path, tmp_path: Path
) -> None:
    for config in ({"target": f"file://{tmp_path / 'site'}"}, settings(proxy, bucket)):
        marker_path = tmp_path / "marker.json"
        first = publish_to_marker(image, marker_path, ALBUM, PHOTO, STYLE, config)
        written = marker_path.read_bytes()
        time.sleep(1.1)
        second = publish_to_marker(image, marker_path, ALBUM, PHOTO, STYLE, config)
        assert (first["uploaded"], second["uploaded"]) == (True, False)
        assert marker_path.read_bytes() == written
        assert "uploaded" not in json.loads(written) and json.loads(written)["time"]


def test_no_marker_when_the_upload_keeps_failing(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, tmp_path: Path
) -> None:
    proxy.drop_puts = 100
    marker_path = tmp_path / "marker.json"
    with pytest.raises(I2IError, match="failed after retries"):
        publish_to_marker(
            image, marker_path, ALBUM, PHOTO, STYLE, settings(proxy, bucket), overrides=FAST
        )
    assert proxy.count("PUT") == FAST["max_attempts"]
    assert not marker_path.exists()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_missing_bucket_is_a_clear_error(proxy: FaultProxy, image: Path, tmp_path: Path) -> None:
    marker_path = tmp_path / "marker.json"
    with pytest.raises(I2IError, match=f"bucket no-such-bucket does not exist at {proxy.url}"):
        publish_to_marker(
            image, marker_path, ALBUM, PHOTO, STYLE, settings(proxy, "no-such-bucket")
        )
    assert not marker_path.exists()


def test_acl_is_applied(s3: Any, proxy: FaultProxy, bucket: str, image: Path) -> None:
    publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket, acl="public-read"))
    grants = s3.get_object_acl(Bucket=bucket, Key=KEY)["Grants"]
    assert any(
        g["Grantee"].get("URI", "").endswith("/global/AllUsers") and g["Permission"] == "READ"
        for g in grants
    )


def test_acl_disabled_bucket_is_explained(proxy: FaultProxy, bucket: str, image: Path) -> None:
    proxy.acl_disabled.add(bucket)
    with pytest.raises(I2IError, match="has ACLs disabled") as info:
        publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket, acl="public-read"))
    assert "bucket policy" in str(info.value)
    marker = publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket))
    assert marker["uploaded"] is True


def test_explain_translates_client_errors() -> None:
    def error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutObject")

    endpoint = "https://s3.eu-west-1.amazonaws.com"
    plain, acl = S3Options(), S3Options(acl="public-read")
    assert "ACLs disabled" in str(
        explain(error("AccessControlListNotSupported"), "b", "k", endpoint, acl)
    )
    assert str(explain(error("NoSuchBucket"), "b", "k", endpoint, plain)) == (
        f"bucket b does not exist at {endpoint}"
    )
    assert "access denied" in str(explain(error("AccessDenied"), "b", "k", endpoint, plain))
    assert "credential chain" in str(
        explain(error("InvalidAccessKeyId"), "b", "k", endpoint, plain)
    )
    multiline = ClientError({"Error": {"Code": "Odd", "Message": "a\nb"}}, "PutObject")
    assert "\n" not in str(explain(multiline, "b", "k", endpoint, plain))


def test_missing_credentials_name_the_aws_chain(
    monkeypatch: pytest.MonkeyPatch, proxy: FaultProxy, bucket: str, image: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(I2IError, match="standard AWS credential chain"):
        publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket))
    assert proxy.requests == []


def test_credentials_in_endpoint_url_are_refused(proxy: FaultProxy, image: Path) -> None:
    config = {"target": "s3://b/p", "endpoint_url": f"http://user:{SECRET}@127.0.0.1:9"}
    with pytest.raises(I2IError, match="contains credentials") as info:
        publish(image, ALBUM, PHOTO, STYLE, config)
    assert SECRET not in str(info.value)


def test_large_file_uses_multipart(s3: Any, proxy: FaultProxy, bucket: str, tmp_path: Path) -> None:
    big = tmp_path / "big.webp"
    big.write_bytes(os.urandom(11 * (1 << 20)))
    sizes = {"multipart_threshold": 5 << 20, "multipart_chunksize": 5 << 20}
    marker = publish(big, ALBUM, PHOTO, STYLE, settings(proxy, bucket), overrides=sizes)
    assert proxy.count("PUT", "partNumber=") == 3
    assert marker["etag"].endswith("-3")
    head = s3.head_object(Bucket=bucket, Key=KEY)
    assert head["Metadata"]["sha256"] == marker["sha256"]
    assert head["ContentLength"] == big.stat().st_size


def test_file_target_copies_once(tmp_path: Path, image: Path) -> None:
    config = {"target": f"file://{tmp_path / 'site'}"}
    first = publish(image, ALBUM, PHOTO, STYLE, config)
    second = publish(image, ALBUM, PHOTO, STYLE, config)
    assert (first["uploaded"], second["uploaded"]) == (True, False)
    copy = tmp_path / "site" / ALBUM / f"{PHOTO}_{STYLE}.webp"
    assert copy.read_bytes() == image.read_bytes()


def test_targets_and_keys() -> None:
    assert target_for("s3://bucket/a/b/").prefix == "a/b"
    assert target_for("file://results/gallery").folder == "results/gallery"
    for bad in ("http://x", "s3://", "s3:///prefix", "results"):
        with pytest.raises(I2IError):
            target_for(bad)
    assert object_key("{prefix}/{album}/{photo}_{style}.webp", "", "A", "p", "s") == "A/p_s.webp"
    with pytest.raises(I2IError, match="unsafe"):
        object_key("{album}/{photo}.webp", "", "..", "p", "s")
    with pytest.raises(I2IError, match="key_template"):
        object_key("{nope}.webp", "", "A", "p", "s")


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_client_retry_mode_and_endpoint(proxy: FaultProxy, mode: str) -> None:
    options = S3Options.from_settings(
        {"endpoint_url": proxy.url, "region": "eu-west-3"}, retry_mode=mode, max_attempts=7
    )
    client = s3_client(options)
    assert client.meta.config.retries == {"mode": mode, "total_max_attempts": 7}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5, 15)
    assert client.meta.endpoint_url == proxy.url
    assert client.meta.region_name == "eu-west-3"


def test_settings_give_timeouts_and_attempts() -> None:
    options = S3Options.from_settings(
        {"connect_timeout": 2, "read_timeout": 9.5, "max_attempts": 4}, retry_mode="adaptive"
    )
    assert (options.connect_timeout, options.read_timeout, options.max_attempts) == (2, 9.5, 4)
    assert options.retry_mode == "adaptive"
    assert S3Options.from_settings({}, max_attempts=2).max_attempts == 2


def test_default_timeouts_fail_a_silent_endpoint_within_a_minute(repo: Path) -> None:
    schema = load_yaml(CONFIG_SCHEMA)["properties"]["publish"]["properties"]
    defaults = {name: schema[name]["default"] for name in ("read_timeout", "max_attempts")}
    assert "dry_run" not in schema
    assert "dry_run" not in (load_yaml(repo / "config.yaml") or {}).get("publish", {})
    options = S3Options.from_settings({})
    assert (options.read_timeout, options.max_attempts) == (
        defaults["read_timeout"],
        defaults["max_attempts"],
    )
    backoff = sum(min(20, 2**attempt) for attempt in range(options.max_attempts - 1))
    assert options.max_attempts * options.read_timeout + backoff <= 60


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


QUICK = {"connect_timeout": 0.5, "read_timeout": 0.5, "max_attempts": 2}


def test_silent_endpoint_fails_the_image_within_the_timeouts(
    silent: SilentServer, image: Path, tmp_path: Path
) -> None:
    config = {"target": "s3://bucket/site", "endpoint_url": silent.url, **QUICK}
    marker_path = tmp_path / "marker.json"
    started = time.monotonic()
    with pytest.raises(I2IError, match="got no answer in 2 attempt") as info:
        publish_to_marker(image, marker_path, ALBUM, PHOTO, STYLE, config)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "\n" not in message
    assert f"{PHOTO}_{STYLE}.webp" in message and "publish.read_timeout 0.5 s" in message
    assert QUICK["max_attempts"] * QUICK["read_timeout"] <= elapsed
    # botocore's own read timeout is 60 s an attempt; the bound leaves a loaded machine room.
    assert elapsed < 30, f"{elapsed:.1f} s: the configured timeouts were not used"
    assert len(silent.connections) == QUICK["max_attempts"]
    assert not marker_path.exists()


@pytest.fixture
def count_clients(monkeypatch: pytest.MonkeyPatch) -> list[S3Options]:
    """Every S3 client built, by its options."""
    built: list[S3Options] = []
    original = i2i.targets.s3.new_s3_client

    def counted(options: S3Options) -> Any:
        built.append(options)
        return original(options)

    monkeypatch.setattr(i2i.targets.s3, "new_s3_client", counted)
    return built


def test_concurrent_publishes_share_one_client(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, count_clients: list[S3Options]
) -> None:
    photos = [f"photo {n}" for n in range(12)]

    def one(photo: str) -> dict[str, Any]:
        return publish(image, ALBUM, photo, STYLE, settings(proxy, bucket))

    with ThreadPoolExecutor(6) as pool:
        markers = list(pool.map(one, photos))
    assert all(m["uploaded"] for m in markers)
    assert len(count_clients) == 1
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == len(photos)
    publish(image, ALBUM, photos[0], STYLE, settings(proxy, bucket, acl="public-read"))
    assert len(count_clients) == 1
    publish(image, ALBUM, photos[0], STYLE, settings(proxy, bucket, read_timeout=7))
    assert len(count_clients) == 2
    assert count_clients[1].read_timeout == 7


def settled(count: Any, expected: int) -> int:
    """``count()`` once it reaches ``expected`` (a server thread accepts a connection a moment
    after the client made it), or after a generous wait; never a timing assertion."""
    deadline = time.monotonic() + 30
    while count() < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count()


def test_a_dead_endpoint_opens_the_breaker_and_no_connection_follows(
    silent: SilentServer, image: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "breaker"
    config = {"target": "s3://bucket/site", "endpoint_url": silent.url, **QUICK}
    config["breaker_dir"] = str(folder)
    failures: list[I2IError] = []
    for n in range(20):
        with pytest.raises(I2IError) as info:
            publish_to_marker(image, tmp_path / f"{n}.json", ALBUM, f"p{n}", STYLE, config)
        failures.append(info.value)
    kinds = [type(exc) for exc in failures]
    assert kinds == [Unreachable] * THRESHOLD + [BreakerOpen] * (20 - THRESHOLD)
    attempts = QUICK["max_attempts"]
    assert settled(lambda: len(silent.connections), THRESHOLD * attempts) == THRESHOLD * attempts
    message = str(failures[-1])
    assert "\n" not in message
    assert "not tried, 5 connection failures in a row" in message and "next run" in message
    assert not list(tmp_path.glob("*.json"))

    reset(folder)  # a new run tries again
    with pytest.raises(Unreachable):
        publish_to_marker(image, tmp_path / "again.json", ALBUM, PHOTO, STYLE, config)
    expected = (THRESHOLD + 1) * attempts
    assert settled(lambda: len(silent.connections), expected) == expected


def test_an_answer_starts_the_count_again(tmp_path: Path) -> None:
    breaker = Breaker.in_folder(str(tmp_path), "s3://bucket/site")
    other = Breaker.in_folder(str(tmp_path), "s3://bucket/site")  # another job of the run

    def fail(error: I2IError) -> None:
        with pytest.raises(type(error)), breaker.guard():
            raise error

    for _ in range(THRESHOLD - 1):
        fail(Unreachable("no answer"))
    fail(I2IError("S3 error AccessDenied"))  # an answer, if an unwelcome one
    for _ in range(THRESHOLD - 1):
        fail(Unreachable("no answer"))
    with other.guard():
        pass
    assert other.failures() == 0
    for _ in range(THRESHOLD):
        fail(Unreachable("no answer"))
    with pytest.raises(BreakerOpen):
        other.check()
    nowhere = Breaker.in_folder(None, "s3://bucket/site")
    for _ in range(THRESHOLD + 1):
        nowhere.failed()
    nowhere.check()


def test_a_slow_down_storm_is_survived(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, tmp_path: Path
) -> None:
    assert S3Options.from_settings({}).retry_mode == "adaptive"
    storm = 4  # each request can meet all of it: fewer than its attempts
    proxy.slow_down = storm
    config = settings(proxy, bucket, max_attempts=storm + 1, breaker_dir=str(tmp_path / "b"))
    photos = [f"photo {n}" for n in range(6)]

    def one(photo: str) -> dict[str, Any]:
        marker = tmp_path / f"{photo}.json"
        return publish_to_marker(image, marker, ALBUM, photo, STYLE, config)

    with ThreadPoolExecutor(3) as pool:
        markers = list(pool.map(one, photos))
    assert proxy.slowed == storm
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    for marker in markers:
        answer = s3.get_object(Bucket=bucket, Key=marker["key"])
        assert hashlib.sha256(answer["Body"].read()).hexdigest() == digest == marker["sha256"]
        assert answer["Metadata"]["sha256"] == digest
    assert Breaker.in_folder(config["breaker_dir"], config["target"]).failures() == 0


def test_key_pattern_matches_only_template_keys() -> None:
    pattern = key_pattern("{prefix}/{album}/{photo}_{style}.webp", "site/v1")
    assert pattern.fullmatch("site/v1/A/p_oil.webp")
    assert not pattern.fullmatch("site/v1/A/_thumbs/p_oil.webp")
    assert not pattern.fullmatch("site/v1/index.html")
    twice = key_pattern("{album}/{album}-{photo}.{style}", "")
    assert twice.fullmatch("A/A-p.s") and not twice.fullmatch("A/B-p.s")


# --- i2i publish --dry-run / --verify on a workflow folder -------------------------------------

STYLES = ["oil_paint", "cartoon"]
LIBRARY = [(ALBUM, PHOTO), (ALBUM, "p2"), (ALBUM, "not yet"), ("B", "q1")]


def make_workdir(root: Path, repo: Path, publish_settings: dict[str, Any]) -> Path:
    """A workflow folder: config, a library of four photos, finals for all but one photo."""
    workdir = root / "work"
    for album, photo in LIBRARY:
        source = workdir / "albums" / album / f"{photo}.jpg"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(b"not decoded by discovery")
    config = {
        "albums_dir": "albums",
        "styles_file": str(repo / "styles.yaml"),
        "styles": STYLES,
        "publish": publish_settings,
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    for n, (album, photo) in enumerate(LIBRARY):
        if photo == "not yet":
            continue
        for m, style in enumerate(STYLES):
            final = workdir / f"results/final/{album}/{style}/{photo}.webp"
            final.parent.mkdir(parents=True, exist_ok=True)
            colour = (40 * n, 90 * m, 120)
            Image.new("RGB", (24 + n, 16 + m), colour).save(final, "WEBP", lossless=True)
    return workdir


def final_of(workdir: Path, album: str, photo: str, style: str) -> Path:
    return workdir / f"results/final/{album}/{style}/{photo}.webp"


def marker_of(workdir: Path, album: str, photo: str, style: str) -> Path:
    return workdir / f"results/published/{album}/{style}/{photo}.json"


def publish_all(workdir: Path, publish_settings: dict[str, Any]) -> None:
    """What the workflow's publish jobs do: every built final to the target, with a marker."""
    for album, photo in LIBRARY:
        for style in STYLES:
            final = final_of(workdir, album, photo, style)
            if final.exists():
                marker = marker_of(workdir, album, photo, style)
                publish_to_marker(final, marker, album, photo, style, publish_settings)


def snapshot(*roots: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``roots``: content digest and modification time."""
    found: dict[str, tuple[str, int]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            found[str(path)] = (digest, stat.st_mtime_ns)
    return found


def bucket_snapshot(s3: Any, bucket: str) -> list[tuple[str, str, Any]]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return [(o["Key"], o["ETag"], o["LastModified"]) for o in listed]


def cli(workdir: Path, *args: str) -> int:
    return main(["-d", str(workdir), "publish", *args])


def plan_output(text: str) -> tuple[set[str], str]:
    """The plan's image lines (spacing normalised) and its summary line."""
    lines = text.strip().splitlines()
    summary = next(line for line in lines if line.startswith("dry run for "))
    images = {" ".join(line.split()) for line in lines if not line.startswith(("dry", "removed:"))}
    return images, summary


def test_publish_needs_a_mode(tmp_path: Path, repo: Path) -> None:
    workdir = make_workdir(tmp_path, repo, {"target": "file://site"})
    assert cli(workdir) == 1


def test_file_dry_run_lists_changes_and_writes_nothing(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = make_workdir(tmp_path, repo, {"target": "file://site"})
    site = workdir / "site"
    for album, photo in [(ALBUM, PHOTO), ("B", "q1")]:
        for style in STYLES:
            copy = site / album / f"{photo}_{style}.webp"
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(final_of(workdir, album, photo, style).read_bytes())
    (site / "B" / "q1_oil_paint.webp").unlink()
    (site / ALBUM / f"p2_{STYLE}.webp").write_bytes(b"older bytes")
    leftovers = [f"{ALBUM}/gone_oil_paint.webp", f"{ALBUM}/{PHOTO}_watercolour.webp"]
    gallery = [
        "index.html",
        f"_albums/{ALBUM}.html",
        f"{ALBUM}/index.html",
        f"{ALBUM}/_thumbs/{PHOTO}_oil_paint.webp",
        f"{ALBUM}/.{PHOTO}_oil_paint.x1y2.tmp.webp",
    ]
    for key in leftovers + gallery:
        (site / key).parent.mkdir(parents=True, exist_ok=True)
        (site / key).write_bytes(b"x")
    before = snapshot(workdir)

    assert cli(workdir, "--dry-run") == 0
    lines, summary = plan_output(capsys.readouterr().out)
    assert lines == {
        f"changed {ALBUM}/p2_{STYLE}.webp (content differs)",
        f"new {ALBUM}/p2_cartoon.webp",
        "new B/q1_oil_paint.webp",
        *(f"removed {key}" for key in leftovers),
    }
    assert "2 new, 1 changed, 3 unchanged, 2 removed, 2 not built" in summary
    assert snapshot(workdir) == before


def test_s3_dry_run_lists_changes_and_writes_nothing(
    s3: Any, proxy: FaultProxy, bucket: str, tmp_path: Path, repo: Path, capsys
) -> None:
    config = settings(proxy, bucket)
    workdir = make_workdir(tmp_path, repo, config)
    for album, photo in [(ALBUM, PHOTO), ("B", "q1")]:
        for style in STYLES:
            publish(final_of(workdir, album, photo, style), album, photo, style, config)
    s3.delete_object(Bucket=bucket, Key="site/v1/B/q1_oil_paint.webp")
    s3.put_object(Bucket=bucket, Key=f"site/v1/{ALBUM}/p2_{STYLE}.webp", Body=b"older")
    headers = {**config, "cache_control": "no-cache"}
    publish(final_of(workdir, "B", "q1", "cartoon"), "B", "q1", "cartoon", headers)
    leftovers = [f"site/v1/{ALBUM}/gone_oil_paint.webp", "site/v1/Old/p_cartoon.webp"]
    others = ["site/v1/index.html", f"site/v1/{ALBUM}/_thumbs/x_oil.webp", "other/A/p_s.webp"]
    for key in leftovers + others:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    before, files = bucket_snapshot(s3, bucket), snapshot(workdir)
    proxy.requests.clear()

    assert cli(workdir, "--dry-run") == 0
    lines, summary = plan_output(capsys.readouterr().out)
    assert lines == {
        f"changed site/v1/{ALBUM}/p2_{STYLE}.webp (content differs)",
        "changed site/v1/B/q1_cartoon.webp (headers differ: CacheControl)",
        f"new site/v1/{ALBUM}/p2_cartoon.webp",
        "new site/v1/B/q1_oil_paint.webp",
        *(f"removed {key}" for key in leftovers),
    }
    assert "2 new, 2 changed, 2 unchanged, 2 removed, 2 not built" in summary
    assert bucket_snapshot(s3, bucket) == before
    assert snapshot(workdir) == files
    assert {method for method, _ in proxy.requests} <= {"GET", "HEAD"}


def test_s3_dry_run_names_a_missing_bucket(
    proxy: FaultProxy, tmp_path: Path, repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workdir = make_workdir(tmp_path, repo, settings(proxy, "no-such-bucket"))
    assert cli(workdir, "--dry-run") == 1
    assert "bucket no-such-bucket does not exist" in caplog.text


def test_file_verify_removes_bad_markers_and_the_next_run_republishes(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = {"target": f"file://{tmp_path / 'site'}"}
    workdir = make_workdir(tmp_path, repo, target)
    publish_all(workdir, target)
    site = tmp_path / "site"
    assert cli(workdir, "--verify") == 0
    assert capsys.readouterr().out.strip() == "6 marker(s) checked, 6 good, 0 bad"

    (site / ALBUM / f"{PHOTO}_{STYLE}.webp").unlink()
    (site / "B" / "q1_cartoon.webp").write_bytes(b"replaced")
    marker_of(workdir, ALBUM, "p2", "cartoon").write_text("{not json")
    bad = [
        marker_of(workdir, ALBUM, PHOTO, STYLE),
        marker_of(workdir, "B", "q1", "cartoon"),
        marker_of(workdir, ALBUM, "p2", "cartoon"),
    ]
    before = snapshot(workdir, site)
    assert cli(workdir, "--verify", "--dry-run") == 1
    out = capsys.readouterr().out
    assert snapshot(workdir, site) == before
    assert "6 marker(s) checked, 3 good, 3 bad; dry run: kept them" in out
    for marker in bad:
        assert f"bad {marker.relative_to(workdir)}: " in out
    assert "is missing" in out and "sha256" in out and "unreadable marker" in out

    assert cli(workdir, "--verify") == 1
    assert "3 bad; removed them" in capsys.readouterr().out
    assert not any(marker.exists() for marker in bad)
    assert marker_of(workdir, ALBUM, "p2", STYLE).exists()
    publish_all(workdir, target)
    assert cli(workdir, "--verify") == 0
    assert (site / ALBUM / f"{PHOTO}_{STYLE}.webp").read_bytes() == (
        final_of(workdir, ALBUM, PHOTO, STYLE).read_bytes()
    )


def test_file_verify_and_dry_run_cover_the_gallery_files(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = {"target": f"file://{tmp_path / 'site'}"}
    workdir = make_workdir(tmp_path, repo, target)
    publish_all(workdir, target)
    site = tmp_path / "site"
    page, index = f"{ALBUM}/index.html", "index.html"
    copy = f"{ALBUM}/_gallery/{PHOTO}_{STYLE}.400.webp"
    for key, data in ((page, b"<!doctype html>"), (copy, b"webp bytes"), (index, b"<html>")):
        write_bytes(site / key, data)
    album_marker = workdir / f"results/published/gallery/{ALBUM}.json"
    index_marker = workdir / "results/published/gallery.json"
    write_json(album_marker, {"pages": [page], "files": site_files(site, [page, copy])})
    write_json(index_marker, {"pages": [index], "files": site_files(site, [index])})
    assert cli(workdir, "--verify") == 0
    assert capsys.readouterr().out.strip() == "8 marker(s) checked, 8 good, 0 bad"

    (site / copy).write_bytes(b"webp BYTES")
    (site / index).unlink()
    assert cli(workdir, "--dry-run") == 0
    lines, _ = plan_output(capsys.readouterr().out)
    assert {line for line in lines if "gallery" in line} == {
        f"changed {copy} (gallery: content differs)",
        f"new {index} (gallery)",
    }
    assert cli(workdir, "--verify") == 1
    out = capsys.readouterr().out
    assert f"bad results/published/gallery/{ALBUM}.json: {copy}: sha256 " in out
    assert f"bad results/published/gallery.json: {site / index} is missing" in out
    assert "8 marker(s) checked, 6 good, 2 bad; removed them" in out
    assert not album_marker.exists() and not index_marker.exists()
    assert marker_of(workdir, ALBUM, PHOTO, STYLE).exists()


def test_s3_verify_finds_gone_and_different_objects(
    s3: Any, proxy: FaultProxy, bucket: str, tmp_path: Path, repo: Path, capsys
) -> None:
    config = settings(proxy, bucket)
    workdir = make_workdir(tmp_path, repo, config)
    publish_all(workdir, config)
    assert cli(workdir, "--verify") == 0
    capsys.readouterr()

    s3.delete_object(Bucket=bucket, Key=KEY)
    key = "site/v1/B/q1_cartoon.webp"
    s3.put_object(Bucket=bucket, Key=key, Body=b"other", Metadata={"sha256": "0" * 64})
    marker = json.loads(marker_of(workdir, ALBUM, "p2", "cartoon").read_text())
    longer = final_of(workdir, ALBUM, "p2", "cartoon").read_bytes() + b"tail"
    s3.put_object(
        Bucket=bucket,
        Key=f"site/v1/{ALBUM}/p2_cartoon.webp",
        Body=longer,
        Metadata={"sha256": marker["sha256"]},
    )
    proxy.requests.clear()
    assert cli(workdir, "--verify", "--dry-run") == 1
    assert proxy.count("HEAD") == 6 and proxy.count("PUT") == proxy.count("DELETE") == 0
    assert marker_of(workdir, ALBUM, PHOTO, STYLE).exists()

    assert cli(workdir, "--verify") == 1
    out = capsys.readouterr().out
    assert f"s3://{bucket}/{KEY} is missing" in out
    assert f"{key}: sha256 {'0' * 64} at the target" in out
    assert f"{len(longer)} bytes at the target, {marker['size']} in the marker" in out
    assert "6 marker(s) checked, 3 good, 3 bad; removed them" in out
    assert not marker_of(workdir, ALBUM, PHOTO, STYLE).exists()
    publish_all(workdir, config)
    assert cli(workdir, "--verify") == 0


def test_verify_removes_nothing_when_the_target_does_not_answer(
    silent: SilentServer, proxy: FaultProxy, bucket: str, tmp_path: Path, repo: Path, caplog
) -> None:
    config = settings(proxy, bucket)
    workdir = make_workdir(tmp_path, repo, config)
    publish_all(workdir, config)
    config_file = workdir / "config.yaml"
    data = yaml.safe_load(config_file.read_text())
    data["publish"] = {**config, "endpoint_url": silent.url, **QUICK}
    config_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    before = snapshot(workdir)
    assert cli(workdir, "--verify") == 1
    assert "got no answer" in caplog.text
    assert snapshot(workdir) == before


# --- the gallery at an s3:// target -------------------------------------------------------------


def test_gallery_files_are_uploaded_with_their_headers_once(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, tmp_path: Path
) -> None:
    root = tmp_path / "gallery-site"
    pages = ["site/v1/index.html", f"site/v1/{ALBUM}/index.html"]
    copy = f"site/v1/{ALBUM}/_gallery/{PHOTO}_{STYLE}.400.webp"
    for key in pages:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(f"<!doctype html><title>{key}</title>", encoding="utf-8")
    (root / copy).parent.mkdir(parents=True, exist_ok=True)
    (root / copy).write_bytes(image.read_bytes())
    config = settings(proxy, bucket, acl="public-read")

    assert upload_site(root, [*pages, copy], config) == sorted([*pages, copy])
    for key in pages:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentType"] == "text/html; charset=utf-8"
        assert head["CacheControl"] == DEFAULT_PAGE_CACHE_CONTROL == "public, max-age=300"
        assert head["Metadata"]["sha256"] == hashlib.sha256((root / key).read_bytes()).hexdigest()
    head = s3.head_object(Bucket=bucket, Key=copy)
    assert (head["ContentType"], head["CacheControl"]) == ("image/webp", DEFAULT_CACHE_CONTROL)
    grants = s3.get_object_acl(Bucket=bucket, Key=copy)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)

    proxy.requests.clear()
    assert upload_site(root, [*pages, copy], config) == []
    assert proxy.count("PUT") == 0 and proxy.count("HEAD") == 3
    shorter = {**config, "page_cache_control": "no-cache"}
    assert upload_site(root, [*pages, copy], shorter) == sorted(pages)
    assert s3.head_object(Bucket=bucket, Key=pages[0])["CacheControl"] == "no-cache"


class Links(HTMLParser):
    """Every href, src and srcset URL of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in {"href", "src"}:
                self.urls.append(value)
            elif value and name in {"srcset", "data-srcset"}:
                self.urls += [part.split()[0] for part in value.split(",")]


def linked_keys(page: str, text: str) -> set[str]:
    """The keys that the relative links of the page at key ``page`` point to."""
    parser = Links()
    parser.feed(text)
    found = set()
    for url in parser.urls:
        if url.startswith(("data:", "#")):
            continue
        parts = urllib.parse.urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page}: external URL {url}"
        path = posixpath.join(posixpath.dirname(page), urllib.parse.unquote(parts.path))
        found.add(posixpath.normpath(path))
    return found


@pytest.mark.workflow
def test_an_s3_target_gets_a_browsable_gallery(
    s3: Any, proxy: FaultProxy, bucket: str, tmp_path: Path
) -> None:
    """After a run the bucket holds the index and every album page (HTML, short cache time),
    every link of every page resolves to an object there (images: WebP, long cache time), and
    a gallery job run again uploads nothing that is already there."""
    workdir = copy_workflow(tmp_path / "workflow")
    config_file = workdir / "config.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["styles"] = ["cartoon", "oil_paint"]
    config.setdefault("publish", {}).update(settings(proxy, bucket))
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    snakemake(workdir)

    listed = s3.list_objects_v2(Bucket=bucket)
    keys = {item["Key"] for item in listed["Contents"]}
    assert not listed["IsTruncated"]
    albums = ["Côte d'Azur & Paris", "Space Coast"]
    pages = {"site/v1/index.html", *(f"site/v1/{album}/index.html" for album in albums)}
    assert {key for key in keys if key.endswith(".html")} == pages
    images = set()
    for page in sorted(pages):
        head = s3.head_object(Bucket=bucket, Key=page)
        assert head["ContentType"] == "text/html; charset=utf-8", page
        assert head["CacheControl"] == "public, max-age=300", page
        text = s3.get_object(Bucket=bucket, Key=page)["Body"].read().decode("utf-8")
        linked = linked_keys(page, text)
        assert linked <= keys, f"{page} links missing objects: {sorted(linked - keys)}"
        images |= {key for key in linked if key.endswith(".webp")}
        if page == "site/v1/index.html":
            assert pages - {page} <= linked, "the index links every album page"
        else:
            assert "site/v1/index.html" in linked, "an album page links back to the index"
            assert any("/_gallery/" in key for key in linked)
    assert len(images) > 30
    for key in sorted(images):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["ContentType"], head["CacheControl"]) == ("image/webp", DEFAULT_CACHE_CONTROL)
        assert head["Metadata"]["sha256"]
    marker = json.loads((workdir / "results/published/gallery/Space Coast.json").read_text())
    assert marker["target"] == f"s3://{bucket}/site/v1"
    assert {*marker["pages"], *marker["assets"]} <= keys
    assert planned(workdir) == {}

    proxy.requests.clear()
    (workdir / "results/published/gallery/Space Coast.json").unlink()
    (workdir / "results/published/gallery.json").unlink()
    snakemake(workdir)
    assert proxy.count("HEAD") > 0 and proxy.count("PUT") == 0


def workflow_with(tmp_path: Path, publish_settings: dict[str, Any], styles: list[str]) -> Path:
    """A workflow copy that publishes ``styles`` of the sample albums with these settings."""
    workdir = copy_workflow(tmp_path / "workflow")
    config_file = workdir / "config.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    config["styles"] = styles
    config.setdefault("publish", {}).update(publish_settings)
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return workdir


@pytest.mark.workflow
def test_the_gallery_objects_deleted_at_the_target_come_back(
    s3: Any, proxy: FaultProxy, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gallery copy, an album page and the root index deleted behind the workflow's back:
    `i2i publish --dry-run` lists them as new, `--verify` names them and removes the markers
    of the jobs that published them, and the next run uploads exactly those, byte-identical."""
    workdir = workflow_with(tmp_path, settings(proxy, bucket), ["cartoon"])
    snakemake(workdir)
    assert cli(workdir, "--verify") == 0
    capsys.readouterr()
    album = "Space Coast"
    record = json.loads((workdir / f"results/published/gallery/{album}.json").read_text())
    copy = next(key for key in record["assets"] if "/_gallery/" in key)
    gone = ["site/v1/index.html", f"site/v1/{album}/index.html", copy]
    before = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in gone}
    for key in gone:
        s3.delete_object(Bucket=bucket, Key=key)

    assert cli(workdir, "--dry-run") == 0
    lines, summary = plan_output(capsys.readouterr().out)
    assert lines == {f"new {key} (gallery)" for key in gone}, lines
    assert "3 new, 0 changed" in summary
    assert cli(workdir, "--verify") == 1
    out = capsys.readouterr().out
    for key in gone:
        assert f"s3://{bucket}/{key} is missing" in out
    assert "9 marker(s) checked, 7 good, 2 bad; removed them" in out
    assert planned(workdir) == {"gallery_album": 1, "gallery": 1}

    proxy.requests.clear()
    snakemake(workdir)
    assert proxy.count("PUT") == len(gone)
    for key in gone:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == before[key], key
    assert cli(workdir, "--verify") == 0
    assert planned(workdir) == {}


NOT_TRIED = r"s3://bucket/site: not tried, \d+ connection failures in a row in this run"


@pytest.mark.workflow
def test_a_dead_target_fails_the_rest_of_the_run_at_once(
    silent: SilentServer, tmp_path: Path
) -> None:
    """Against a silent endpoint the breaker opens after 5 connection failures in a row: the
    remaining publish jobs fail at once with one line each and no connection, the rest of the
    workflow goes on, and the next run tries the endpoint again."""
    target = {"target": "s3://bucket/site", "endpoint_url": silent.url, **QUICK}
    styles = ["cartoon", "oil_paint", "pencil_sketch"]
    workdir = workflow_with(tmp_path, target, styles)
    images = 6 * len(styles)
    # At most two jobs (--cores 2) are in flight, each trying max_attempts times.
    bound = (THRESHOLD + 1) * QUICK["max_attempts"]

    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    first = len(silent.connections)
    assert 0 < first <= bound
    logs = [p.read_text(encoding="utf-8") for p in (workdir / "logs/publish").rglob("*.log")]
    assert len(logs) == images
    not_tried = [log for log in logs if re.search(NOT_TRIED, log)]
    assert len(not_tried) >= images - THRESHOLD - 1, "\n".join(log[-300:] for log in logs)
    assert all(len(re.findall(NOT_TRIED, log)) == 1 for log in not_tried)
    assert len(list((workdir / "results/final").rglob("*.webp"))) == images
    assert len(list((workdir / "results/report/contact_sheets").glob("*.jpg"))) == 2
    assert not list((workdir / "results/published").rglob("*.json"))

    result = snakemake(workdir, check=False)
    assert result.returncode != 0
    assert first < len(silent.connections) <= first + bound
