"""`stacmask build` against each real service of ../shared/data/real-stac (issue 14): the recorded
JSON served on 127.0.0.1 with that service's paging, its hrefs moved to small local rasters of
the real grids, data types and formats (s3:// hrefs kept and served by an S3-compatible server on
127.0.0.1), and the built catalog validated."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from stacmask.catalog.folder import CatalogFolder
from stacmask.cli import app
from tests.conftest import shared_path
from tests.recorded_services import (
    RecordedApi,
    S3Stand,
    cloud_field,
    features,
    recorded,
    s3_environment,
    s3_stand,
    write_raster,
)
from tests.test_build import assert_valid, runner

WPM_XML = "data/inpe-xml/stars/CBERS_4A_WPM_20200730_209_139_L4_BAND1.xml"


def build(out: Path, api: RecordedApi, *extra: str) -> Any:
    return runner.invoke(
        app, ["build", "--out", str(out), "--stac-url", api.url, "--quiet", *extra]
    )


def item_json(out: Path, collection: str, item_id: str) -> dict[str, Any]:
    path = out / f"{collection}-mask" / item_id / f"{item_id}.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def all_text(folder: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for p in folder.rglob("*")
        if p.suffix in (".json", "")
        if p.is_file()
    )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Stand]:
    with s3_stand() as stand:
        for name, value in s3_environment(stand.endpoint).items():
            monkeypatch.setenv(name, value)
        yield stand


# --- INPE Brazil Data Cube ---------------------------------------------------------------------
BDC_LANDING: dict[str, Any] = {  # BDC's layout: rc.1 conformance, links without type
    "type": "Catalog",
    "id": "bdc",
    "stac_version": "1.0.0",
    "description": "Brazil Data Cube Catalog",
    "conformsTo": [
        "https://api.stacspec.org/v1.0.0-rc.1/core",
        "https://api.stacspec.org/v1.0.0-rc.1/item-search",
    ],
    "links": [
        {"rel": "self", "href": "https://data.inpe.br/bdc/stac/v1/"},
        {"rel": "root", "href": "https://data.inpe.br/bdc/stac/v1/"},
        {"rel": "search", "href": "https://data.inpe.br/bdc/stac/v1/search"},
    ],
}


def bdc_bands(item: dict[str, Any], folder: Path, seed: int) -> dict[str, Path]:
    """int16 stripped GeoTIFFs (BDC's format) at 8 m in UTM 23S inside the item's bbox."""
    west, south, east, north = item["bbox"]
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32723", always_xy=True)
    x, y = to_utm.transform((west + east) / 2, (south + north) / 2)
    size = 256
    transform = Affine(8.0, 0, round(x), 0, -8.0, round(y))
    cloud = cloud_field(size, size, 0.3, seed)
    rng = np.random.default_rng(seed)
    files = {}
    for number, (clear, cloudy) in enumerate(((60, 400), (50, 380), (40, 370), (120, 390)), 1):
        dn = np.where(cloud, cloudy, clear) + rng.integers(0, 5, (size, size))
        dn[:, :12] = 0  # the scene's no-data border
        files[f"BAND{number}"] = write_raster(
            folder / f"BAND{number}.tif",
            dn.astype(np.int16),
            crs=CRS.from_epsg(32723),
            transform=transform,
            nodata=0,
            tiled=False,
            compress="deflate",
        )
    return files


def bdc_api(tmp_path: Path, token: str | None = None) -> RecordedApi:
    items = features("bdc", "search_CB4A-WPM-L4-DN-1.json")
    api = RecordedApi(
        "bdc",
        json.loads(json.dumps(BDC_LANDING)),
        items,
        {"CB4A-WPM-L4-DN-1": recorded("bdc", "collection_CB4A-WPM-L4-DN-1.json")},
        required_token=token,
    )
    for number, item in enumerate(items):
        files = bdc_bands(item, tmp_path / item["id"], number)
        files["BAND1_xml"] = shared_path(WPM_XML)
        api.move_hrefs(item, files)
    return api


def test_bdc(tmp_path: Path, schema_map: Path, recwarn: pytest.WarningsRecorder) -> None:
    out = tmp_path / "cat"
    with bdc_api(tmp_path) as api:
        result = build(out, api, "--method", "physical")
        searches = [r for r in api.server.requests if r.route == "/search"]
    assert result.exit_code == 0, result.output
    assert "2 scene(s) added" in result.output
    assert [r.json().get("page") for r in searches] == [None, 2]  # page + merge, one a page
    assert searches[0].json()["limit"] == 100
    assert_valid(out, schema_map)
    props = item_json(out, "CB4A-WPM-L4-DN-1", "CBERS_4A_WPM_20260902_198_142_L4")["properties"]
    assert (props["path"], props["row"]) == (198, 142)  # strings at BDC, integers here
    assert (props["cbers:path"], props["cbers:row"]) == (198, 142)
    assert props["view:sun_elevation"] == pytest.approx(44.3213)  # from the XML
    assert not [w for w in recwarn if "PystacClientWarning" in type(w.message).__name__]


def test_bdc_access_token_reaches_the_service_and_never_the_catalog(
    tmp_path: Path, schema_map: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "bdc-secret-7f3a"
    out = tmp_path / "cat"
    with bdc_api(tmp_path, token=secret) as api:
        refused = build(tmp_path / "refused", api, "--method", "physical")
        monkeypatch.setenv("BDC_ACCESS_TOKEN", secret)
        result = build(out, api, "--method", "physical")
    assert refused.exit_code == 2 and "HTTP 403" in refused.output
    assert result.exit_code == 0, result.output
    assert_valid(out, schema_map)
    assert secret not in all_text(out)
    assert secret not in result.output + refused.output


# --- Earth Search: Sentinel-2 L1C (JPEG 2000 on s3://, requester pays) -----------------------
S2_BANDS = {  # asset key: pixel size (m)
    "coastal": 60, "blue": 10, "green": 10, "red": 10, "rededge1": 20, "rededge2": 20,
    "rededge3": 20, "nir": 10, "nir08": 20, "nir09": 60, "cirrus": 60, "swir16": 20,
    "swir22": 20,
}  # fmt: skip
#: Stored DN of clear land and of thick cloud per asset (reflectance x 10000 + 1000).
S2_CLEAR = {"coastal": 2300, "blue": 2000, "green": 1900, "red": 1800, "rededge1": 2200,
            "rededge2": 3200, "rededge3": 3500, "nir": 3700, "nir08": 3800, "nir09": 1500,
            "cirrus": 1010, "swir16": 3000, "swir22": 2200}  # fmt: skip
S2_CLOUD = {key: 8000 for key in S2_BANDS} | {"cirrus": 1400, "nir09": 4000, "swir16": 5500,
                                              "swir22": 4500}  # fmt: skip
#: The tile's data: the western 30 % of its columns (DN 0 elsewhere, as at a swath edge).
S2_DATA_COLUMNS = 0.3


def s2_bands(item: dict[str, Any], folder: Path) -> dict[str, Path]:
    """uint16 JPEG 2000 bands without a nodata tag, on the tile's grid (a 3.6 km corner)."""
    x0, y0 = (
        item["assets"]["blue"]["proj:transform"][2],
        item["assets"]["blue"]["proj:transform"][5],
    )
    crs = CRS.from_epsg(item["properties"]["proj:epsg"])
    files = {}
    clouds = cloud_field(60, 60, 0.5, 7)  # on the 60 m grid, repeated onto the finer ones
    for key, pixel in S2_BANDS.items():
        size = 3600 // pixel
        cloud = np.repeat(np.repeat(clouds, size // 60, 0), size // 60, 1)
        dn = np.where(cloud, S2_CLOUD[key], S2_CLEAR[key]).astype(np.uint16)
        dn[:, int(size * S2_DATA_COLUMNS) :] = 0
        files[key] = write_raster(
            folder / f"{key}.jp2",
            dn,
            crs=crs,
            transform=Affine(pixel, 0, x0, 0, -pixel, y0),
            driver="JP2OpenJPEG",
            QUALITY="100",
            REVERSIBLE="YES",
        )
    return files


def test_earthsearch_sentinel2_l1c(tmp_path: Path, schema_map: Path, s3: S3Stand) -> None:
    items = features(
        "earthsearch-s2-l1c", "interaction01.json", "interaction02.json",
        collection="sentinel-2-l1c",
    )[:2]  # fmt: skip
    api = RecordedApi("earthsearch", recorded("earthsearch-s2-l1c", "interaction00.json"), items)
    for item in items:
        for key, file in s2_bands(item, tmp_path / item["id"]).items():
            s3.put(item["assets"][key]["href"], file)
    out = tmp_path / "cat"
    with api:
        result = build(out, api, "--profile", "sentinel2-l1c")
        searches = [r.json() for r in api.server.requests if r.route == "/search"]
    assert result.exit_code == 0, result.output
    assert searches[1]["next"] == "2" and searches[1]["collections"] == ["sentinel-2-l1c"]
    assert_valid(out, schema_map)
    item = items[0]
    props = item_json(out, "sentinel-2-l1c", item["id"])["properties"]
    # Only the data footprint counts: 30 % of the 60 m grid's 3600 pixels, about half cloud.
    assert props["stacmask:valid_pixels"] == pytest.approx(3600 * S2_DATA_COLUMNS, rel=0.02)
    assert 25 < props["eo:cloud_cover"] < 75
    kept = {k: props[k] for k in props if k.startswith("mgrs:") or k == "s2:processing_baseline"}
    assert kept == {
        k: v
        for k, v in item["properties"].items()
        if k.startswith("mgrs:") or k == "s2:processing_baseline"
    }
    assert kept["s2:processing_baseline"] == "05.11"


# --- Landsat C2 L2: Earth Search (s3://, requester pays) and Planetary Computer (signed) -------
def landsat_bands(item: dict[str, Any], folder: Path) -> dict[str, Path]:
    """uint16 COGs at 30 m on the scene's grid (a 4.5 km corner): top half cloud."""
    props = item["properties"]
    transform = Affine(*props["proj:transform"][:6])
    crs = CRS.from_epsg(props["proj:epsg"])
    size = 150
    top = np.zeros((size, size), bool)
    top[: size // 2] = True
    clear = {"blue": 10500, "green": 11000, "red": 11500, "nir08": 18000}
    files = {}
    for key, value in clear.items():
        dn = np.where(top, 40000, value).astype(np.uint16)
        files[key] = write_raster(
            folder / f"{key}.tif", dn, crs=crs, transform=transform, nodata=0,
            tiled=True, blockxsize=64, blockysize=64, compress="deflate",
        )  # fmt: skip
    qa = np.where(top, 22280, 21824).astype(np.uint16)  # high-confidence cloud / clear
    files["qa_pixel"] = write_raster(
        folder / "qa_pixel.tif", qa, crs=crs, transform=transform, nodata=1,
        tiled=True, blockxsize=64, blockysize=64, compress="deflate",
    )  # fmt: skip
    return files


def _landsat_check(out: Path, item: dict[str, Any], schema_map: Path) -> None:
    assert_valid(out, schema_map)
    props = item_json(out, "landsat-c2-l2", item["id"])["properties"]
    assert props["eo:cloud_cover"] == pytest.approx(50.0, abs=1.0)
    for name in ("landsat:wrs_path", "landsat:wrs_row"):
        assert props[name] == item["properties"][name]


def test_earthsearch_landsat_c2_l2(tmp_path: Path, schema_map: Path, s3: S3Stand) -> None:
    items = features("earthsearch-landsat-c2-l2", "interaction00.json", collection="landsat-c2-l2")
    api = RecordedApi("earthsearch", recorded("earthsearch-s2-l1c", "interaction00.json"), items)
    for item in items:
        for key, file in landsat_bands(item, tmp_path / item["id"]).items():
            s3.put(item["assets"][key]["href"], file)
    out = tmp_path / "cat"
    with api:
        result = build(out, api, "--profile", "landsat-c2")
    assert result.exit_code == 0, result.output
    _landsat_check(out, items[0], schema_map)


def test_planetary_computer_landsat_c2_l2(tmp_path: Path, schema_map: Path) -> None:
    items = features("pc-landsat-c2-l2", "interaction02.json")[:2]
    api = RecordedApi(
        "pc",
        recorded("pc-landsat-c2-l2", "interaction00.json"),
        items,
        {"landsat-c2-l2": recorded("pc-landsat-c2-l2", "interaction01.json")},
    )
    for item in items:
        api.move_hrefs(item, landsat_bands(item, tmp_path / item["id"]))
    out = tmp_path / "cat"
    with api:
        # Signing leaves hrefs off Azure blob storage as they are (these moved to 127.0.0.1).
        result = build(out, api, "--profile", "landsat-c2", "--sign", "planetary-computer")
        gets = [r for r in api.server.requests if r.route == "/search" and r.method == "GET"]
    assert result.exit_code == 0, result.output
    assert gets and gets[0].query["token"] == ["2"]  # PC's GET next link
    _landsat_check(out, items[0], schema_map)
    collection = json.loads((out / "landsat-c2-l2-mask" / "collection.json").read_text())
    assert "USGS" in {provider["name"] for provider in collection["providers"]}


# --- AWS CBERS (cbers-2-stac): s3:// bands and XML, no /collections, L2 and L4 mixed -------------
AWS_LANDING: dict[str, Any] = {
    "type": "Catalog",
    "id": "cbers-stac",
    "stac_version": "1.0.0",
    "description": "CBERS on AWS",
    "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
    "links": [
        {"rel": "self", "href": "https://stac.amskepler.com/v100/"},
        {"rel": "search", "href": "https://stac.amskepler.com/v100/search", "method": "POST"},
    ],
}  # fmt: skip


def aws_cbers(tmp_path: Path, s3: S3Stand) -> RecordedApi:
    """The recorded L4 item and an L2 copy of it (the API mixes them in one collection); the
    real WPM DN clips of that scene (int16, UTM 22S) as B1-B3 (B3 again for B4, the clips have
    no NIR) and the recorded BAND2 XML, in the S3 stand-in."""
    l4 = recorded("aws-cbers", "ref_CBERS_4A_WPM_20200730_209_139_L4.json")
    l2 = json.loads(json.dumps(l4).replace("_L4", "_L2"))
    l2["properties"]["cbers:data_type"] = "L2"
    for key, clip in (("B1", "BAND1"), ("B2", "BAND2"), ("B3", "BAND3"), ("B4", "BAND3")):
        file = tmp_path / f"{key}.tif"
        shutil.copy(shared_path(f"data/cbers4a-wpm-clips/{clip}.tif"), file)
        s3.put(l4["assets"][key]["href"], file)
    xml = shared_path("data/real-stac/aws-cbers/CBERS_4A_WPM_20200730_209_139_L4_BAND2.xml")
    s3.put(l4["assets"]["metadata"]["href"], xml)
    return RecordedApi("aws", json.loads(json.dumps(AWS_LANDING)), [l2, l4])


@pytest.mark.parametrize("signed", [True, False])
def test_aws_cbers(
    tmp_path: Path, schema_map: Path, s3: S3Stand, monkeypatch: pytest.MonkeyPatch, signed: bool
) -> None:
    """Bands and XML over s3://, with credentials or AWS_NO_SIGN_REQUEST; L4 chosen by query."""
    if not signed:
        for name, value in s3_environment(s3.endpoint, signed=False).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    out = tmp_path / "cat"
    with aws_cbers(tmp_path, s3) as api:
        result = build(
            out, api, "--collection", "CBERS4A-WPM", "--band-keys", "aws", "--method", "physical",
            "--query", '{"cbers:data_type": {"eq": "L4"}}',
        )  # fmt: skip
        routes = api.server.routes()
    assert result.exit_code == 0, result.output
    assert "found 1 scene(s)" in result.output
    assert routes.count("/collections/CBERS4A-WPM") == 1  # asked once, no crawling after a 404
    assert_valid(out, schema_map)
    props = item_json(out, "CBERS4A-WPM", "CBERS_4A_WPM_20200730_209_139_L4")["properties"]
    assert props["view:sun_elevation"] == pytest.approx(44.3304)  # the BAND2 XML's
    assert props["stacmask:calibration"] == "default"  # 2020 WPM XML: no gains
    assert props["proj:code"] == "EPSG:32720"  # the clips' own CRS


def test_aws_cbers_without_xml_uses_the_item_sun_angles(
    tmp_path: Path, schema_map: Path, s3: S3Stand
) -> None:
    out = tmp_path / "cat"
    with aws_cbers(tmp_path, s3) as api:
        api.items = [item for item in api.items if item["id"].endswith("_L4")]
        result = build(
            out, api, "--collection", "CBERS4A-WPM", "--band-keys", "B1,B2,B3,B4",
            "--method", "physical",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    props = item_json(out, "CBERS4A-WPM", "CBERS_4A_WPM_20200730_209_139_L4")["properties"]
    assert (props["view:sun_elevation"], props["view:sun_azimuth"]) == (44.3304, 32.9789)
    assert_valid(out, schema_map)
    assert CatalogFolder(out).failures() == {}


def test_s3_without_credentials_is_a_clear_scene_failure(
    tmp_path: Path, s3: S3Stand, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    out = tmp_path / "cat"
    with aws_cbers(tmp_path, s3) as api:
        result = build(out, api, "--collection", "CBERS4A-WPM", "--band-keys", "aws")
    assert result.exit_code == 1
    failure = next(iter(CatalogFolder(out).failures().values()))
    assert "AWS_NO_SIGN_REQUEST=YES" in failure["message"]


def test_alternate_s3_hrefs_instead_of_login_only_https(
    tmp_path: Path, schema_map: Path, s3: S3Stand
) -> None:
    """USGS landsatlook-style items: https hrefs need a login (refused here), their
    `alternate.s3` hrefs do not; `--alternate s3` reads those."""
    items = features("earthsearch-landsat-c2-l2", "interaction00.json", collection="landsat-c2-l2")
    api = RecordedApi("earthsearch", recorded("earthsearch-s2-l1c", "interaction00.json"), items)
    item = items[0]
    for key, file in landsat_bands(item, tmp_path / item["id"]).items():
        asset = item["assets"][key]
        s3.put(asset["href"], file)
        asset["alternate"] = {"s3": {"href": asset["href"]}}
        asset["href"] = f"{api.server.url}/login-only/{key}.TIF"
    out = tmp_path / "cat"
    with api:
        without = build(tmp_path / "without", api, "--profile", "landsat-c2", "--timeout", "5")
        result = build(out, api, "--profile", "landsat-c2", "--alternate", "s3")
    assert without.exit_code == 1 and "404" in without.output
    assert result.exit_code == 0, result.output
    _landsat_check(out, item, schema_map)
