"""The publish stage: put a final image at its target and return the upload marker.

Targets (``publish.target``):

- ``file://DIR``: copy into a browsable folder (the embedded default; pages by :mod:`i2i.gallery`).
- ``s3://bucket/prefix``: upload through boto3 with Content-Type (sniffed from the file),
  Cache-Control, an optional canned ACL and the sha256 in the object metadata
  (``x-amz-meta-sha256``). ``publish.endpoint_url`` and ``publish.region`` select an
  S3-compatible store. Credentials come only from the standard AWS chain, never from the config.
  One client per process and client settings serves every job (boto3 clients are thread-safe);
  ``publish.connect_timeout``, ``publish.read_timeout`` and ``publish.max_attempts`` bound how
  long a silent endpoint can hold one image.

The key layout is the same for every target: ``publish.key_template`` with ``prefix``, ``album``,
``photo`` and ``style``. Publishing is idempotent: a target that already holds the same bytes
(same sha256 and size; for S3 also the same headers) is left alone and the marker says
``uploaded: false``. A marker is returned only once the copy has been read back and verified.

``i2i publish --dry-run`` and ``--verify`` live in :mod:`i2i.publish_audit`, so that editing
them changes nothing the publish jobs run (their code digest, see :mod:`i2i.provenance`).
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import os
import shutil
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)
from PIL import Image

from i2i import I2IError, __version__
from i2i.files import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)

DEFAULT_KEY_TEMPLATE = "{prefix}/{album}/{photo}_{style}.webp"
DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
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


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class Target:
    """A parsed ``publish.target``: scheme (``file`` or ``s3``), location and key prefix."""

    scheme: str
    location: str
    prefix: str


@dataclass(frozen=True)
class S3Options:
    """How to talk to an S3 (or S3-compatible) store; nothing secret lives here."""

    endpoint_url: str | None = None
    region: str | None = None
    acl: str | None = None
    cache_control: str = DEFAULT_CACHE_CONTROL
    retry_mode: str = "standard"
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
            "cache_control": settings.get("cache_control") or DEFAULT_CACHE_CONTROL,
            "max_attempts": int(settings.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            "connect_timeout": float(settings.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
            "read_timeout": float(settings.get("read_timeout", DEFAULT_READ_TIMEOUT)),
        }
        return cls(**{**values, **overrides})

    def client_settings(self) -> tuple[Any, ...]:
        """The fields a boto3 client is built from (ACL, headers and part sizes are not)."""
        return tuple(getattr(self, name) for name in CLIENT_FIELDS)


def parse_target(target: str) -> Target:
    """``file://results/gallery`` or ``s3://bucket/some/prefix``."""
    scheme, sep, rest = target.partition("://")
    if not sep or scheme not in {"file", "s3"} or not rest:
        raise I2IError(f"publish.target {target!r}: use file://DIR or s3://bucket/prefix")
    if scheme == "file":
        return Target("file", rest, "")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise I2IError(f"publish.target {target!r}: the bucket name is missing")
    return Target("s3", bucket, prefix.strip("/"))


def object_key(template: str, prefix: str, album: str, photo: str, style: str) -> str:
    """The key of one image under the target, without empty segments or leading slashes."""
    try:
        key = template.format(prefix=prefix, album=album, photo=photo, style=style)
    except (KeyError, IndexError, ValueError) as exc:
        raise I2IError(
            f"publish.key_template {template!r}: use only {{prefix}}, {{album}}, {{photo}}, "
            f"{{style}} ({exc})"
        ) from exc
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in {".", ".."} for p in parts):
        raise I2IError(f"publish.key_template gives an unsafe key {key!r}")
    return "/".join(parts)


def content_type(path: Path) -> str:
    """The MIME type of an image file, sniffed from its bytes, else guessed from its name."""
    try:
        with Image.open(path) as image:
            mime = Image.MIME.get(image.format or "")
    except OSError:
        mime = None
    return mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def timestamp(moment: dt.datetime | None) -> str | None:
    """When the copy at the target was written, in UTC: it changes only when the copy does, so
    a marker written again for an unchanged copy has the same bytes."""
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds") if moment else None


def publish_file(source: Path, root: Path, key: str) -> dict[str, Any]:
    """Copy ``source`` to ``root/key`` unless an identical copy is already there."""
    destination = root / key
    digest = sha256_file(source)
    uploaded = not (destination.is_file() and sha256_file(destination) == digest)
    if uploaded:
        with atomic_path(destination) as tmp:
            shutil.copyfile(source, tmp)
        if sha256_file(destination) != digest:
            raise I2IError(f"{destination}: copy does not match {source}")
    return {
        "url": destination.resolve().as_uri(),
        "sha256": digest,
        "etag": None,
        "size": source.stat().st_size,
        "time": timestamp(dt.datetime.fromtimestamp(destination.stat().st_mtime, dt.UTC)),
        "uploaded": uploaded,
    }


def new_s3_client(options: S3Options) -> Any:
    """A new boto3 S3 client with retries and timeouts; fails early without AWS credentials."""
    try:
        session = boto3.session.Session(region_name=options.region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise I2IError(f"AWS credentials could not be loaded ({exc}); check {AWS_CHAIN}") from exc
    if credentials is None:
        raise I2IError(f"no AWS credentials found; provide them through {AWS_CHAIN}")
    config = botocore.config.Config(
        retries={"mode": options.retry_mode, "total_max_attempts": options.max_attempts},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        user_agent_extra=f"i2i/{__version__}",
    )
    return session.client("s3", endpoint_url=options.endpoint_url, config=config)


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


def object_url(client: Any, options: S3Options, bucket: str, key: str) -> str:
    """The HTTP(S) URL of an object: path style on a custom endpoint, else virtual-hosted AWS."""
    quoted = urllib.parse.quote(key)
    if options.endpoint_url:
        return f"{options.endpoint_url.rstrip('/')}/{bucket}/{quoted}"
    region = client.meta.region_name
    host = f"s3.{region}.amazonaws.com" if region and region != "aws-global" else "s3.amazonaws.com"
    return f"https://{bucket}.{host}/{quoted}"


def error_code(exc: ClientError) -> str:
    """The S3 error code of a ClientError (``NoSuchBucket``, ``404``, …)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def missing_bucket(bucket: str, endpoint: str) -> I2IError:
    """The error for a bucket that does not exist."""
    return I2IError(f"bucket {bucket} does not exist at {endpoint}")


def one_line(text: object) -> str:
    """``text`` with every run of whitespace, newlines included, made one space."""
    return " ".join(str(text).split())


def explain(exc: Exception, bucket: str, key: str, endpoint: str, options: S3Options) -> I2IError:
    """A one-line, plain-words :class:`I2IError` for a boto3/botocore failure; no secrets."""
    where = f"s3://{bucket}/{key} at {endpoint}"
    if isinstance(exc, NoCredentialsError):
        return I2IError(f"no AWS credentials found; provide them through {AWS_CHAIN}")
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return I2IError(
            f"S3 request for {where} got no answer in {options.max_attempts} attempt(s) "
            f"(publish.connect_timeout {options.connect_timeout:g} s, publish.read_timeout "
            f"{options.read_timeout:g} s, publish.max_attempts {options.max_attempts})"
        )
    if isinstance(exc, BotoCoreError):
        return I2IError(f"S3 request for {where} failed after retries: {one_line(exc)}")
    if not isinstance(exc, ClientError):
        return I2IError(f"S3 request for {where} failed: {one_line(exc)}")
    code = error_code(exc)
    message = one_line(exc.response.get("Error", {}).get("Message", "") or exc)
    if code == "NoSuchBucket":
        return missing_bucket(bucket, endpoint)
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


def head_object(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's HEAD response, or None when it does not exist."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in MISSING_KEY_CODES:
            return None
        raise


def s3_headers(source: Path, options: S3Options) -> dict[str, str]:
    """The headers an upload of ``source`` sets (and that must match to skip it)."""
    return {"ContentType": content_type(source), "CacheControl": options.cache_control}


def upload_reason(
    head: Mapping[str, Any] | None, digest: str, size: int, headers: Mapping[str, str]
) -> str | None:
    """Why the object must be (re)uploaded, or None when the remote copy already matches."""
    if head is None:
        return "new object"
    if head.get("Metadata", {}).get(SHA256_META) != digest or head.get("ContentLength") != size:
        return "content differs"
    changed = [name for name, value in headers.items() if head.get(name) != value]
    return f"headers differ: {', '.join(changed)}" if changed else None


def upload(
    client: Any, source: Path, bucket: str, key: str, extra: dict[str, Any], options: S3Options
) -> None:
    """Upload one file (multipart above the threshold); botocore retries each request."""
    config = TransferConfig(
        multipart_threshold=options.multipart_threshold,
        multipart_chunksize=options.multipart_chunksize,
        max_concurrency=4,
        preferred_transfer_client="classic",
    )
    with create_transfer_manager(client, config) as manager:
        manager.upload(str(source), bucket, key, extra_args=extra).result()


def verify(head: Mapping[str, Any] | None, digest: str, size: int, where: str) -> None:
    """Raise unless the uploaded object reads back with the expected size and sha256."""
    if head is None:
        raise I2IError(f"{where}: not found right after the upload")
    remote_size = head.get("ContentLength")
    remote_digest = head.get("Metadata", {}).get(SHA256_META)
    if remote_size != size or remote_digest != digest:
        raise I2IError(
            f"{where}: upload not verified (size {remote_size} vs {size}, "
            f"sha256 {remote_digest} vs {digest})"
        )


def publish_s3(
    source: Path, bucket: str, key: str, options: S3Options, *, client: Any = None
) -> dict[str, Any]:
    """Upload ``source`` to ``s3://bucket/key`` unless the remote copy already matches."""
    client = client or s3_client(options)
    endpoint = client.meta.endpoint_url
    where = f"s3://{bucket}/{key}"
    digest, size = sha256_file(source), source.stat().st_size
    headers = s3_headers(source, options)
    try:
        head = head_object(client, bucket, key)
        reason = upload_reason(head, digest, size, headers)
        if reason:
            log.info("uploading %s to %s at %s (%s)", source, where, endpoint, reason)
            extra = {**headers, "Metadata": {SHA256_META: digest}}
            if options.acl:
                extra["ACL"] = options.acl
            upload(client, source, bucket, key, extra, options)
            head = head_object(client, bucket, key)
            verify(head, digest, size, where)
    except (ClientError, BotoCoreError) as exc:
        raise explain(exc, bucket, key, endpoint, options) from exc
    etag = str((head or {}).get("ETag", "")).strip('"')
    return {
        "url": object_url(client, options, bucket, key),
        "bucket": bucket,
        "endpoint": endpoint,
        "sha256": digest,
        "etag": etag or None,
        "size": size,
        "content_type": headers["ContentType"],
        "cache_control": options.cache_control,
        "time": timestamp((head or {}).get("LastModified")),
        "uploaded": reason is not None,
    }


def publish(
    final: str | os.PathLike[str],
    album: str,
    photo: str,
    style: str,
    settings: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish one final image; return the upload marker record once the copy is verified.

    ``settings`` is the whole ``publish`` config section, operational keys included;
    ``overrides`` replaces fields of the :class:`S3Options` built from it (retry mode,
    multipart sizes).
    """
    source = Path(final)
    target = parse_target(settings["target"])
    key = object_key(template_of(settings), target.prefix, album, photo, style)
    if target.scheme == "file":
        result = publish_file(source, Path(target.location), key)
    else:
        options = S3Options.from_settings(settings, **(overrides or {}))
        result = publish_s3(source, target.location, key, options)
    log.info("%s %s", "published" if result["uploaded"] else "unchanged", result["url"])
    return {
        "target": settings["target"],
        "key": key,
        "album": album,
        "photo": photo,
        "style": style,
        **result,
    }


def publish_to_marker(
    final: str | os.PathLike[str],
    marker: str | os.PathLike[str],
    album: str,
    photo: str,
    style: str,
    settings: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish and write the marker JSON; on any failure no marker is written.

    The marker describes the copy at the target, not this job: whether this job uploaded it
    is logged, not recorded, so a marker written again for an unchanged copy has the same
    bytes.
    """
    record = publish(final, album, photo, style, settings, overrides=overrides)
    write_json(marker, {k: v for k, v in record.items() if k != "uploaded"})
    return record


def template_of(settings: Mapping[str, Any]) -> str:
    """``publish.key_template``, or the default when it is unset or empty."""
    return settings.get("key_template") or DEFAULT_KEY_TEMPLATE
