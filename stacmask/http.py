"""stacmask's one HTTP policy: every request stacmask makes itself (search pages, collection
records, XML metadata, signing tokens) goes through `fetch` here.

- one `requests` session per process (connection reuse), following redirects to http(s) only;
- a per-attempt deadline: the connection, the headers and the whole body must arrive within
  `timeout` seconds (a server trickling bytes meets it too);
- a size cap on every body (also after gzip decoding);
- refused or broken connections and 5xx/429 answers are retried `retries` times with a short
  doubling backoff; timeouts are not retried (a silent server would multiply the wait);
- any failure is an HttpError naming the URL (credentials in it redacted) in one line.

Band rasters are read by GDAL, not here; reading/storage.py gives GDAL the same rules
(timeouts, retries, http(s)-only redirects).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Final

import orjson
import requests
import urllib3

from stacmask.errors import StacmaskError, redact

#: Seconds to wait before retry n (doubled each time): 0.25, 0.5, 1, ...
RETRY_BACKOFF_S: Final = 0.25
#: Answers worth another try.
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
#: Redirects followed per request.
MAX_REDIRECTS: Final = 5
#: Largest search page or collection record accepted (a BDC page of 1000 items is ~5 MB).
JSON_MAX_BYTES: Final = 64 * 1024 * 1024
_CHUNK: Final = 64 * 1024

_local = threading.local()


class HttpError(StacmaskError):
    """A request failed: no answer, an error status, a body too large or malformed."""

    def __init__(self, url: str, message: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{redact(url)}: {message}")
        self.url = redact(url)
        self.reason = message
        #: True when the server did not answer in time.
        self.timed_out = timed_out


def session() -> requests.Session:
    """This thread's session (connections are reused; redirects capped at MAX_REDIRECTS)."""
    current: requests.Session | None = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        current.max_redirects = MAX_REDIRECTS
        current.headers["User-Agent"] = "stacmask"
        _local.session = current
    return current


class _Retry(Exception):
    """An answer or a connection failure worth another try."""


def _attempt(
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    json: Any,
    headers: Mapping[str, str] | None,
) -> bytes:
    """One request; the body is read as it arrives, capped in size and in total time."""
    deadline = time.monotonic() + timeout
    with session().request(
        method, url, json=json, headers=headers, stream=True, timeout=timeout
    ) as response:
        status = f"HTTP {response.status_code} {str(response.reason)[:80]}"
        if response.status_code in RETRY_STATUSES:
            raise _Retry(status)
        if response.status_code != 200:
            raise HttpError(url, status)
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise HttpError(url, f"body of {length} bytes is over the {max_bytes}-byte limit")
        body = bytearray()
        # read1 returns what one socket read gives, so a server trickling bytes meets the deadline
        while chunk := response.raw.read1(_CHUNK, decode_content=True):
            body += chunk
            if len(body) > max_bytes:
                raise HttpError(url, f"body is over the {max_bytes}-byte limit")
            if time.monotonic() > deadline:
                raise HttpError(url, f"body not received within {timeout:g} s", timed_out=True)
        return bytes(body)


def fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    retries: int = 3,
    method: str = "GET",
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The body of `url` (at most `max_bytes`, each attempt within about `timeout` seconds).

    Refused or broken connections and 429/5xx answers are retried `retries` times with a short
    doubling backoff. Timeouts are not retried. Raises HttpError naming the URL.
    """
    error: Exception | None = None
    for attempt in range(max(retries, 0) + 1):
        if attempt:
            time.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 1))
        try:
            return _attempt(
                method, url, timeout=timeout, max_bytes=max_bytes, json=json, headers=headers
            )
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            raise HttpError(url, f"no answer within {timeout:g} s", timed_out=True) from exc
        except (_Retry, requests.ConnectionError, urllib3.exceptions.ProtocolError) as exc:
            error = exc
        except requests.TooManyRedirects as exc:
            raise HttpError(url, f"more than {MAX_REDIRECTS} redirects") from exc
        except requests.exceptions.InvalidSchema as exc:
            raise HttpError(url, f"redirected to a scheme other than http(s): {exc}") from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise HttpError(url, f"request failed: {redact(str(exc))[:300]}") from exc
    reason = redact(str(error))[:300]
    raise HttpError(url, f"failed after {max(retries, 0) + 1} attempt(s): {reason}") from error


def parse_json(data: bytes, url: str) -> Any:
    """`data` decoded as JSON; HttpError naming the URL and the start of the body otherwise."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        start = data[:80].decode("utf-8", "replace").replace("\n", " ").strip()
        raise HttpError(url, f"answer is not JSON (starts with {start!r})") from None


def fetch_json(
    url: str,
    *,
    timeout: float,
    max_bytes: int = JSON_MAX_BYTES,
    retries: int = 3,
    method: str = "GET",
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """`fetch` decoded as JSON (HttpError naming the URL when it is not)."""
    data = fetch(
        url,
        timeout=timeout,
        max_bytes=max_bytes,
        retries=retries,
        method=method,
        json=json,
        headers=headers,
    )
    return parse_json(data, url)
