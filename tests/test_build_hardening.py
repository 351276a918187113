"""Build hardening (issue 15): hostile ids, bad data and read errors fail their scene alone,
with a clear message naming the item or file; the catalog stays valid and the next run works."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from stacmask.catalog.folder import CatalogFolder
from stacmask.cli import app
from tests.sample_api import SampleStacApi
from tests.test_build import COLLECTION, assert_valid, build, runner, serve_scenes


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SampleStacApi]:
    with serve_scenes(tmp_path, 2, size=256) as server:
        yield server


def put_first(api: SampleStacApi, item: dict[str, Any]) -> None:
    """Publish `item` ahead of the others (the search answers in insertion order)."""
    others = dict(api.items)
    api.items.clear()
    api.items[item["id"]] = item
    api.items.update(others)


def twin(api: SampleStacApi, new_id: str) -> dict[str, Any]:
    """A copy of the first scene's item under another id."""
    item = copy.deepcopy(next(iter(api.items.values())))
    item["id"] = new_id
    return item


@pytest.mark.parametrize(
    "bad_id",
    [
        "collection.json",
        "Catalog.JSON",
        "failures.json",
        "CON",
        "nul.tif",
        "aux",
        "COM1",
        "trailing.",
    ],
)
def test_ids_that_clash_with_catalog_files_or_windows_names_are_refused(
    tmp_path: Path, api: SampleStacApi, schema_map: Path, bad_id: str
) -> None:
    good = set(api.items)
    put_first(api, twin(api, bad_id))
    out = tmp_path / "cat"
    for _ in range(2):  # the next build into the same folder works as well
        result = build(out, api)
        assert result.exit_code == 1, result.output
        assert f"FAILED {bad_id!r} [item] ItemError" in result.output
        folder = CatalogFolder(out)
        assert folder.item_ids(COLLECTION) == good
        assert folder.failures()[bad_id]["error"] == "ItemError"
        assert (out / COLLECTION / "collection.json").is_file()
        assert not (out / COLLECTION / bad_id).is_dir()
        assert_valid(out, schema_map)


def test_band_read_errors_carry_gdal_message_and_href(tmp_path: Path, api: SampleStacApi) -> None:
    bad_id = next(iter(api.items))
    href = api.items[bad_id]["assets"]["BAND3"]["href"]
    served = api.root / href.split("/data/", 1)[1]
    data = served.read_bytes()
    served.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "cat"
    result = build(out, api)
    assert result.exit_code == 1, result.output
    message = CatalogFolder(out).failures()[bad_id]["message"]
    assert href in message, message
    assert "See previous exception" not in message, message
    assert "TIFFFillTile" in message or "Read error" in message, message


def served_file(api: SampleStacApi, item: dict[str, Any], key: str) -> Path:
    assert api.root is not None
    return api.root / item["assets"][key]["href"].split("/data/", 1)[1]


def rewrite_band(
    api: SampleStacApi, item: dict[str, Any], key: str, change: Callable[[Any, dict[str, Any]], Any]
) -> None:
    """Rewrite a served band file as `change(values, profile)` (which may edit the profile)."""
    path = served_file(api, item, key)
    with rasterio.open(path) as src:
        values, profile = src.read(), dict(src.profile)
    values = change(values, profile)
    profile.update(count=values.shape[0], dtype=str(values.dtype))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)


def no_data_anywhere(api: SampleStacApi, item: dict[str, Any]) -> None:
    for key in ("BAND1", "BAND2", "BAND3", "BAND4"):
        rewrite_band(api, item, key, lambda v, p: np.zeros_like(v))


def sun_below_horizon(api: SampleStacApi, item: dict[str, Any]) -> None:
    xml = served_file(api, item, "BAND1_xml")
    text = re.sub(r"<elevation>[^<]*<", "<elevation>-5.0000<", xml.read_text())
    xml.write_text(text)


def three_band_file(api: SampleStacApi, item: dict[str, Any]) -> None:
    rewrite_band(api, item, "BAND2", lambda v, p: np.concatenate([v, v, v]))


def float_band(api: SampleStacApi, item: dict[str, Any]) -> None:
    rewrite_band(api, item, "BAND3", lambda v, p: v.astype(np.float32))


def uint8_band(api: SampleStacApi, item: dict[str, Any]) -> None:
    rewrite_band(api, item, "BAND3", lambda v, p: (v // 4).astype(np.uint8))


def mixed_types(api: SampleStacApi, item: dict[str, Any]) -> None:
    rewrite_band(api, item, "BAND4", lambda v, p: v.astype(np.uint16))  # the others are int16


def no_geometry(api: SampleStacApi, item: dict[str, Any]) -> None:
    item["geometry"] = None
    item.pop("bbox", None)


BAD_DATA = {
    # name: (inject, the FAILED line's stage and type, text of the message)
    "no valid pixels": (no_data_anywhere, "[mask] EmptySceneError", "no valid pixels"),
    "sun below horizon": (sun_below_horizon, "[item] ItemError", "at or below the horizon"),
    "3-band file for one band": (three_band_file, "[read] BandReadError", "raster has 3 bands"),
    "float DN": (float_band, "[read] BandReadError", "holds float32 values"),
    "uint8 DN": (uint8_band, "[read] BandReadError", "holds uint8 values"),
    "mixed types": (mixed_types, "[read] BandReadError", "nir band holds uint16 values"),
    "no geometry": (no_geometry, "[item] ItemError", "has no geometry"),
}


@pytest.mark.parametrize("fault", list(BAD_DATA))
def test_bad_data_fails_its_scene(
    tmp_path: Path, api: SampleStacApi, schema_map: Path, fault: str
) -> None:
    inject, failed, needle = BAD_DATA[fault]
    bad_id, good_id = list(api.items)
    inject(api, api.items[bad_id])
    out = tmp_path / "cat"
    result = build(out, api)
    assert result.exit_code == 1, result.output
    assert f"FAILED {bad_id} {failed}" in result.output
    failure = CatalogFolder(out).failures()[bad_id]
    assert needle in failure["message"], failure["message"]
    assert CatalogFolder(out).item_ids(COLLECTION) == {good_id}
    assert_valid(out, schema_map)


def unusual_gains(api: SampleStacApi, item: dict[str, Any]) -> None:
    xml = served_file(api, item, "BAND1_xml")
    bands = "".join(
        f'<band name="{n}">{gain}</band>' for n, gain in enumerate((1e-9, 0.29, 999, 0.17), 1)
    )
    text = xml.read_text().replace(
        "</sunPosition>",
        f"</sunPosition><absoluteCalibrationCoefficient>{bands}</absoluteCalibrationCoefficient>",
    )
    xml.write_text(text)


def negative_dn(api: SampleStacApi, item: dict[str, Any]) -> None:
    def signed(values: Any, profile: dict[str, Any]) -> Any:
        values = values.astype(np.int16)
        values[0, :10, :] = -7
        return values

    for key in ("BAND1", "BAND2", "BAND3"):
        rewrite_band(api, item, key, lambda v, p: v.astype(np.int16))
    rewrite_band(api, item, "BAND4", signed)


@pytest.mark.parametrize(
    ("inject", "needles"),
    [
        (unusual_gains, ["calibration gain 1e-09 of band 1", "calibration gain 999 of band 3"]),
        (negative_dn, ["2560 pixel(s) of the nir band hold negative DN"]),
    ],
)
def test_suspicious_values_are_published_with_a_warning_naming_the_file(
    tmp_path: Path, api: SampleStacApi, inject: Any, needles: list[str]
) -> None:
    bad_id = next(iter(api.items))
    inject(api, api.items[bad_id])
    result = build(tmp_path / "cat", api)
    assert result.exit_code == 0, result.output
    for needle in needles:
        line = next(
            (x for x in result.output.splitlines() if needle in x), f"no {needle!r} warning"
        )
        assert line.startswith(f"warning {bad_id}: {api.url}data/"), result.output


def test_validate_finds_an_asset_that_is_not_the_one_its_item_describes(
    tmp_path: Path, api: SampleStacApi, schema_map: Path
) -> None:
    out = tmp_path / "cat"
    assert build(out, api).exit_code == 0
    first, second = list(api.items)
    mask = out / COLLECTION / first / f"{first}_mask.tif"
    mask.write_bytes((out / COLLECTION / second / f"{second}_mask.tif").read_bytes() + b"\0")
    result = runner.invoke(app, ["validate", str(out), "--schema-map", str(schema_map)])
    assert result.exit_code != 0
    assert f"asset 'mask': ./{first}_mask.tif is" in result.output
