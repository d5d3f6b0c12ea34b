"""The one-line reason of an expected failure, shared by the run machinery that logs a failed
job and the stages that report a failure in their own words (preprocess)."""

from __future__ import annotations

import errno

from i2i import I2IError

DISK_FULL = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
}


def failure_reason(exc: BaseException) -> str | None:
    """A plain one-line reason for an expected failure; None when it needs a traceback.

    Expected are ``I2IError``, a full disk (ENOSPC, EDQUOT) and what a bad photo makes the
    image libraries raise from any stage (:func:`i2i.core.images.image_failure`).
    """
    if isinstance(exc, I2IError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return DISK_FULL[exc.errno]
    from i2i.core.images import image_failure

    return image_failure(exc)
