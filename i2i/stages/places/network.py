"""What the network providers share: geopy options without hidden retries, errors told
transient or not, and the Google key masked in every message.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit

from i2i import I2IError
from i2i.stages.places.common import PlaceSettings

GOOGLE_KEY_VARS = ("GOOGLE_MAPS_API_KEY", "GOOGLE_API_KEY")
ERROR_CHARS = 300


def google_api_key() -> str | None:
    """The Google Maps key from the environment (never from the config)."""
    return next((os.environ[v] for v in GOOGLE_KEY_VARS if os.environ.get(v)), None)


_KEY_PARAM = re.compile(r"(key=)[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with API keys masked (``key=`` query parameters and the key itself)."""
    text = _KEY_PARAM.sub(r"\1***", text)
    key = google_api_key()
    return text.replace(key, "***") if key else text


class _RedactSecrets(logging.Filter):
    """Masks API keys in records of loggers that print request URLs (geopy, urllib3)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


for _name in ("geopy", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_RedactSecrets())


def _no_retry_adapter(*, proxies: Any, ssl_context: Any) -> Any:
    """geopy's requests adapter without hidden retries: every request is paced and counted."""
    from geopy.adapters import RequestsAdapter

    return RequestsAdapter(proxies=proxies, ssl_context=ssl_context, max_retries=0)


def geopy_options(provider: str, settings: PlaceSettings) -> dict[str, Any]:
    """Keyword arguments for a geopy geocoder: user agent, timeout, endpoint from config."""
    options: dict[str, Any] = {
        "user_agent": settings.user_agent,
        "timeout": settings.timeout,
        "adapter_factory": _no_retry_adapter,
    }
    endpoint = settings.endpoints.get(provider)
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise I2IError(
                f"places.endpoints.{provider}: {endpoint!r} is not an http(s) URL "
                "such as https://photon.example.org"
            )
        options.update(scheme=parts.scheme, domain=parts.netloc + parts.path.rstrip("/"))
    return options


def _describe(exc: BaseException) -> str:
    """One short line naming the failure, secrets masked."""
    text = " ".join(str(exc).split()) or "no details"
    text = redact(f"{type(exc).__name__}: {text}")
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def is_transient(exc: BaseException) -> bool:
    """Whether a geopy failure may pass: timeout, connection failure, HTTP 429 or 5xx."""
    from geopy.exc import GeocoderRateLimited, GeocoderTimedOut, GeocoderUnavailable

    if isinstance(exc, GeocoderRateLimited | GeocoderTimedOut | GeocoderUnavailable):
        return True
    status = getattr(exc.__cause__, "status_code", None)
    return isinstance(status, int) and status >= 500
