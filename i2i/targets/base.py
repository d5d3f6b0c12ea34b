"""The interface every publish target implements, the registry of targets by URL scheme, and
the one upload path (head, compare, put, verify) that publishing and the gallery share. Every
upload goes through the target's breaker (:mod:`i2i.targets.breaker`): a target that raises
:class:`~i2i.targets.breaker.Unreachable` when it cannot be reached gets it with no code of
its own.

A target is made from ``publish.target`` (``scheme://location``) and the ``publish`` config
section by the factory registered for its scheme: :func:`register` in code, or an entry point
in the ``i2i.targets`` group of an installed distribution (``toy = toy_target:ToyTarget``), so a
new target needs no edit here.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from i2i import I2IError
from i2i.core.files import sha256_file
from i2i.targets.breaker import SETTING as BREAKER_SETTING
from i2i.targets.breaker import Breaker

log = logging.getLogger(__name__)

ENTRY_POINTS = "i2i.targets"

# Headers by their boto3 names (``ContentType``, ``CacheControl``): what a client of the target
# sees. A target keeps those it can and reports them in :attr:`Head.headers`.
Headers = Mapping[str, str]


@dataclass(frozen=True)
class Spec:
    """What a target is made from: ``url`` is ``publish.target``, ``location`` what follows
    ``scheme://``, ``settings`` the whole ``publish`` section, ``base`` the folder a relative
    location is under, ``overrides`` fields of the target's own options (tests, benchmarks)."""

    url: str
    location: str
    settings: Mapping[str, Any]
    base: str | os.PathLike[str] = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Head:
    """What a target holds at one key: size, sha256, the headers it keeps (a name it does not
    keep is absent), and where it has them an ETag and when the copy was written."""

    size: int
    sha256: str | None
    headers: Mapping[str, str | None] = field(default_factory=dict)
    etag: str | None = None
    modified: dt.datetime | None = None


class Target(ABC):
    """A place that holds files by key: a folder, a bucket, a dict in a test."""

    #: How a ``publish.target`` of this kind is written, for error messages.
    usage: ClassVar[str] = "SCHEME://LOCATION"
    #: The ``publish`` settings besides ``target`` and ``key_template`` that change what this
    #: target holds (headers, ACLs, which store): they count in the rules' params.
    output_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, spec: Spec) -> None:
        self.url = spec.url
        #: The key prefix of the images and the gallery index.
        self.prefix = ""
        #: The local folder that holds the keys, when the target is one: the gallery is built
        #: there in place. Otherwise it is built in a local folder and uploaded.
        self.folder: str | None = None
        #: Shared by the run's jobs on this host when ``publish.breaker_dir`` is set.
        self.breaker = Breaker.in_folder(spec.settings.get(BREAKER_SETTING), spec.url)

    @abstractmethod
    def head(self, key: str) -> Head | None:
        """What is at ``key``, or None when nothing is."""

    @abstractmethod
    def put(self, source: Path, key: str, headers: Headers, digest: str) -> None:
        """Write ``source`` (sha256 ``digest``) at ``key`` with ``headers``; a reader never sees
        half of it."""

    @abstractmethod
    def objects(self, start: str) -> Iterator[tuple[str, int]]:
        """Every key that starts with ``start``, with its size."""

    @abstractmethod
    def read(self, key: str, limit: int) -> bytes | None:
        """The first ``limit`` bytes at ``key``, or None when nothing is there."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing there is fine)."""

    @abstractmethod
    def link(self, key: str) -> str:
        """The public URL of ``key``."""

    @abstractmethod
    def where(self, key: str) -> str:
        """``key`` as a user finds it (a path, an ``s3://`` URL), for messages and logs."""

    def details(self, headers: Headers) -> dict[str, Any]:
        """Marker fields this target adds to the URL, sha256, ETag, size and time."""
        return {}

    def check(self) -> str:
        """A line for ``i2i check`` on what was found; raise :class:`I2IError` when the target
        cannot be used."""
        return self.url


Factory = Callable[[Spec], Target]

_factories: dict[str, Factory] = {}


def register(scheme: str, factory: Factory) -> None:
    """Make ``scheme://`` targets with ``factory`` (a :class:`Target` class)."""
    _factories[scheme] = factory


def factory_for(scheme: str) -> Factory | None:
    """The factory of ``scheme``: registered, else from an ``i2i.targets`` entry point."""
    if scheme not in _factories:
        for point in entry_points(group=ENTRY_POINTS, name=scheme):
            register(scheme, point.load())
    return _factories.get(scheme)


def usages() -> str:
    """How every known target is written: ``file://DIR or s3://bucket/prefix``."""
    for point in entry_points(group=ENTRY_POINTS):
        factory_for(point.name)
    known = [getattr(factory, "usage", f"{scheme}://…") for scheme, factory in _factories.items()]
    return " or ".join(known)


def target_for(
    url: str,
    settings: Mapping[str, Any] | None = None,
    *,
    base: str | os.PathLike[str] = "",
    overrides: Mapping[str, Any] | None = None,
) -> Target:
    """The target of ``publish.target`` ``url``; ``settings`` is the ``publish`` section."""
    scheme, sep, location = url.partition("://")
    factory = factory_for(scheme) if sep and location else None
    if factory is None:
        raise I2IError(f"publish.target {url!r}: use {usages()}")
    return factory(Spec(url, location, settings or {}, base, overrides or {}))


def one_line(text: object) -> str:
    """``text`` with every run of whitespace, newlines included, made one space."""
    return " ".join(str(text).split())


def upload_reason(head: Head | None, digest: str, size: int, headers: Headers) -> str | None:
    """Why a file must be (re)uploaded, or None when the copy at the target already matches."""
    if head is None:
        return "new object"
    if head.sha256 != digest or head.size != size:
        return "content differs"
    changed = [n for n, v in headers.items() if n in head.headers and head.headers[n] != v]
    return f"headers differ: {', '.join(changed)}" if changed else None


def verify(head: Head | None, digest: str, size: int, where: str) -> Head:
    """``head`` of an uploaded copy; raise unless it has the expected size and sha256."""
    if head is None:
        raise I2IError(f"{where}: not found right after the upload")
    if head.size != size or head.sha256 != digest:
        raise I2IError(
            f"{where}: upload not verified (size {head.size} vs {size}, "
            f"sha256 {head.sha256} vs {digest})"
        )
    return head


@dataclass(frozen=True)
class Upload:
    """The outcome of :func:`upload`: the file's sha256 and size, the verified copy, and why it
    was written (None: it was already there)."""

    sha256: str
    size: int
    head: Head
    reason: str | None


def upload(target: Target, source: Path, key: str, headers: Headers) -> Upload:
    """Put ``source`` at ``key`` unless the target holds the same bytes and headers there;
    a copy written is read back and verified. The target's breaker counts how it ends and
    fails it at once while open."""
    digest, size = sha256_file(source), source.stat().st_size
    with target.breaker.guard():
        head = target.head(key)
        reason = upload_reason(head, digest, size, headers)
        if head is None or reason:
            log.info("uploading %s to %s (%s)", source, target.where(key), reason)
            target.put(source, key, headers, digest)
            head = verify(target.head(key), digest, size, target.where(key))
    return Upload(digest, size, head, reason)
