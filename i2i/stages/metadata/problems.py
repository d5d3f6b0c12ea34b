"""What Pillow and pillow-heif warn about while a photo is read, as its record's problems."""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

_IMAGE_MODULES = re.compile(r"(PIL|pillow_heif)(\.|$)")
_NEVER_RECORDED = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)


class _Capture(threading.local):
    """Per thread: the problems list of the capture running in it, if any."""

    problems: list[str] | None = None
    passing_on: bool = False


_capture = _Capture()
_routing = threading.Lock()
_passed_on: list[Callable[..., None]] = [warnings.showwarning]


@cache
def _library_folders() -> tuple[str, ...]:
    """The folders of Pillow and pillow-heif, whose warnings a capture records."""
    import PIL
    import pillow_heif

    return tuple(str(Path(module.__file__).parent) + os.sep for module in (PIL, pillow_heif))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning``: an image library's warning goes to this thread's capture."""
    problems = _capture.problems
    if (
        problems is not None
        and not issubclass(category, _NEVER_RECORDED)
        and filename.startswith(_library_folders())
    ):
        problems.append(f"{category.__name__}: {message}")
    elif _capture.passing_on:  # a hook installed over this one hands the warning back
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
    else:
        _capture.passing_on = True
        try:
            _passed_on[0](message, category, filename, lineno, file, line)
        finally:
            _capture.passing_on = False


def _route_warnings() -> None:
    """Put :func:`_show_warning` in front of whatever shows warnings now (idempotent).

    Checked at every capture, since ``warnings.catch_warnings`` (pytest wraps each test in one)
    restores an earlier hook on exit. The image libraries' warnings get the ``always`` action:
    with ``default``, a message repeated from one code line is shown once per process, so
    whether a photo's record has it would depend on which photo was read first.
    """
    with _routing:
        if warnings.showwarning is not _show_warning:
            _passed_on[0] = warnings.showwarning
            warnings.showwarning = _show_warning
        for category in (UserWarning, RuntimeWarning):
            if ("always", None, category, _IMAGE_MODULES, 0) not in warnings.filters:
                warnings.filterwarnings("always", category=category, module=_IMAGE_MODULES.pattern)


@contextmanager
def image_warnings_as_problems(problems: list[str]) -> Iterator[None]:
    """Record in ``problems`` what Pillow and pillow-heif warn about in this thread meanwhile.

    Thread-safe: other threads' warnings, and warnings from other code, are shown as usual;
    deprecation and resource warnings (a finalizer can run in any thread) are never recorded,
    and a repeated warning is recorded every time.
    """
    _route_warnings()
    outer, _capture.problems = _capture.problems, problems
    try:
        yield
    finally:
        _capture.problems = outer
