"""Distances and areas in metres whatever the CRS (issue 12, bug 2)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject
from typer.testing import CliRunner

from stacmask.cli import app
from stacmask.methods.geometry import metres_per_degree, pixel_geometry
from stacmask.methods.physical import sun_direction
from stacmask.methods.registry import DEFAULT_METHOD
from stacmask.reading.band_source import SceneInfo
from tests.conftest import shared_path

LAYTON = "data/labelled-extra/layton_S2L2A_alberta_2020-07-05_reflectance.tif"


def _info(transform: Affine, crs: CRS | None, pixel: float = 1.0) -> SceneInfo:
    return SceneInfo(100, 100, transform, crs, pixel, None, None, None, (1.0,) * 4, "reflectance")


def test_a_degree_has_its_known_length() -> None:
    lon, lat = metres_per_degree(0.0)
    assert lon == pytest.approx(111319.5, abs=1) and lat == pytest.approx(110574.3, abs=1)
    lon, lat = metres_per_degree(60.0)
    assert lon == pytest.approx(55800.0, rel=2e-3) and lat == pytest.approx(111412.0, rel=1e-3)


def test_pixel_geometry_in_every_kind_of_crs() -> None:
    utm = pixel_geometry(_info(Affine(30, 0, 4e5, 0, -30, 5e6), CRS.from_epsg(32633)))
    assert (utm.across, utm.down) == (30.0, 30.0)
    # Layton's grid: 0.000417 x 0.000279 degrees at 51.35 N is about 29 x 31 m.
    layton = Affine(0.0004167927, 0, -113.639145, 0, -0.0002794514, 51.4493)
    geo = pixel_geometry(_info(layton, CRS.from_epsg(4326)))
    assert geo.across == pytest.approx(29.0, abs=0.2) and geo.down == pytest.approx(31.1, abs=0.2)
    assert geo.size == pytest.approx(30.0, abs=0.2)
    feet = CRS.from_epsg(2263)  # NAD83 / New York Long Island (US survey feet)
    assert pixel_geometry(_info(Affine(100, 0, 0, 0, -100, 0), feet)).across == pytest.approx(
        30.48, abs=0.01
    )
    assert pixel_geometry(_info(Affine.identity(), None, pixel=8.0)).size == 8.0


def test_sun_steps_are_ground_steps_on_oblong_pixels() -> None:
    """A step east crosses fewer of the pixels that are longer east-west."""
    geo = pixel_geometry(_info(Affine(0.0004, 0, -113.6, 0, -0.00028, 51.4), CRS.from_epsg(4326)))
    east = sun_direction(270.0, geo)  # sun in the west: shadows fall east
    assert east.step_row == pytest.approx(0.0, abs=1e-9)
    assert east.step_col == pytest.approx(geo.size / geo.across)
    assert geo.across < geo.size < geo.down


def _to_utm(source: Path, out: Path) -> None:
    """`source` reprojected to UTM zone 12 N at 30 m (nearest neighbour)."""
    with rasterio.open(source) as src:
        dst = CRS.from_epsg(32612)
        transform, width, height = calculate_default_transform(
            src.crs, dst, src.width, src.height, *src.bounds, resolution=30
        )
        profile = src.profile | {
            "crs": dst,
            "transform": transform,
            "width": width,
            "height": height,
            "nodata": float("nan"),
        }
        with rasterio.open(out, "w", **profile) as sink:
            for band in range(1, 5):
                data = np.full((height, width), np.nan, np.float32)
                reproject(
                    rasterio.band(src, band),
                    data,
                    dst_transform=transform,
                    dst_crs=dst,
                    resampling=Resampling.nearest,
                    dst_nodata=np.nan,
                )
                sink.write(data, band)


def _mask(reflectance: Path, out: Path, method: str) -> tuple[dict[str, float], float]:
    started = time.perf_counter()
    args = ["mask", str(out), "--reflectance", str(reflectance), "--method", method, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), time.perf_counter() - started


@pytest.mark.parametrize("method", sorted({"physical", "csmask", DEFAULT_METHOD}))
def test_a_geographic_scene_masks_as_its_utm_reprojection(tmp_path: Path, method: str) -> None:
    """Layton's EPSG:4326 stack and the same reprojected to UTM: covers within 1 point, in
    similar time (before bug 2 was fixed: no cloud and no shadow at all, 65 s against 1 s)."""
    if method != "physical":
        pytest.importorskip("onnxruntime", reason="optional extra stacmask[csmask] not installed")
    geographic = shared_path(LAYTON)
    utm = tmp_path / "utm.tif"
    _to_utm(geographic, utm)
    _mask(utm, tmp_path / "warm.tif", method)  # compile and load once, outside the timing
    in_utm, utm_seconds = _mask(utm, tmp_path / "utm_mask.tif", method)
    in_degrees, geo_seconds = _mask(geographic, tmp_path / "geo_mask.tif", method)
    assert in_degrees["cloud_cover"] > 2.0 and in_degrees["shadow_cover"] > 4.0
    for cover in ("cloud_cover", "shadow_cover", "water_cover"):
        assert in_degrees[cover] == pytest.approx(in_utm[cover], abs=1.0), cover
    assert geo_seconds <= 3 * utm_seconds + 5.0
