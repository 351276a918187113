"""`stacmask serve`: one read-only local server for a catalog built by `stacmask build`.

- `/` ... a STAC API (landing page, conformance, queryables, collections, items, item
  search by GET and POST with CQL2 filter and sortby) over the catalog's items; the
  selection is `stacmask.serve.query`, the same code `stacmask search` runs.
- `/catalog/...` the static catalog files, COGs (HTTP range requests) and previews.
- `/browser/` STAC Browser (built by `stacmask browser build`), opening on this API.

Every route is read-only (other methods get 405), CORS is open to any origin, and the static
route never serves a file outside the catalog folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stacmask.errors import QueryError
from stacmask.serve.browser import browser_dist
from stacmask.serve.query import (
    CatalogIndex,
    IndexedItem,
    JsonDict,
    SearchResult,
    parse_search,
    resolve_hrefs,
    search_page,
)

API_VERSION = "v1.0.0"
#: Exactly the conformance classes this server implements (and its tests exercise).
CONFORMANCE: tuple[str, ...] = (
    f"https://api.stacspec.org/{API_VERSION}/core",
    f"https://api.stacspec.org/{API_VERSION}/collections",
    f"https://api.stacspec.org/{API_VERSION}/ogcapi-features",
    f"https://api.stacspec.org/{API_VERSION}/item-search",
    f"https://api.stacspec.org/{API_VERSION}/item-search#sort",
    f"https://api.stacspec.org/{API_VERSION}/item-search#filter",
    f"https://api.stacspec.org/{API_VERSION}/ogcapi-features#sort",
    f"https://api.stacspec.org/{API_VERSION}/ogcapi-features#filter",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus-points",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
)
GEOJSON = "application/geo+json"
STAC_JSON = "application/json"
CATALOG_PREFIX = "catalog"


class CatalogFiles(StaticFiles):
    """Static files of the catalog folder: no dot-files, nothing outside the folder.

    StaticFiles already resolves symlinks (follow_symlink=False) and refuses any path whose
    real location is outside the folder; this adds a refusal of hidden files (`.git`, lock).
    """

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """The file for a URL path, or no file for dot-files and paths leaving the folder."""
        if any(part.startswith(".") for part in Path(path).parts):
            return "", None
        return super().lookup_path(path)


class JsonResponse(JSONResponse):
    """JSON with the given media type, not ASCII-escaped."""

    def render(self, content: Any) -> bytes:
        """Compact UTF-8 JSON."""
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(status: int, code: str, description: str) -> JsonResponse:
    return JsonResponse({"code": code, "description": description}, status_code=status)


def create_app(catalog_dir: Path | str, *, browser_dir: Path | None = None) -> Starlette:
    """The server's ASGI app over `catalog_dir` (read once, at start)."""
    index = CatalogIndex.load(catalog_dir)
    browser = browser_dir if browser_dir is not None else browser_dist()
    api = StacApi(index)

    routes: list[Route | Mount] = [
        Route("/", api.landing),
        Route("/conformance", api.conformance),
        Route("/queryables", api.queryables),
        Route("/collections", api.collections),
        Route("/collections/{collection_id}", api.collection),
        Route("/collections/{collection_id}/queryables", api.queryables),
        Route("/collections/{collection_id}/items", api.items),
        Route("/collections/{collection_id}/items/{item_id}", api.item),
        Route("/search", api.search, methods=["GET", "POST"]),
        Route("/browser", _redirect_to_browser),
        Route("/browser/config.js", _browser_config),
        Mount(f"/{CATALOG_PREFIX}", CatalogFiles(directory=index.root, follow_symlink=False)),
    ]
    if browser is not None and (browser / "index.html").is_file():
        routes.append(Mount("/browser", StaticFiles(directory=browser, html=True)))
    else:
        routes.append(Route("/browser/{rest:path}", _browser_missing))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        return JsonResponse(
            {"code": str(exc.status_code), "description": exc.detail},
            status_code=exc.status_code,
            headers=headers,
        )

    async def query_error(request: Request, exc: Exception) -> Response:
        return _error(400, "BadRequest", str(exc))

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                allow_headers=["*"],
                expose_headers=["Content-Range", "Accept-Ranges", "Content-Length", "ETag"],
            )
        ],
        exception_handlers={HTTPException: http_error, QueryError: query_error},
    )
    app.state.index = index
    return app


async def _redirect_to_browser(request: Request) -> Response:
    return RedirectResponse(url=str(request.url.replace(path="/browser/", query="")))


async def _browser_config(request: Request) -> Response:
    """STAC Browser's runtime settings, loaded before the app: open on this server's API."""
    settings = {
        "catalogUrl": str(request.base_url),
        "catalogTitle": "stacmask",
        "allowExternalAccess": False,
        "displayGeoTiffByDefault": False,
    }
    script = f"window.STAC_BROWSER_CONFIG = {json.dumps(settings)};\n"
    return Response(script, media_type="text/javascript")


async def _browser_missing(request: Request) -> Response:
    return PlainTextResponse(
        "STAC Browser is not built. Run `stacmask browser build` (needs node and npm), "
        "then restart `stacmask serve`.\n",
        status_code=404,
    )


class StacApi:
    """Handlers of the STAC API routes over one `CatalogIndex`."""

    def __init__(self, index: CatalogIndex) -> None:
        self.index = index
        self.by_id = {(entry.collection, entry.id): entry for entry in index.items}

    # -- URL helpers ------------------------------------------------------------------------
    @staticmethod
    def _base(request: Request) -> str:
        return str(request.base_url)

    def _file_url(self, request: Request, relpath: str) -> str:
        return f"{self._base(request)}{CATALOG_PREFIX}/{quote(relpath)}"

    def _item_json(self, request: Request, entry: IndexedItem) -> JsonDict:
        base = self._base(request)
        file_url = self._file_url(request, entry.relpath)
        item = resolve_hrefs(entry.item, lambda href: urljoin(file_url, href))
        collection = entry.collection
        item["collection"] = collection
        keep = [
            link
            for link in item.get("links", [])
            if link.get("rel") not in ("self", "root", "parent", "collection")
        ]
        own = [
            {"rel": "self", "href": self._item_url(base, entry), "type": GEOJSON},
            {"rel": "root", "href": base, "type": STAC_JSON},
            {"rel": "alternate", "href": file_url, "type": STAC_JSON, "title": "Static file"},
        ]
        if collection:
            collection_url = f"{base}collections/{quote(collection)}"
            own += [
                {"rel": "parent", "href": collection_url, "type": STAC_JSON},
                {"rel": "collection", "href": collection_url, "type": STAC_JSON},
            ]
        item["links"] = own + keep
        return item

    @staticmethod
    def _item_url(base: str, entry: IndexedItem) -> str:
        if entry.collection:
            return f"{base}collections/{quote(entry.collection)}/items/{quote(entry.id)}"
        return f"{base}search?ids={quote(entry.id)}"

    def _collection_json(self, request: Request, collection_id: str) -> JsonDict:
        entry = self.index.collections.get(collection_id)
        if entry is None:
            raise HTTPException(404, f"no collection {collection_id!r}")
        base = self._base(request)
        file_url = self._file_url(request, entry.relpath)
        doc = resolve_hrefs(entry.collection, lambda href: urljoin(file_url, href))
        url = f"{base}collections/{quote(entry.id)}"
        keep = [
            link
            for link in doc.get("links", [])
            if link.get("rel") not in ("self", "root", "parent", "item", "child")
        ]
        doc["links"] = [
            {"rel": "self", "href": url, "type": STAC_JSON},
            {"rel": "root", "href": base, "type": STAC_JSON},
            {"rel": "parent", "href": base, "type": STAC_JSON},
            {"rel": "items", "href": f"{url}/items", "type": GEOJSON},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "href": f"{url}/queryables",
                "type": "application/schema+json",
            },
            {"rel": "alternate", "href": file_url, "type": STAC_JSON, "title": "Static file"},
            *keep,
        ]
        return doc

    def _page(
        self, request: Request, result: SearchResult, params: dict[str, Any], post: bool
    ) -> JsonResponse:
        base = self._base(request)
        links: list[JsonDict] = [{"rel": "root", "href": base, "type": STAC_JSON}]
        for rel, offset in (("next", result.next_offset), ("prev", result.previous_offset)):
            if offset is None:
                continue
            if post:
                body = {**params, "token": str(offset)}
                links.append(
                    {
                        "rel": rel,
                        "href": str(request.url),
                        "type": GEOJSON,
                        "method": "POST",
                        "body": body,
                        "merge": False,
                    }
                )
            else:
                query = {**params, "token": str(offset)}
                href = str(request.url.replace(query=urlencode(query)))
                links.append({"rel": rel, "href": href, "type": GEOJSON})
        body = {
            "type": "FeatureCollection",
            "features": [self._item_json(request, entry) for entry in result.items],
            "links": links,
            "numberMatched": result.matched,
            "numberReturned": len(result.items),
        }
        return JsonResponse(body, media_type=GEOJSON)

    # -- routes ----------------------------------------------------------------------------
    async def landing(self, request: Request) -> Response:
        """Landing page: the root catalog with links to the API's parts."""
        base = self._base(request)
        catalog = self.index.catalog
        links: list[JsonDict] = [
            {"rel": "self", "href": base, "type": STAC_JSON},
            {"rel": "root", "href": base, "type": STAC_JSON},
            {"rel": "conformance", "href": f"{base}conformance", "type": STAC_JSON},
            {"rel": "data", "href": f"{base}collections", "type": STAC_JSON},
            {"rel": "search", "href": f"{base}search", "type": GEOJSON, "method": "GET"},
            {"rel": "search", "href": f"{base}search", "type": GEOJSON, "method": "POST"},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "href": f"{base}queryables",
                "type": "application/schema+json",
            },
            {
                "rel": "alternate",
                "href": f"{base}{CATALOG_PREFIX}/catalog.json",
                "type": STAC_JSON,
                "title": "Static catalog",
            },
        ]
        for collection_id, entry in self.index.collections.items():
            links.append(
                {
                    "rel": "child",
                    "href": f"{base}collections/{quote(collection_id)}",
                    "type": STAC_JSON,
                    "title": entry.collection.get("title", collection_id),
                }
            )
        body = {
            "type": "Catalog",
            "stac_version": catalog.get("stac_version", "1.1.0"),
            "id": catalog.get("id", "stacmask"),
            "title": catalog.get("title", "stacmask catalog"),
            "description": catalog.get("description", "Masks served by stacmask"),
            "conformsTo": list(CONFORMANCE),
            "links": links,
        }
        return JsonResponse(body)

    async def conformance(self, request: Request) -> Response:
        """The conformance classes this server implements."""
        return JsonResponse({"conformsTo": list(CONFORMANCE)})

    async def queryables(self, request: Request) -> Response:
        """JSON Schema of the fields a filter may use (item properties seen in the catalog)."""
        collection_id = request.path_params.get("collection_id")
        if collection_id is not None and collection_id not in self.index.collections:
            raise HTTPException(404, f"no collection {collection_id!r}")
        properties: JsonDict = {
            "id": {"title": "Item ID", "type": "string"},
            "collection": {"title": "Collection ID", "type": "string"},
            # No $ref to geojson.org: clients must work offline.
            "geometry": {"title": "Footprint", "type": "object", "format": "geometry-any"},
            "datetime": {"title": "Acquired", "type": "string", "format": "date-time"},
            **{k: v for k, v in self.index.queryables.items() if k != "datetime"},
        }
        body = {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": str(request.url),
            "type": "object",
            "title": "Queryables",
            "properties": properties,
            "additionalProperties": False,
        }
        return JsonResponse(body, media_type="application/schema+json")

    async def collections(self, request: Request) -> Response:
        """Every collection of the catalog."""
        base = self._base(request)
        body = {
            "collections": [self._collection_json(request, cid) for cid in self.index.collections],
            "links": [
                {"rel": "self", "href": f"{base}collections", "type": STAC_JSON},
                {"rel": "root", "href": base, "type": STAC_JSON},
            ],
        }
        return JsonResponse(body)

    async def collection(self, request: Request) -> Response:
        """One collection."""
        return JsonResponse(self._collection_json(request, request.path_params["collection_id"]))

    async def items(self, request: Request) -> Response:
        """Items of one collection, with the same selection parameters as /search."""
        collection_id = request.path_params["collection_id"]
        if collection_id not in self.index.collections:
            raise HTTPException(404, f"no collection {collection_id!r}")
        params = dict(request.query_params)
        if collection_id not in params.get("collections", collection_id).split(","):
            raise QueryError(f"collections {params['collections']!r} excludes {collection_id!r}")
        search = parse_search({**params, "collections": collection_id}, method="GET")
        result = await run_in_threadpool(search_page, self.index, search)
        return self._page(request, result, params, post=False)

    async def item(self, request: Request) -> Response:
        """One item."""
        collection_id = request.path_params["collection_id"]
        item_id = request.path_params["item_id"]
        entry = self.by_id.get((collection_id, item_id))
        if entry is None:
            raise HTTPException(404, f"no item {item_id!r} in collection {collection_id!r}")
        return JsonResponse(self._item_json(request, entry), media_type=GEOJSON)

    async def search(self, request: Request) -> Response:
        """Item search by GET (query string) or POST (JSON body)."""
        if request.method == "POST":
            try:
                params = await request.json()
            except ValueError:
                raise QueryError("POST /search: the body is not JSON") from None
            if not isinstance(params, dict):
                raise QueryError("POST /search: the body must be a JSON object")
            search = parse_search(params, method="POST")
            result = await run_in_threadpool(search_page, self.index, search)
            return self._page(request, result, params, post=True)
        query = dict(request.query_params)
        search = parse_search(query, method="GET")
        result = await run_in_threadpool(search_page, self.index, search)
        return self._page(request, result, query, post=False)
