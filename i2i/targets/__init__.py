"""Publish targets: one module per kind of place behind :class:`~i2i.targets.base.Target`.

``file://DIR`` (:mod:`i2i.targets.file`) and ``s3://bucket/prefix`` (:mod:`i2i.targets.s3`)
are registered here; another kind registers itself with :func:`register` or an entry point
in the ``i2i.targets`` group.
"""

from i2i.targets.base import (
    Head,
    Headers,
    Spec,
    Target,
    Upload,
    factory_for,
    register,
    target_for,
    upload,
    usages,
)
from i2i.targets.breaker import BreakerOpen, Unreachable
from i2i.targets.file import FileTarget
from i2i.targets.s3 import S3Target

register("file", FileTarget)
register("s3", S3Target)

__all__ = [
    "BreakerOpen",
    "FileTarget",
    "Head",
    "Headers",
    "S3Target",
    "Spec",
    "Target",
    "Unreachable",
    "Upload",
    "factory_for",
    "register",
    "target_for",
    "upload",
    "usages",
]
