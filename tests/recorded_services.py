"""Stand-ins for the real services of ../shared/data/real-stac, served on 127.0.0.1.

`RecordedApi` answers a service's recorded JSON (landing page, collection, search features) with
that service's own paging: BDC's POST `page` + `merge`, Earth Search's POST `next` token,
Planetary Computer's GET `token` link, AWS CBERS's POST `{"page": n}` (and no /collections).
Pages hold one item each, so every paging style is followed. Only asset hrefs change: http(s)
hrefs move to small local rasters served here (`/data/...`, with Range support); `s3://` hrefs
stay as they are and their files go into an S3-compatible server on 127.0.0.1 (moto), read with
GDAL's AWS settings (`s3_environment`).

The rasters have the real grids' CRS, pixel sizes, origins, data types and formats (BDC: int16
stripped GeoTIFF; Earth Search S2 L1C: uint16 JPEG 2000 without a nodata tag; Landsat: uint16
COG), just fewer pixels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS

from tests.conftest import shared_path
from tests.scripted_http import Answer, Request, ScriptedServer

REAL_STAC: Final = "data/real-stac"


def recorded(service: str, name: str) -> Any:
    """A recorded answer: the JSON file, or the `response` of an `interactionNN.json`."""
    data = json.loads(shared_path(f"{REAL_STAC}/{service}/{name}").read_text())
    if isinstance(data, dict) and "response" in data and "request" in data:
        return data["response"]
    if isinstance(data, dict):
        data.pop("_source", None)
    return data


def features(service: str, *names: str, collection: str | None = None) -> list[dict[str, Any]]:
    """The recorded features of the named search answers (of `collection` only, when given)."""
    found = []
    for name in names:
        for feature in recorded(service, name)["features"]:
            if collection is None or feature.get("collection") == collection:
                found.append(feature)
    return found


# --- rasters -----------------------------------------------------------------------------------
def write_raster(
    path: Path,
    data: NDArray[Any],
    *,
    crs: CRS,
    transform: Affine,
    driver: str = "GTiff",
    nodata: float | None = None,
    **options: Any,
) -> Path:
    """One band `data` at `path` (GTiff options such as tiled/blockxsize, or JP2 ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile: dict[str, Any] = {
        "driver": driver,
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        **options,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def cloud_field(height: int, width: int, fraction: float, seed: int) -> NDArray[np.bool_]:
    """A blobby cloud mask covering about `fraction` of the pixels."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(2, height // 16), max(2, width // 16)))
    field_ = np.kron(coarse, np.ones((16, 16)))[:height, :width]
    if field_.shape != (height, width):
        field_ = np.pad(field_, ((0, height - field_.shape[0]), (0, width - field_.shape[1])))
    return field_ >= np.quantile(field_, 1.0 - fraction)  # type: ignore[no-any-return]


# --- S3 on 127.0.0.1 ---------------------------------------------------------------------------
@dataclass
class S3Stand:
    """moto's S3-compatible server on 127.0.0.1 and a client to fill it."""

    endpoint: str  # host:port
    client: Any

    def put(self, href: str, file: Path) -> None:
        """Upload `file` to the bucket and key of the s3:// `href`, readable by anyone (as the
        public buckets are, so AWS_NO_SIGN_REQUEST reads work)."""
        parts = urlsplit(href)
        bucket, key = parts.netloc, parts.path.lstrip("/")
        with suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
            self.client.create_bucket(Bucket=bucket)
        self.client.upload_file(str(file), bucket, key, ExtraArgs={"ACL": "public-read"})


@contextmanager
def s3_stand() -> Iterator[S3Stand]:
    """A started moto S3 server on 127.0.0.1 (a random port)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        yield S3Stand(f"{host}:{port}", client)
    finally:
        server.stop()


def s3_environment(endpoint: str, *, signed: bool = True) -> dict[str, str]:
    """GDAL's own AWS settings (also read by stacmask's XML reads) for the stand-in."""
    env = {
        "AWS_S3_ENDPOINT": endpoint,
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_REGION": "us-east-1",
        "AWS_REQUEST_PAYER": "requester",
    }
    if signed:
        env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    else:
        env |= {"AWS_NO_SIGN_REQUEST": "YES"}
    return env


# --- the API ---------------------------------------------------------------------------------
Paging = str  # "bdc" | "earthsearch" | "pc" | "aws"


@dataclass
class RecordedApi:
    """A recorded service on 127.0.0.1 (module doc). Use as a context manager."""

    paging: Paging
    landing: dict[str, Any]
    items: list[dict[str, Any]]
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Query parameter every request must carry (BDC access token), else 403.
    required_token: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    server: ScriptedServer = field(init=False)

    def __post_init__(self) -> None:
        self.server = ScriptedServer(self._answer)

    @property
    def url(self) -> str:
        return self.server.url + "/"

    def serve_file(self, file: Path) -> str:
        """The URL this server serves `file` at."""
        route = f"/data/{len(self.files)}/{file.name}"
        self.files[route] = file
        return self.server.url + route

    def move_hrefs(self, item: dict[str, Any], files: dict[str, Path]) -> None:
        """Asset hrefs of `item` for the `files` by asset key: http(s) hrefs to this server;
        s3 hrefs are kept (their files go to the S3 stand-in)."""
        for key, file in files.items():
            asset = item["assets"][key]
            if not asset["href"].startswith("s3://"):
                asset["href"] = self.serve_file(file)

    def __enter__(self) -> RecordedApi:
        self.server.__enter__()
        base = self.server.url
        text = json.dumps([self.landing, self.items, self.collections])
        for real in _real_roots(self.landing):
            text = text.replace(real, base)
        self.landing, self.items, self.collections = json.loads(text)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(None, None, None)

    def _answer(self, request: Request) -> Answer:
        if self.required_token and request.query.get("access_token") != [self.required_token]:
            return Answer.json({"code": 403, "description": "Forbidden"}, 403)
        route = request.route
        if route in self.files:
            return Answer(file=self.files[route], headers={"Content-Type": "image/tiff"})
        if route in ("", "/"):
            return Answer.json(self.landing)
        if route.startswith("/collections/"):
            found = self.collections.get(route.split("/")[2])
            return Answer.json(found) if found else Answer.json({"code": "NotFound"}, 404)
        if route == "/search":
            return Answer.json(self._page(request))
        return Answer.json({"code": "NotFound"}, 404)

    def _page(self, request: Request) -> dict[str, Any]:
        body = request.json() or {}
        if request.method == "GET":
            body = {k: v[0] for k, v in request.query.items()}
            body["collections"] = str(body.get("collections", "")).split(",")
        matching = [
            item
            for item in self.items
            if item.get("collection") in (body.get("collections") or [item.get("collection")])
            and _query_matches(item, body.get("query") or {})
        ]
        number = int(body.get("page") or body.get("next") or body.get("token") or 1)
        chosen = matching[number - 1 : number]  # one item a page: every page is followed
        page: dict[str, Any] = {"type": "FeatureCollection", "features": chosen, "links": []}
        if number < len(matching):
            page["links"].append(self._next(body, number + 1))
        return page

    def _next(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        search = f"{self.server.url}/search"
        if self.paging == "bdc":  # links without type; the page merged into the request
            return {"rel": "next", "href": search, "method": "POST", "body": {"page": number},
                    "merge": True}  # fmt: skip
        if self.paging == "earthsearch":
            return {"rel": "next", "href": search, "method": "POST", "type": "application/geo+json",
                    "body": {**body, "next": str(number)}}  # fmt: skip
        if self.paging == "aws":
            return {
                "rel": "next",
                "href": search,
                "method": "POST",
                "body": {**body, "page": number},
            }
        collections = ",".join(body.get("collections") or [])
        return {"rel": "next", "href": f"{search}?collections={collections}&token={number}",
                "type": "application/geo+json", "method": "GET"}  # fmt: skip


def _real_roots(landing: dict[str, Any]) -> list[str]:
    """The real service's base URL(s), from its landing page's self/root links."""
    roots = {
        str(link["href"]).rstrip("/")
        for link in landing.get("links", [])
        if link.get("rel") in ("self", "root")
    }
    return sorted(roots, key=len, reverse=True)


def _query_matches(item: dict[str, Any], query: dict[str, Any]) -> bool:
    """The STAC query extension's eq/neq on item properties (what the AWS CBERS test uses)."""
    for name, tests in query.items():
        value = item.get("properties", {}).get(name)
        if "eq" in tests and value != tests["eq"]:
            return False
        if "neq" in tests and value == tests["neq"]:
            return False
    return True
