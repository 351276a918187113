"""The OpenAPI 3.0 description of `stacmask serve`'s STAC API (the landing page's service-desc)."""

from __future__ import annotations

import html
from typing import Any

from stacmask import __version__

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"

_JSON = {"application/json": {"schema": {"type": "object"}}}
_GEOJSON = {"application/geo+json": {"schema": {"type": "object"}}}
_ERROR = {"description": "Bad request: the description says what is wrong", "content": _JSON}


def _param(name: str, description: str, *, where: str = "query", **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema or {"type": "string"},
    }


_SEARCH_PARAMS = [
    _param("bbox", "west,south,east,north in degrees (CRS84)"),
    _param("intersects", "a GeoJSON geometry (JSON text)"),
    _param("datetime", "an RFC 3339 instant or interval start/end (.. or empty: open)"),
    _param("ids", "comma-separated item ids"),
    _param("collections", "comma-separated collection ids"),
    _param("limit", "page size", type="integer", minimum=1, maximum=1000, default=10),
    _param("token", "paging token of a next/prev link"),
    _param("filter", "a CQL2 filter"),
    _param("filter-lang", "cql2-text or cql2-json", enum=["cql2-text", "cql2-json"]),
    _param("filter-crs", "only CRS84"),
    _param("sortby", "fields, e.g. +eo:cloud_cover,-datetime"),
]


def _get(summary: str, content: dict[str, Any], params: list[dict[str, Any]] | None = None) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {"200": {"description": summary, "content": content}, "400": _ERROR},
        }
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    """The API's paths, parameters and media types."""
    collection = _param("collectionId", "collection id", where="path")
    item = _param("itemId", "item id", where="path")
    search = _get("Item search", _GEOJSON, _SEARCH_PARAMS)
    search["post"] = {
        "summary": "Item search (JSON body)",
        "requestBody": {"content": _JSON},
        "responses": {"200": {"description": "Item search", "content": _GEOJSON}, "400": _ERROR},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "stacmask serve",
            "version": __version__,
            "description": "STAC API over a static catalog of cloud, shadow and water masks.",
        },
        "servers": [{"url": base_url}],
        "paths": {
            "/": _get("Landing page", _JSON),
            "/conformance": _get("Conformance classes", _JSON),
            "/queryables": _get("Queryables", {"application/schema+json": {}}),
            "/sortables": _get("Sortables", {"application/schema+json": {}}),
            "/collections": _get("Collections", _JSON),
            "/collections/{collectionId}": _get("A collection", _JSON, [collection]),
            "/collections/{collectionId}/queryables": _get(
                "Queryables of a collection", {"application/schema+json": {}}, [collection]
            ),
            "/collections/{collectionId}/items": _get(
                "Items of a collection", _GEOJSON, [collection, *_SEARCH_PARAMS]
            ),
            "/collections/{collectionId}/items/{itemId}": _get(
                "An item", _GEOJSON, [collection, item]
            ),
            "/search": search,
        },
    }


def openapi_page(document: dict[str, Any]) -> str:
    """The OpenAPI document as a plain HTML page: each path, what it answers, its parameters."""
    rows = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            names = ", ".join(p["name"] for p in operation.get("parameters", []))
            rows.append(
                f"<tr><td>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation['summary'])}</td><td>{html.escape(names)}</td></tr>"
            )
    title = html.escape(document["info"]["title"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>{html.escape(document['info']['description'])} The OpenAPI "
        "document is at <a href='api'>api</a>.</p><table><tr><th>method</th><th>path</th>"
        f"<th>answers</th><th>parameters</th></tr>{''.join(rows)}</table></body></html>"
    )
