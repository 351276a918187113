"""`stacmask serve`: one read-only local server for a catalog built by `stacmask build`.

- `/` ... a STAC API (landing page, OpenAPI description at /api, conformance, queryables,
  sortables, collections, items, item search by GET and POST with CQL2 filter and sortby) over
  the catalog's DuckDB index; the selection is `stacmask.serve.query`, the same code
  `stacmask search` runs.
- `/catalog/...` the static catalog files, COGs (HTTP range requests) and previews.
- `/browser/` STAC Browser (built by `stacmask browser build`), opening on this API.

Every route is read-only (other methods get 405), CORS is open to any origin, the static
route never serves a file outside the catalog folder, and a malformed or hostile request gets
a 400 (414 for an overlong URL, 413 for an overlong body) with a short JSON description.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from stacmask.catalog.index import CatalogIndex
from stacmask.errors import QueryError
from stacmask.serve.browser import browser_dist
from stacmask.serve.features import RenderedItems
from stacmask.serve.files import CatalogFiles
from stacmask.serve.openapi import OPENAPI_MEDIA_TYPE, openapi_document, openapi_page
from stacmask.serve.params import Search
from stacmask.serve.query import (
    IndexedItem,
    JsonDict,
    SearchResult,
    find_item,
    parse_search,
    resolve_hrefs,
    search_page,
    url_resolver,
)
from stacmask.serve.tiles import render_tile

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
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
)
GEOJSON = "application/geo+json"
STAC_JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
CATALOG_PREFIX = "catalog"
#: Longest request target (path and query) answered; longer ones get 414.
MAX_URL_BYTES = 16_384
#: Largest POST body read; larger ones get 413.
MAX_BODY_BYTES = 1_000_000
#: Kinds of property that /sortables offers (scalars).
SORTABLE_KINDS = frozenset({"integer", "number", "string", "boolean", "date-time"})


class UrlLengthLimit:
    """ASGI middleware: a 414 with a short JSON message for request targets over the limit."""

    def __init__(self, app: ASGIApp, limit: int = MAX_URL_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse overlong targets before routing; pass everything else on."""
        if scope["type"] == "http":
            length = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            if length > self.limit:
                response = _error(414, "URITooLong", f"request target over {self.limit} bytes")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class JsonResponse(JSONResponse):
    """JSON with the given media type, not ASCII-escaped."""

    def render(self, content: Any) -> bytes:
        """Compact UTF-8 JSON (orjson: the serializing is a good part of a page's cost)."""
        return orjson.dumps(content)


def _error(status: int, code: str, description: str) -> JsonResponse:
    return JsonResponse({"code": code, "description": description}, status_code=status)


def create_app(catalog_dir: Path | str, *, browser_dir: Path | None = None) -> Starlette:
    """The server's ASGI app over `catalog_dir` (its index is caught up at start and then
    whenever the catalog changes)."""
    index = CatalogIndex(catalog_dir)
    browser = browser_dir if browser_dir is not None else browser_dist()
    api = StacApi(index)

    routes: list[Route | Mount] = [
        Route("/", api.landing),
        Route("/api", api.service_description),
        Route("/api.html", api.service_page),
        Route("/conformance", api.conformance),
        Route("/queryables", api.queryables),
        Route("/sortables", api.sortables),
        Route("/collections", api.collections),
        Route("/collections/{collection_id}", api.collection),
        Route("/collections/{collection_id}/queryables", api.queryables),
        Route("/collections/{collection_id}/items", api.items),
        Route("/collections/{collection_id}/items/{item_id}", api.item),
        Route("/search", api.search, methods=["GET", "POST"]),
        Route("/tiles/{z:int}/{x:int}/{y:int}.png", api.tile),
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

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, "ServerError", f"{type(exc).__name__} (the server log has more)")

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(UrlLengthLimit),
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                allow_headers=["*"],
                expose_headers=["Content-Range", "Accept-Ranges", "Content-Length", "ETag"],
            ),
        ],
        exception_handlers={
            HTTPException: http_error,
            QueryError: query_error,
            Exception: server_error,
        },
    )
    app.state.index = index
    return app


async def _redirect_to_browser(request: Request) -> Response:
    return RedirectResponse(url=str(request.url.replace(path="/browser/", query="")))


async def _browser_config(request: Request) -> Response:
    """STAC Browser's runtime settings, loaded before the app: open on this server's API, and
    draw COGs on the map from this server's class-coloured tiles (/tiles/)."""
    settings = {
        "catalogUrl": str(request.base_url),
        "catalogTitle": "stacmask",
        "allowExternalAccess": False,
        "displayGeoTiffByDefault": False,
        "useTileLayerAsFallback": False,
    }
    tiles = json.dumps(f"{request.base_url}tiles/{{z}}/{{x}}/{{y}}.png?href=")
    script = (
        f"window.STAC_BROWSER_CONFIG = {json.dumps(settings)};\n"
        "window.STAC_BROWSER_CONFIG.buildTileUrlTemplate = function (args) {\n"
        f"  return {tiles} + encodeURIComponent(args.href);\n"
        "};\n"
    )
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
        self.rendered = RenderedItems(index, self._item_json)

    # -- URL helpers ------------------------------------------------------------------------
    @staticmethod
    def _base(request: Request) -> str:
        return str(request.base_url)

    @staticmethod
    def _file_url(base: str, relpath: str) -> str:
        return f"{base}{CATALOG_PREFIX}/{quote(relpath)}"

    def _item_json(self, base: str, entry: IndexedItem) -> JsonDict:
        """An item as the API serves it under `base`: hrefs absolute, its own links."""
        file_url = self._file_url(base, entry.relpath)
        # The item was read from its file for this request: its dict is ours to change.
        resolve = url_resolver(f"{base}{CATALOG_PREFIX}/", entry.relpath)
        item = resolve_hrefs(entry.item, resolve, in_place=True)
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
        node = self.index.collections.get(collection_id)
        if node is None:
            raise HTTPException(404, f"no collection {collection_id!r}")
        base = self._base(request)
        file_url = self._file_url(base, node.relpath)
        doc = resolve_hrefs(node.doc, url_resolver(f"{base}{CATALOG_PREFIX}/", node.relpath))
        url = f"{base}collections/{quote(collection_id)}"
        keep = [
            link
            for link in doc.get("links", [])
            if link.get("rel") not in ("self", "root", "parent", "item", "child")
        ]
        doc["links"] = [
            {"rel": "self", "href": url, "type": STAC_JSON, "title": "This collection"},
            {"rel": "root", "href": base, "type": STAC_JSON, "title": "Landing page"},
            {"rel": "parent", "href": base, "type": STAC_JSON, "title": "Landing page"},
            {"rel": "items", "href": f"{url}/items", "type": GEOJSON, "title": "Items"},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "href": f"{url}/queryables",
                "type": SCHEMA_JSON,
                "title": "Queryables",
            },
            {"rel": "alternate", "href": file_url, "type": STAC_JSON, "title": "Static file"},
            *({**link, "title": link.get("title") or link.get("rel")} for link in keep),
        ]
        return doc

    async def _page(
        self, request: Request, search: Search, params: dict[str, Any], post: bool
    ) -> Response:
        """The page of `search` as a FeatureCollection, with its paging links."""
        base = self._base(request)

        def select_and_render() -> tuple[SearchResult, list[bytes]]:
            result = search_page(self.index, search)
            return result, self.rendered.features(base, result.items)

        result, features = await run_in_threadpool(select_and_render)
        links: list[JsonDict] = [{"rel": "root", "href": base, "type": STAC_JSON}]
        pages: list[tuple[str, int | None]] = [("self", None)]
        pages += [("next", result.next_offset), ("prev", result.previous_offset)]
        if result.search.offset > 0:
            pages.append(("first", 0))
        for rel, offset in pages:
            if offset is None and rel != "self":
                continue
            query = dict(params)
            if offset is not None:  # another page: the same query with that page's token
                query.pop("token", None)
                if offset > 0:
                    query["token"] = str(offset)
            if post:
                link = {"href": str(request.url), "method": "POST", "body": query, "merge": False}
            else:
                link = {"href": str(request.url.replace(query=urlencode(query)))}
            links.append({"rel": rel, "type": GEOJSON, **link})
        rest = {"links": links, "numberMatched": result.matched, "numberReturned": len(features)}
        # The features are joined as rendered (bytes): a page is not serialized item by item.
        body = b"".join(
            (
                b'{"type":"FeatureCollection","features":[',
                b",".join(features),
                b"],",
                orjson.dumps(rest)[1:],
            )
        )
        return Response(body, media_type=GEOJSON)

    # -- routes ----------------------------------------------------------------------------
    async def landing(self, request: Request) -> Response:
        """Landing page: the root catalog with links to the API's parts."""
        base = self._base(request)
        catalog = self.index.catalog
        links: list[JsonDict] = [
            {"rel": "self", "href": base, "type": STAC_JSON},
            {"rel": "root", "href": base, "type": STAC_JSON},
            {"rel": "service-desc", "href": f"{base}api", "type": OPENAPI_MEDIA_TYPE},
            {"rel": "service-doc", "href": f"{base}api.html", "type": "text/html"},
            {"rel": "conformance", "href": f"{base}conformance", "type": STAC_JSON},
            {"rel": "data", "href": f"{base}collections", "type": STAC_JSON},
            {"rel": "search", "href": f"{base}search", "type": GEOJSON, "method": "GET"},
            {"rel": "search", "href": f"{base}search", "type": GEOJSON, "method": "POST"},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "href": f"{base}queryables",
                "type": SCHEMA_JSON,
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/sortables",
                "href": f"{base}sortables",
                "type": SCHEMA_JSON,
            },
            {
                "rel": "alternate",
                "href": f"{base}{CATALOG_PREFIX}/catalog.json",
                "type": STAC_JSON,
                "title": "Static catalog",
            },
        ]
        for collection_id, node in self.index.collections.items():
            links.append(
                {
                    "rel": "child",
                    "href": f"{base}collections/{quote(collection_id)}",
                    "type": STAC_JSON,
                    "title": node.doc.get("title", collection_id),
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

    async def service_description(self, request: Request) -> Response:
        """The OpenAPI document of this API."""
        return JsonResponse(openapi_document(self._base(request)), media_type=OPENAPI_MEDIA_TYPE)

    async def tile(self, request: Request) -> Response:
        """A map tile of a mask COG of the catalog in its class colours (stacmask.serve.tiles)."""
        href = request.query_params.get("href", "")
        prefix = f"{self._base(request)}{CATALOG_PREFIX}/"
        relpath = unquote(urlsplit(href).path).removeprefix(f"/{CATALOG_PREFIX}/")
        path = (self.index.root / relpath).resolve()
        if (
            not href.startswith(prefix)
            or any(part.startswith(".") for part in Path(relpath).parts)
            or not path.is_relative_to(self.index.root)
            or not path.name.endswith("_mask.tif")
            or not path.is_file()
        ):
            raise HTTPException(404, "href is not a mask COG of this catalog")
        z, x, y = (int(request.path_params[k]) for k in ("z", "x", "y"))
        png = await run_in_threadpool(render_tile, path, z, x, y)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def service_page(self, request: Request) -> Response:
        """A human-readable page of the API's paths (the landing page's service-doc)."""
        return HTMLResponse(openapi_page(openapi_document(self._base(request))))

    async def conformance(self, request: Request) -> Response:
        """The conformance classes this server implements."""
        return JsonResponse({"conformsTo": list(CONFORMANCE)})

    def _schema(self, request: Request, title: str, properties: JsonDict) -> JsonResponse:
        collection_id = request.path_params.get("collection_id")
        if collection_id is not None and collection_id not in self.index.collections:
            raise HTTPException(404, f"no collection {collection_id!r}")
        body = {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": str(request.url),
            "type": "object",
            "title": title,
            "properties": properties,
            "additionalProperties": True,
        }
        return JsonResponse(body, media_type=SCHEMA_JSON)

    def _fields(self) -> JsonDict:
        return {
            "id": {"title": "Item ID", "type": "string"},
            "collection": {"title": "Collection ID", "type": "string"},
            # No $ref to geojson.org: clients must work offline.
            "geometry": {"title": "Footprint", "type": "object", "format": "geometry-any"},
            "datetime": {"title": "Acquired", "type": "string", "format": "date-time"},
            **{k: v for k, v in self.index.queryables().items() if k != "datetime"},
        }

    async def queryables(self, request: Request) -> Response:
        """JSON Schema of the fields a filter may use (item properties seen in the catalog).

        A property not listed is no error: no item has it, so it compares as NULL.
        """
        return self._schema(request, "Queryables", self._fields())

    async def sortables(self, request: Request) -> Response:
        """JSON Schema of the fields sortby may use: the scalar ones."""
        kinds = {"id": "string", "collection": "string", **self.index.kinds}
        sortable = {
            name: schema
            for name, schema in self._fields().items()
            if name == "datetime" or kinds.get(name) in SORTABLE_KINDS
        }
        return self._schema(request, "Sortables", sortable)

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
        return await self._page(request, search, params, post=False)

    async def item(self, request: Request) -> Response:
        """One item."""
        collection_id = request.path_params["collection_id"]
        item_id = request.path_params["item_id"]
        entry = await run_in_threadpool(find_item, self.index, collection_id, item_id)
        if entry is None:
            raise HTTPException(404, f"no item {item_id!r} in collection {collection_id!r}")
        return JsonResponse(self._item_json(self._base(request), entry), media_type=GEOJSON)

    async def search(self, request: Request) -> Response:
        """Item search by GET (query string) or POST (JSON body)."""
        if request.method == "POST":
            params = await _json_body(request)
            search = parse_search(params, method="POST")
            return await self._page(request, search, params, post=True)
        query = dict(request.query_params)
        search = parse_search(query, method="GET")
        return await self._page(request, search, query, post=False)


async def _json_body(request: Request) -> dict[str, Any]:
    """A POST body as a JSON object: bounded in size, nesting errors are a 400."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise HTTPException(413, f"the body is over {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        params = json.loads(body)
    except RecursionError:
        raise QueryError("POST /search: the body is nested too deeply") from None
    except ValueError:
        raise QueryError("POST /search: the body is not JSON") from None
    if not isinstance(params, dict):
        raise QueryError("POST /search: the body must be a JSON object")
    return params
