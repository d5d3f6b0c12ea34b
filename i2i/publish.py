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

``i2i publish --dry-run`` (:func:`plan`) compares the finals with the target and changes nothing;
``i2i publish --verify`` (:func:`verify_markers`) finds markers whose copy at the target is gone
or differs, so that removing them makes the next run publish those images again.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import os
import re
import shutil
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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
from i2i.files import atomic_path, is_safe_name, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

DEFAULT_KEY_TEMPLATE = "{prefix}/{album}/{photo}_{style}.webp"
DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
DEFAULT_MAX_ATTEMPTS = 3
FINAL = "results/final/{album}/{style}/{photo}.webp"
MARKER = "results/published/{album}/{style}/{photo}.json"
KEY_FIELDS = ("album", "photo", "style")
SHA256_META = "sha256"
MIB = 1 << 20
MAX_POOL_CONNECTIONS = 32
CHECK_WORKERS = 16
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

T = TypeVar("T")
R = TypeVar("R")

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


@dataclass(frozen=True)
class Entry:
    """One image of the workflow: its final file, its marker and its key at the target."""

    album: str
    photo: str
    style: str
    final: Path
    marker: Path
    key: str


@dataclass(frozen=True)
class Change:
    """One line of the publish plan: ``new``, ``changed``, ``unchanged``, ``removed`` or
    ``not built`` (the final does not exist yet), the key and why."""

    action: str
    key: str
    detail: str = ""


@dataclass(frozen=True)
class BadMarker:
    """A marker whose copy at the target is gone or differs."""

    marker: Path
    reason: str


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
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
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
    """Publish and write the marker JSON; on any failure no marker is written."""
    record = publish(final, album, photo, style, settings, overrides=overrides)
    write_json(marker, record)
    return record


def template_of(settings: Mapping[str, Any]) -> str:
    """``publish.key_template``, or the default when it is unset or empty."""
    return settings.get("key_template") or DEFAULT_KEY_TEMPLATE


def entries(
    workdir: Path,
    photos: Iterable[tuple[str, str]],
    styles: Iterable[str],
    settings: Mapping[str, Any],
) -> list[Entry]:
    """Every ``(album, photo)`` in every style: its final, its marker and its key."""
    target = parse_target(settings["target"])
    template = template_of(settings)
    names = list(styles)
    return [
        Entry(
            album,
            photo,
            style,
            workdir / FINAL.format(album=album, style=style, photo=photo),
            workdir / MARKER.format(album=album, style=style, photo=photo),
            object_key(template, target.prefix, album, photo, style),
        )
        for album, photo in photos
        for style in names
    ]


def key_shape(template: str, prefix: str) -> str:
    """The key ``template`` gives under ``prefix`` with each field as ``\\0name\\0``."""
    return object_key(template, prefix, *(f"\0{name}\0" for name in KEY_FIELDS))


def key_pattern(template: str, prefix: str) -> re.Pattern[str]:
    """A regex that matches every key ``template`` gives under ``prefix``; fields are groups."""
    pieces = re.split(f"\0({'|'.join(KEY_FIELDS)})\0", key_shape(template, prefix))
    regex, seen = [], set()
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            regex.append(re.escape(piece))
        elif piece in seen:
            regex.append(f"(?P={piece})")
        else:
            seen.add(piece)
            regex.append(f"(?P<{piece}>[^/]+)")
    return re.compile("".join(regex))


def image_key(pattern: re.Pattern[str], key: str) -> bool:
    """True if the template could have given ``key``: its fields are safe names (this leaves
    out gallery pages and thumbnails, hidden and temporary files)."""
    match = pattern.fullmatch(key)
    return match is not None and all(is_safe_name(v) for v in match.groupdict().values())


def listing_prefix(template: str, prefix: str) -> str:
    """The literal start that every key of ``template`` under ``prefix`` shares."""
    return key_shape(template, prefix).split("\0")[0]


def parallel(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``function`` over ``items`` in threads (network and disk bound), results in order."""
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(CHECK_WORKERS, len(items))) as pool:
        return list(pool.map(function, items))


class Store:
    """Read-only access to the target of a ``publish`` config section, for plans and checks."""

    def __init__(self, workdir: Path, settings: Mapping[str, Any]) -> None:
        self.target = parse_target(settings["target"])
        self.template = template_of(settings)
        self.root = workdir / self.target.location
        self.options = S3Options()
        self.client: Any = None
        if self.target.scheme == "s3":
            self.options = S3Options.from_settings(settings)
            self.client = s3_client(self.options)

    def failure(self, exc: Exception, key: str) -> I2IError:
        """A botocore failure in plain words."""
        endpoint = self.client.meta.endpoint_url
        return explain(exc, self.target.location, key, endpoint, self.options)

    def listing(self) -> dict[str, int]:
        """The size of every object at the target that the key template could have given."""
        pattern = key_pattern(self.template, self.target.prefix)
        start = listing_prefix(self.template, self.target.prefix)
        return {key: size for key, size in self.objects(start) if image_key(pattern, key)}

    def objects(self, start: str) -> Iterator[tuple[str, int]]:
        """Every file or object at the target (under ``start`` for S3) with its size."""
        if self.target.scheme == "file":
            if self.root.is_dir():
                for folder, _, names in os.walk(self.root):
                    for name in names:
                        path = Path(folder, name)
                        if path.is_file():
                            yield path.relative_to(self.root).as_posix(), path.stat().st_size
            return
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.target.location, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"], item["Size"]
        except (ClientError, BotoCoreError) as exc:
            raise self.failure(exc, start) from exc

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD answer, or None when it does not exist."""
        try:
            return head_object(self.client, self.target.location, key)
        except (ClientError, BotoCoreError) as exc:
            raise self.failure(exc, key) from exc

    def difference(self, source: Path, key: str) -> str | None:
        """Why publishing ``source`` at ``key`` would change what is there, or None."""
        digest, size = sha256_file(source), source.stat().st_size
        if self.target.scheme == "file":
            copy = self.root / key
            if not copy.is_file():
                return "new object"
            same = copy.stat().st_size == size and sha256_file(copy) == digest
            return None if same else "content differs"
        headers = s3_headers(source, self.options)
        return upload_reason(self.head(key), digest, size, headers)

    def mismatch(self, key: str, digest: str, size: int) -> str | None:
        """What is wrong with the copy at ``key`` against a marker's sha256 and size, or None."""
        if self.target.scheme == "file":
            copy = self.root / key
            if not copy.is_file():
                return f"{copy} is missing"
            found_size, found_digest = copy.stat().st_size, sha256_file(copy)
        else:
            head = self.head(key)
            if head is None:
                return f"s3://{self.target.location}/{key} is missing"
            found_size = head.get("ContentLength")
            found_digest = head.get("Metadata", {}).get(SHA256_META)
        if found_digest != digest:
            return f"{key}: sha256 {found_digest} at the target, {digest} in the marker"
        if found_size != size:
            return f"{key}: {found_size} bytes at the target, {size} in the marker"
        return None


def plan(workdir: Path, images: Sequence[Entry], settings: Mapping[str, Any]) -> list[Change]:
    """What publishing ``images`` would do at the target, read-only: ``new``, ``changed``,
    ``unchanged`` and ``not built`` per image, then ``removed`` for each image object at the
    target that no image maps to (publishing leaves those in place)."""
    store = Store(workdir, settings)
    present = store.listing()

    def change(entry: Entry) -> Change:
        if not entry.final.is_file():
            return Change("not built", entry.key)
        if entry.key not in present:
            return Change("new", entry.key)
        if store.target.scheme == "s3" and present[entry.key] != entry.final.stat().st_size:
            return Change("changed", entry.key, "content differs")
        reason = store.difference(entry.final, entry.key)
        return Change("changed", entry.key, reason) if reason else Change("unchanged", entry.key)

    changes = parallel(change, images)
    wanted = {entry.key for entry in images}
    changes += [Change("removed", key) for key in sorted(present) if key not in wanted]
    return changes


def marker_problem(store: Store, entry: Entry, settings: Mapping[str, Any]) -> str | None:
    """Why the marker of ``entry`` no longer stands for a good copy at the target, or None."""
    try:
        record = read_json(entry.marker)
        digest, size = str(record["sha256"]), int(record["size"])
        published_to = (record["target"], record["key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable marker ({one_line(exc)})"
    if published_to != (settings["target"], entry.key):
        return (
            f"published to {published_to[0]} as {published_to[1]}; the config now gives "
            f"{settings['target']} as {entry.key}"
        )
    return store.mismatch(entry.key, digest, size)


def verify_markers(
    workdir: Path, images: Sequence[Entry], settings: Mapping[str, Any]
) -> tuple[int, list[BadMarker]]:
    """Check the copy behind every existing marker of ``images``; nothing is changed.

    Returns how many markers were checked and the bad ones. A failure to reach the target
    raises :class:`I2IError`: only a definite answer (missing, different) makes a marker bad.
    """
    store = Store(workdir, settings)
    marked = [entry for entry in images if entry.marker.is_file()]
    problems = parallel(lambda entry: marker_problem(store, entry, settings), marked)
    bad = [BadMarker(e.marker, p) for e, p in zip(marked, problems, strict=True) if p]
    return len(marked), bad


def remove_markers(bad: Iterable[BadMarker]) -> None:
    """Delete bad markers: the next ``snakemake`` run publishes their images again."""
    for item in bad:
        item.marker.unlink(missing_ok=True)
        log.info("removed %s", item.marker)


def plan_lines(changes: Sequence[Change], target: str) -> list[str]:
    """The plan as text: one line per image to upload or object left over, then a summary."""
    lines = [
        f"{c.action:<8} {c.key}" + (f"  ({c.detail})" if c.detail else "")
        for c in changes
        if c.action in {"new", "changed", "removed"}
    ]
    counts = {action: 0 for action in ("new", "changed", "unchanged", "removed", "not built")}
    for c in changes:
        counts[c.action] += 1
    summary = ", ".join(f"{n} {action}" for action, n in counts.items())
    lines.append(f"dry run for {target}: {summary}; nothing was written or deleted")
    if counts["removed"]:
        lines.append(
            "removed: no current photo and style maps to them (publishing deletes nothing)"
        )
    return lines


def verify_lines(checked: int, bad: Sequence[BadMarker], workdir: Path, removed: bool) -> list[str]:
    """The check as text: one line per bad marker, then a summary."""
    lines = [f"bad {relative(item.marker, workdir)}: {item.reason}" for item in bad]
    summary = f"{checked} marker(s) checked, {checked - len(bad)} good, {len(bad)} bad"
    if bad:
        summary += (
            "; removed them: the next snakemake run publishes those images again"
            if removed
            else "; dry run: kept them"
        )
    return [*lines, summary]


def relative(path: Path, workdir: Path) -> str:
    """``path`` relative to ``workdir`` when it is inside it."""
    try:
        return str(path.relative_to(workdir))
    except ValueError:
        return str(path)
