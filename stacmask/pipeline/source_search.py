"""Source search: the scenes of a STAC API collection, with retries and timeouts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pystac
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from requests.exceptions import RequestException
from urllib3.util.retry import Retry

from stacmask.errors import SourceError

#: Retry policy of STAC API requests: 4 tries on connection errors, 429 and 5xx, with backoff.
RETRIES = Retry(
    total=3,
    backoff_factor=0.5,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=None,
    raise_on_status=False,
)


def open_api(url: str, timeout: float) -> Client:
    """Open a STAC API, raising SourceError with the URL when it cannot be reached."""
    try:
        return Client.open(url, stac_io=StacApiIO(timeout=timeout, max_retries=RETRIES))
    except (APIError, RequestException, pystac.STACError, ValueError) as exc:
        raise SourceError(f"{url}: cannot open the STAC API: {exc}") from exc


def search_items(
    url: str,
    collection: str,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    ids: Sequence[str] | None = None,
    max_items: int | None = None,
    timeout: float = 60.0,
) -> Iterator[pystac.Item]:
    """Items of `collection` matching the filters, page by page."""
    client = open_api(url, timeout)
    params: dict[str, Any] = {"collections": [collection], "max_items": max_items}
    if bbox:
        params["bbox"] = list(bbox)
    if datetime:
        params["datetime"] = datetime
    if ids:
        params["ids"] = list(ids)
    try:
        yield from client.search(**params).items()
    except (APIError, RequestException, pystac.STACError) as exc:
        raise SourceError(f"{url}: search of {collection} failed: {exc}") from exc


def source_collection(url: str, collection: str, timeout: float = 60.0) -> dict[str, Any]:
    """The source collection's JSON, or {} when the API does not serve it."""
    try:
        found = open_api(url, timeout).get_collection(collection)
    except Exception:  # the collection record is a nicety (title, license); never fatal
        return {}
    return found.to_dict(include_self_link=False) if found is not None else {}
