"""Source search: the scenes of a STAC API collection, page by page, under stacmask's HTTP policy.

Searches are POSTed to the API's search endpoint (sent by GET when its landing page declares GET
only) with a page size (`limit`, PAGE_SIZE), the filters and an optional STAC `query`; pages are
followed through their `next` links as the services write them: a GET href (Planetary Computer,
stacmask serve), a POST body with a token (Earth Search), or a body to merge into the previous
one (Brazil Data Cube's `page` + `merge`). Every request has the build's timeout
(stacmask/http.py), so a search that never answers ends. A `next` link that repeats an earlier
request, or a page with nothing new, ends the paging with a notice; an id seen before is
skipped. Each feature is checked on its own: a bad one (no datetime, malformed) is handed to
`rejected` with its id and the others go on. An answer that is not a STAC page is a one-line
SourceError. There is no crawling of static catalogs: an API without item search is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode, urljoin

import orjson
import pystac

from stacmask.errors import SourceError
from stacmask.http import HttpError, fetch_json
from stacmask.reading.storage import REMOTE, StorageAccess, with_token

#: Items asked for per page (BDC answers 10 a page unless asked; services allow 100 or more).
PAGE_SIZE: Final = 100


def _ignore(*_: str) -> None:
    return None


def _links(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    links = page.get("links")
    return [link for link in links if isinstance(link, dict)] if isinstance(links, list) else []


def search_endpoint(url: str, landing: Mapping[str, Any]) -> tuple[str, str]:
    """(method, URL) of the API's item search: its landing page's `search` link, POST unless
    it declares GET only; `<url>/search` by POST when it has none."""
    searches = [
        link
        for link in _links(landing)
        if link.get("rel") == "search" and isinstance(link.get("href"), str)
    ]
    searches.sort(key=lambda link: str(link.get("method", "POST")).upper() != "POST")
    if searches:
        method = "GET" if str(searches[0].get("method", "POST")).upper() == "GET" else "POST"
        return method, urljoin(url, str(searches[0]["href"]))
    return "POST", url.rstrip("/") + "/search"


def _as_get(href: str, body: Mapping[str, Any]) -> str:
    """A GET search URL with the POST body's filters as query parameters."""
    params = {
        name: ",".join(map(str, value))
        if isinstance(value, list)
        else (orjson.dumps(value).decode() if isinstance(value, dict) else value)
        for name, value in body.items()
    }
    return f"{href}{'&' if '?' in href else '?'}{urlencode(params)}"


class _Pager:
    """The requests of one search: the first POST, then each page's `next` link."""

    def __init__(self, url: str, collection: str, timeout: float, access: StorageAccess) -> None:
        self.url, self.collection, self.timeout, self.access = url, collection, timeout, access
        self.seen: set[bytes] = set()

    def request(self, method: str, href: str, body: dict[str, Any] | None) -> Any:
        """The JSON answer of one request; SourceError in one line when it fails."""
        try:
            return fetch_json(
                with_token(href, self.access),
                timeout=self.timeout,
                method=method,
                json=body,
            )
        except HttpError as exc:
            raise SourceError(
                f"{self.url}: search of {self.collection} failed: {exc.url}: {exc.reason}"
            ) from exc

    def first_time(self, method: str, href: str, body: dict[str, Any] | None) -> bool:
        """True unless this request was made before (a `next` link that repeats a page)."""
        key = orjson.dumps([method, href, body], option=orjson.OPT_SORT_KEYS)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _next_request(
    page: Mapping[str, Any], href: str, body: dict[str, Any] | None
) -> tuple[str, str, dict[str, Any] | None] | None:
    """(method, href, body) of the page's `next` link, None on the last page."""
    link = next((link for link in _links(page) if link.get("rel") == "next"), None)
    if link is None or not isinstance(link.get("href"), str):
        return None
    target = urljoin(href, str(link["href"]))
    method = str(link.get("method", "GET")).upper()
    if method != "POST":
        return "GET", target, None
    given = link.get("body")
    extra: dict[str, Any] = given if isinstance(given, dict) else {}
    merged = {**(body or {}), **extra} if link.get("merge") is True else dict(extra)
    return "POST", target, merged


def _features(page: Any, where: str) -> list[Any]:
    if not isinstance(page, dict) or not isinstance(page.get("features"), list):
        kind = page.get("type") if isinstance(page, dict) else type(page).__name__
        raise SourceError(f"{where}: not an item search page (a {kind!r}, no `features` list)")
    features: list[Any] = page["features"]
    return features


def _item(feature: Any, rejected: Callable[[str, str], None]) -> pystac.Item | None:
    """The feature as an Item; None (after `rejected(id, reason)`) when it is not a valid one."""
    if not isinstance(feature, dict) or not isinstance(feature.get("id"), str):
        rejected(str(feature.get("id") if isinstance(feature, dict) else "")[:200], "no id")
        return None
    try:
        return pystac.Item.from_dict(feature, preserve_dict=False)
    except Exception as exc:  # pystac raises several types for malformed items
        rejected(feature["id"], f"invalid item: {str(exc).splitlines()[0][:300]}")
        return None


def search_items(
    url: str,
    collection: str,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    ids: Sequence[str] | None = None,
    max_items: int | None = None,
    query: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
    access: StorageAccess = REMOTE,
    page_size: int = PAGE_SIZE,
    rejected: Callable[[str, str], None] = _ignore,
    notice: Callable[[str], None] = _ignore,
) -> Iterator[pystac.Item]:
    """Items of `collection` matching the filters, page by page, each id once (module doc).

    `rejected(id, reason)` hears of each bad feature; `notice(text)` of a paging loop.
    """
    access = access.for_api(url)
    pager = _Pager(url, collection, timeout, access)
    method, endpoint = search_endpoint(url, pager.request("GET", url, None))
    first: dict[str, Any] = {"collections": [collection], "limit": page_size}
    if max_items is not None:
        first["limit"] = max(1, min(page_size, max_items))
    if bbox:
        first["bbox"] = list(bbox)
    if datetime:
        first["datetime"] = datetime
    if ids:
        first["ids"] = list(ids)
    if query:
        first["query"] = dict(query)
    request: tuple[str, str, dict[str, Any] | None] | None = (
        ("POST", endpoint, first) if method == "POST" else ("GET", _as_get(endpoint, first), None)
    )
    seen_ids: set[str] = set()
    pages = 0
    while request is not None:
        method, href, body = request
        pager.first_time(method, href, body)
        page = pager.request(method, href, body)
        pages += 1
        new = 0
        for feature in _features(page, f"{url}: search of {collection}, page {pages}"):
            item_id = feature.get("id") if isinstance(feature, dict) else None
            if isinstance(item_id, str) and item_id in seen_ids:
                continue
            new += 1
            if isinstance(item_id, str):
                seen_ids.add(item_id)
            item = _item(feature, rejected)
            if item is not None:
                yield item
            if max_items is not None and len(seen_ids) >= max_items:
                return
        request = _next_request(page, href, body)
        if request is not None and (not new or not pager.first_time(*request)):
            notice(
                f"{url}: page {pages} of the search of {collection} "
                + ("brought no new item" if not new else "links to a page already read")
                + f"; paging stopped after {len(seen_ids)} item(s)"
            )
            return


def source_collection(
    url: str, collection: str, timeout: float = 60.0, access: StorageAccess = REMOTE
) -> dict[str, Any]:
    """The source collection's JSON, or {} when the API does not serve it (AWS CBERS has no
    /collections): the record is a nicety (title, license), never fatal, never crawled for."""
    href = f"{url.rstrip('/')}/collections/{collection}"
    try:
        found = fetch_json(with_token(href, access.for_api(url)), timeout=timeout, retries=1)
    except HttpError:
        return {}
    if not isinstance(found, dict) or found.get("type") != "Collection":
        return {}
    return found
