"""``s3://bucket/prefix``: an S3 or S3-compatible bucket, through boto3.

Objects get their Content-Type and Cache-Control, an optional canned ACL (``publish.acl``) and
the sha256 in the object metadata (``x-amz-meta-sha256``). ``publish.endpoint_url`` and
``publish.region`` select an S3-compatible store. Credentials come only from the standard AWS
chain, never from the config. One client per process and client settings serves every job
(boto3 clients are thread-safe); ``publish.connect_timeout``, ``publish.read_timeout`` and
``publish.max_attempts`` bound how long a silent endpoint can hold one file. Requests are
retried in botocore's adaptive mode: throttling (503 SlowDown) and 5xx answers get exponential
back-off, and throttling also slows the client's own request rate. Every botocore failure
becomes a one-line :class:`I2IError` without secrets; no connection or no answer is
:class:`~i2i.targets.breaker.Unreachable`, which the run's breaker counts.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from i2i import I2IError, __version__
from i2i.targets.base import Head, Headers, Spec, Target, one_line
from i2i.targets.breaker import Unreachable

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_MAX_ATTEMPTS = 3
SHA256_META = "sha256"
MIB = 1 << 20
MAX_POOL_CONNECTIONS = 32
AWS_CHAIN = (
    "the standard AWS credential chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(and AWS_SESSION_TOKEN), AWS_PROFILE with ~/.aws/credentials or ~/.aws/config (SSO too), "
    "or a container/instance role; credentials are never read from config.yaml"
)
# The one line a run, `i2i check` and `i2i publish` give when the chain has no credentials.
NO_CREDENTIALS = f"no S3 credentials: set them through {AWS_CHAIN}"
MISSING_KEY_CODES = {"404", "NoSuchKey", "NotFound"}
DENIED_CODES = {"403", "AccessDenied", "Forbidden"}
BAD_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
CLIENT_FIELDS = (
    "endpoint_url",
    "region",
    "retry_mode",
    "max_attempts",
    "connect_timeout",
    "read_timeout",
)
KEPT_HEADERS = ("ContentType", "CacheControl")
# Failures that mean the endpoint could not be reached (the breaker counts them).
UNREACHABLE = (EndpointConnectionError, ConnectionClosedError)
S3_FAILURES = (ClientError, BotoCoreError)

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class S3Options:
    """How to talk to an S3 (or S3-compatible) store; nothing secret lives here."""

    endpoint_url: str | None = None
    region: str | None = None
    acl: str | None = None
    retry_mode: str = "adaptive"
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    multipart_threshold: int = 16 * MIB
    multipart_chunksize: int = 16 * MIB
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **overrides: Any) -> S3Options:
        """Options from the ``publish`` config section (schema defaults may be absent)."""
        endpoint = settings.get("endpoint_url") or None
        if endpoint:
            parts = urllib.parse.urlsplit(endpoint)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise I2IError("publish.endpoint_url must be an http(s):// URL")
            if parts.username or parts.password:
                raise I2IError(
                    "publish.endpoint_url contains credentials; remove them and use " + AWS_CHAIN
                )
        values = {
            "endpoint_url": endpoint,
            "region": settings.get("region") or None,
            "acl": settings.get("acl") or None,
            "max_attempts": int(settings.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            "connect_timeout": float(settings.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
            "read_timeout": float(settings.get("read_timeout", DEFAULT_READ_TIMEOUT)),
        }
        return cls(**{**values, **overrides})

    def client_settings(self) -> tuple[Any, ...]:
        """The fields a boto3 client is built from (ACL and part sizes are not)."""
        return tuple(getattr(self, name) for name in CLIENT_FIELDS)


def new_s3_client(options: S3Options) -> Any:
    """A new boto3 S3 client with retries and timeouts; fails early without AWS credentials."""
    import boto3  # about 0.2 s to import: only once a client is needed
    import botocore.config

    session = boto3.session.Session(region_name=options.region)
    aws_credentials(session)
    config = botocore.config.Config(
        retries={"mode": options.retry_mode, "total_max_attempts": options.max_attempts},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        user_agent_extra=f"i2i/{__version__}",
    )
    return session.client("s3", endpoint_url=options.endpoint_url, config=config)


def aws_credentials(session: Any) -> Any:
    """The credentials the AWS chain finds for ``session``; :data:`NO_CREDENTIALS` when none."""
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise I2IError(
            f"AWS credentials could not be loaded ({one_line(exc)}); check {AWS_CHAIN}"
        ) from exc
    if credentials is None:
        raise I2IError(NO_CREDENTIALS)
    return credentials


def s3_client(options: S3Options) -> Any:
    """The process's S3 client for these client settings, made on first use.

    boto3 clients are thread-safe and sessions are not, so one client, built under a lock,
    serves every job thread of a run. A forked child builds its own.
    """
    key = (os.getpid(), *options.client_settings())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = new_s3_client(options)
    return client


def clear_s3_clients() -> None:
    """Forget the cached clients (after the AWS credentials changed, e.g. in tests)."""
    with _clients_lock:
        _clients.clear()


def error_code(exc: ClientError) -> str:
    """The S3 error code of a ClientError (``NoSuchBucket``, ``404``, …)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def explain(exc: Exception, bucket: str, key: str, endpoint: str, options: S3Options) -> I2IError:
    """A one-line, plain-words :class:`I2IError` for a boto3/botocore failure; no secrets."""
    where = f"s3://{bucket}/{key} at {endpoint}"
    if isinstance(exc, NoCredentialsError):
        return I2IError(NO_CREDENTIALS)
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return Unreachable(
            f"S3 request for {where} got no answer in {options.max_attempts} attempt(s) "
            f"(publish.connect_timeout {options.connect_timeout:g} s, publish.read_timeout "
            f"{options.read_timeout:g} s, publish.max_attempts {options.max_attempts})"
        )
    if isinstance(exc, UNREACHABLE):
        return Unreachable(f"S3 request for {where} failed after retries: {one_line(exc)}")
    if isinstance(exc, BotoCoreError):
        return I2IError(f"S3 request for {where} failed after retries: {one_line(exc)}")
    if not isinstance(exc, ClientError):
        return I2IError(f"S3 request for {where} failed: {one_line(exc)}")
    code = error_code(exc)
    message = one_line(exc.response.get("Error", {}).get("Message", "") or exc)
    if code == "NoSuchBucket":
        return I2IError(f"bucket {bucket} does not exist at {endpoint}")
    if code == "AccessControlListNotSupported":
        return I2IError(
            f"bucket {bucket} has ACLs disabled (Object Ownership is 'bucket owner enforced'), "
            f"so the object cannot be given the ACL {options.acl!r}. Remove publish.acl from the "
            "config and make the objects public with a bucket policy instead, or enable ACLs "
            "on the bucket."
        )
    if code in BAD_CREDENTIAL_CODES:
        return I2IError(
            f"the AWS credentials were rejected for {where} ({code}); check {AWS_CHAIN}"
        )
    if code in DENIED_CODES:
        return I2IError(
            f"access denied to {where}: the credentials from the AWS chain need s3:GetObject "
            "and s3:PutObject on the objects (s3:PutObjectAcl when publish.acl is set) and "
            "s3:ListBucket on the bucket (without it S3 answers 403 for a missing object)"
        )
    return I2IError(f"S3 error {code or 'unknown'} for {where}: {message}")


class S3Target(Target):
    """A bucket and a key prefix; the client is made on first use."""

    usage = "s3://bucket/prefix"
    output_settings = frozenset(
        {"endpoint_url", "region", "acl", "cache_control", "page_cache_control"}
    )

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        bucket, _, prefix = spec.location.partition("/")
        if not bucket:
            raise I2IError(f"publish.target {spec.url!r}: the bucket name is missing")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = S3Options.from_settings(spec.settings, **spec.overrides)

    @property
    def client(self) -> Any:
        return s3_client(self.options)

    def failure(self, exc: Exception, key: str) -> I2IError:
        """A botocore failure at ``key`` in plain words."""
        endpoint = self.client.meta.endpoint_url
        return explain(exc, self.bucket, key, endpoint, self.options)

    def _unless_missing(self, key: str, request: Callable[[], T]) -> T | None:
        """``request()``, or None when ``key`` is not there; other failures in plain words."""
        try:
            return request()
        except ClientError as exc:
            if error_code(exc) in MISSING_KEY_CODES:
                return None
            raise self.failure(exc, key) from exc
        except BotoCoreError as exc:
            raise self.failure(exc, key) from exc

    def head(self, key: str) -> Head | None:
        answer = self._unless_missing(
            key, lambda: self.client.head_object(Bucket=self.bucket, Key=key)
        )
        if answer is None:
            return None
        return Head(
            answer.get("ContentLength"),
            answer.get("Metadata", {}).get(SHA256_META),
            {name: answer.get(name) for name in KEPT_HEADERS},
            str(answer.get("ETag", "")).strip('"') or None,
            answer.get("LastModified"),
        )

    def put(self, source: Path, key: str, headers: Headers, digest: str) -> None:
        """Upload (multipart above the threshold); botocore retries each request."""
        from boto3.s3.transfer import TransferConfig, create_transfer_manager

        extra: dict[str, Any] = {**headers, "Metadata": {SHA256_META: digest}}
        if self.options.acl:
            extra["ACL"] = self.options.acl
        config = TransferConfig(
            multipart_threshold=self.options.multipart_threshold,
            multipart_chunksize=self.options.multipart_chunksize,
            max_concurrency=4,
            preferred_transfer_client="classic",
        )
        try:
            with create_transfer_manager(self.client, config) as manager:
                manager.upload(str(source), self.bucket, key, extra_args=extra).result()
        except S3_FAILURES as exc:
            raise self.failure(exc, key) from exc

    def objects(self, start: str) -> Iterator[tuple[str, int]]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"], item["Size"]
        except S3_FAILURES as exc:
            raise self.failure(exc, start) from exc

    def read(self, key: str, limit: int) -> bytes | None:
        def first_bytes() -> bytes:
            answer = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{limit - 1}"
            )
            return answer["Body"].read()

        return self._unless_missing(key, first_bytes)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except S3_FAILURES as exc:
            raise self.failure(exc, key) from exc

    def link(self, key: str) -> str:
        """Path style on a custom endpoint, else the virtual-hosted AWS URL."""
        quoted = urllib.parse.quote(key)
        if self.options.endpoint_url:
            return f"{self.options.endpoint_url.rstrip('/')}/{self.bucket}/{quoted}"
        region = self.client.meta.region_name
        aws = region and region != "aws-global"
        host = f"s3.{region}.amazonaws.com" if aws else "s3.amazonaws.com"
        return f"https://{self.bucket}.{host}/{quoted}"

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def details(self, headers: Headers) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "endpoint": self.client.meta.endpoint_url,
            "content_type": headers["ContentType"],
            "cache_control": headers["CacheControl"],
        }

    def check(self) -> str:
        """Whether the AWS chain has credentials (never printed); :data:`NO_CREDENTIALS` when
        it has none. Also run at the start of a run, before any job."""
        import boto3

        credentials = aws_credentials(boto3.session.Session(region_name=self.options.region))
        return f"{self.url}: AWS credentials found ({credentials.method})"
