"""Publishing to S3 over real HTTP (moto server + a fault-injecting proxy) and to file://."""

from __future__ import annotations

import http.client
import itertools
import logging
import os
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from i2i import I2IError
from i2i.publish import (
    DEFAULT_CACHE_CONTROL,
    DryRunError,
    S3Options,
    explain,
    object_key,
    parse_target,
    publish,
    publish_to_marker,
    s3_client,
)

moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")

SECRET = "i2iSECRETneverLOGGED0123456789"
ACL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessControlListNotSupported</Code>'
    b"<Message>The bucket does not allow ACLs</Message><RequestId>TEST</RequestId>"
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


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Test credentials in the environment only; no profile files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAI2ITEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


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
    assert "ACLs disabled" in str(
        explain(error("AccessControlListNotSupported"), "b", "k", endpoint, "public-read")
    )
    assert str(explain(error("NoSuchBucket"), "b", "k", endpoint, None)) == (
        f"bucket b does not exist at {endpoint}"
    )
    assert "access denied" in str(explain(error("AccessDenied"), "b", "k", endpoint, None))
    assert "credential chain" in str(explain(error("InvalidAccessKeyId"), "b", "k", endpoint, None))


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


def test_s3_dry_run_writes_nothing(
    s3: Any, proxy: FaultProxy, bucket: str, image: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(DryRunError):
        publish(image, ALBUM, PHOTO, STYLE, settings(proxy, bucket, dry_run=True))
    assert "would upload (new object)" in caplog.text
    assert proxy.count("PUT") == 0
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    with pytest.raises(I2IError, match="does not exist"):
        publish(image, ALBUM, PHOTO, STYLE, settings(proxy, "no-such-bucket", dry_run=True))


def test_file_target_copies_once(tmp_path: Path, image: Path) -> None:
    config = {"target": f"file://{tmp_path / 'site'}"}
    first = publish(image, ALBUM, PHOTO, STYLE, config)
    second = publish(image, ALBUM, PHOTO, STYLE, config)
    assert (first["uploaded"], second["uploaded"]) == (True, False)
    copy = tmp_path / "site" / ALBUM / f"{PHOTO}_{STYLE}.webp"
    assert copy.read_bytes() == image.read_bytes()
    with pytest.raises(DryRunError):
        publish(image, ALBUM, "other", STYLE, {**config, "dry_run": True})
    assert not (tmp_path / "site" / ALBUM / f"other_{STYLE}.webp").exists()


def test_targets_and_keys() -> None:
    assert parse_target("s3://bucket/a/b/").prefix == "a/b"
    assert parse_target("file://results/gallery").location == "results/gallery"
    for bad in ("http://x", "s3://", "s3:///prefix", "results"):
        with pytest.raises(I2IError):
            parse_target(bad)
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
    assert client.meta.endpoint_url == proxy.url
    assert client.meta.region_name == "eu-west-3"
