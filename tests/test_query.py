"""The item selection shared by `serve`, `search` and `export` (stacmask.serve.query)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from stacmask.errors import CatalogError, QueryError, StacmaskWarning
from stacmask.serve.query import (
    CatalogIndex,
    build_search,
    item_with_local_paths,
    parse_bbox,
    parse_search,
    search_page,
    select,
)
from tests.serve_catalog import Scene


@pytest.fixture(scope="module")
def index(mask_catalog: Path) -> CatalogIndex:
    return CatalogIndex.load(mask_catalog)


def ids(index: CatalogIndex, **options: str | float | None) -> list[str]:
    return [entry.id for entry in select(index, build_search(**options))]  # type: ignore[arg-type]


def scene_ids(scenes: tuple[Scene, ...], predicate: Callable[[Scene], bool]) -> set[str]:
    return {scene.id for scene in scenes if predicate(scene)}


def median(values: list[float]) -> float:
    """A threshold that splits the items: some at or under it, some over."""
    ordered = sorted(values)
    return round((ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2, 4)


def centre_box(scene: Scene, half: float = 0.001) -> str:
    west, south, east, north = scene.bbox
    x, y = (west + east) / 2, (south + north) / 2
    return f"{x - half},{y - half},{x + half},{y + half}"


def test_index_reads_every_item_and_collection(
    index: CatalogIndex, scenes: tuple[Scene, ...]
) -> None:
    assert sorted(entry.id for entry in index.items) == sorted(scene.id for scene in scenes)
    assert list(index.collections) == ["CB4A-WPM-L4-DN-1-mask"]
    assert {entry.collection for entry in index.items} == {"CB4A-WPM-L4-DN-1-mask"}
    assert index.queryables["eo:cloud_cover"]["type"] == "number"
    assert index.queryables["stacmask:band_mismatch"]["type"] == "boolean"
    assert index.queryables["cbers:path"]["type"] == "integer"
    assert index.queryables["datetime"]["format"] == "date-time"


def test_default_order_is_newest_first(index: CatalogIndex, scenes: tuple[Scene, ...]) -> None:
    expected = [s.id for s in sorted(scenes, key=lambda s: s.date, reverse=True)]
    assert ids(index) == expected


def test_bbox_selects_by_footprint(index: CatalogIndex, scenes: tuple[Scene, ...]) -> None:
    path_222 = next(s for s in scenes if s.path == 222)
    assert ids(index, bbox=centre_box(path_222)) == [path_222.id]
    row_121 = next(s for s in scenes if s.row == 121)
    assert ids(index, bbox=centre_box(row_121)) == [row_121.id]
    # A box over the whole path 221 / row 120 group finds all of it and nothing else.
    group = [s for s in scenes if (s.path, s.row) == (221, 120)]
    west = min(s.bbox[0] for s in group)
    east = max(s.bbox[2] for s in group)
    south = max(s.bbox[1] for s in group)
    north = min(s.bbox[3] for s in group)
    assert set(ids(index, bbox=f"{west},{south},{east},{north}")) == {s.id for s in group}
    assert ids(index, bbox="10,10,11,11") == []


def test_bbox_across_the_antimeridian_is_two_boxes() -> None:
    area = parse_bbox("170,-10,-170,10")
    assert area.contains(parse_bbox("175,-1,176,1"))
    assert area.contains(parse_bbox("-175,-1,-174,1"))
    assert not area.intersects(parse_bbox("0,-1,1,1"))


def test_datetime_instants_intervals_and_days(
    index: CatalogIndex, scenes: tuple[Scene, ...]
) -> None:
    january = scene_ids(scenes, lambda s: s.date.startswith("2021-01"))
    assert set(ids(index, datetime="2021-01-01T00:00:00Z/2021-01-31T23:59:59Z")) == january
    assert set(ids(index, datetime="2021-01-01/2021-01-31")) == january
    assert set(ids(index, datetime="2021-01")) == january
    assert set(ids(index, datetime="2021")) == scene_ids(scenes, lambda s: s.date[:4] == "2021")
    assert set(ids(index, datetime="2020-12/2021-01")) == scene_ids(
        scenes, lambda s: s.date < "2021-02"
    )
    early = scene_ids(scenes, lambda s: s.date < "2021-01-04")
    assert set(ids(index, datetime="../2021-01-04")) == early
    late = scene_ids(scenes, lambda s: s.date >= "2021-01-28")
    assert set(ids(index, datetime="2021-01-28/..")) == late
    assert ids(index, datetime="2021-01-05") == [scenes[1].id]
    # An instant inside the item's start/end interval (13:20:00 to 13:20:20) matches it.
    assert ids(index, datetime="2021-01-05T13:20:10Z") == [scenes[1].id]
    assert ids(index, datetime="2021-01-05T13:21:00Z") == []


def test_cql2_text_and_json_give_the_same_items(
    index: CatalogIndex, scenes: tuple[Scene, ...]
) -> None:
    cloud = median([s.cloud for s in scenes])
    shadow = max(s.shadow for s in scenes) - 0.01
    text = f'"eo:cloud_cover" < {cloud} AND "stacmask:shadow_cover" <= {shadow}'
    as_json = json.dumps(
        {
            "op": "and",
            "args": [
                {"op": "<", "args": [{"property": "eo:cloud_cover"}, cloud]},
                {"op": "<=", "args": [{"property": "stacmask:shadow_cover"}, shadow]},
            ],
        }
    )
    expected = scene_ids(scenes, lambda s: s.cloud < cloud and s.shadow <= shadow)
    assert set(ids(index, filter=text)) == expected
    assert set(ids(index, filter=as_json)) == expected
    assert expected and len(expected) < len(scenes)


def test_the_readme_recipe(index: CatalogIndex, scenes: tuple[Scene, ...]) -> None:
    """Scenes of path 221 in January with under 15 % cloud, least cloudy first."""
    found = ids(
        index,
        filter='"cbers:path" = 221 AND "eo:cloud_cover" < 15',
        datetime="2021-01-01/2021-01-31",
        sortby="+eo:cloud_cover",
    )
    january_221 = [s for s in scenes if s.path == 221 and s.date.startswith("2021-01")]
    expected = [s.id for s in sorted(january_221, key=lambda s: s.cloud) if s.cloud < 15]
    assert found == expected
    assert len(found) >= 2


def test_single_argument_and_is_accepted(index: CatalogIndex, scenes: tuple[Scene, ...]) -> None:
    """STAC Browser 4 sends one filter as an `and` of one argument."""
    cloud = median([s.cloud for s in scenes])
    single = {"op": "and", "args": [{"op": "<", "args": [{"property": "eo:cloud_cover"}, cloud]}]}
    found = [e.id for e in select(index, parse_search({"filter": single}, method="POST"))]
    assert set(found) == scene_ids(scenes, lambda s: s.cloud < cloud)


def test_max_cloud_is_a_filter_shortcut(index: CatalogIndex, scenes: tuple[Scene, ...]) -> None:
    cloud = median([s.cloud for s in scenes])
    assert set(ids(index, max_cloud=cloud)) == scene_ids(scenes, lambda s: s.cloud <= cloud)
    water = median([s.water for s in scenes])
    both = ids(index, max_cloud=cloud, filter=f'"stacmask:water_cover" > {water}')
    assert set(both) == scene_ids(scenes, lambda s: s.cloud <= cloud and s.water > water)


@pytest.mark.parametrize(
    ("sortby", "key", "reverse"),
    [
        ("+eo:cloud_cover", lambda s: s.cloud, False),
        ("-eo:cloud_cover", lambda s: s.cloud, True),
        ("-properties.stacmask:water_cover", lambda s: s.water, True),
        ("datetime", lambda s: s.date, False),
    ],
)
def test_sortby(
    index: CatalogIndex,
    scenes: tuple[Scene, ...],
    sortby: str,
    key: Callable[[Scene], object],
    reverse: bool,
) -> None:
    # ties keep the default order: newest first, then id (query.select)
    default = sorted(sorted(scenes, key=lambda s: s.id), key=lambda s: s.date, reverse=True)
    expected = [s.id for s in sorted(default, key=key, reverse=reverse)]  # type: ignore[arg-type]
    assert ids(index, sortby=sortby) == expected


def test_pages_cover_the_selection_once(index: CatalogIndex, scenes: tuple[Scene, ...]) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        result = search_page(index, parse_search({"limit": "4", "token": str(offset)}))
        seen += [entry.id for entry in result.items]
        assert result.matched == len(scenes)
        offset = result.next_offset
    assert seen == ids(index)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "0,10,1,5"}, "south"),
        ({"bbox": "0,0,200,1"}, "west and east"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "2021-13"}, "datetime"),
        ({"datetime": "2021-02-30"}, "datetime"),
        ({"datetime": "2021-02-01/2021-01-01"}, "start is after end"),
        ({"datetime": "../.."}, "open"),
        ({"filter": "eo:cloud_cover <"}, "CQL2"),
        ({"filter": '{"op": "<", "args": [1]'}, "CQL2"),
        ({"filter": "eo:cloud_cover < 1", "filter-lang": "sql"}, "filter-lang"),
        ({"intersects": '{"type": "Polygon"}'}, "intersects"),
        ({"bbox": "0,0,1,1", "intersects": '{"type":"Point","coordinates":[0,0]}'}, "together"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"token": "-1"}, "token"),
        ({"query": '{"eo:cloud_cover": {"lt": 10}}'}, "unsupported search parameter"),
        ({"sortby": ","}, "sortby"),
    ],
)
def test_bad_requests_raise_query_error(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_search(params)


def test_unknown_fields_are_refused(index: CatalogIndex) -> None:
    with pytest.raises(QueryError, match="unknown field"):
        select(index, build_search(sortby="-eo:cloudcover"))
    with pytest.raises(QueryError, match="unknown propert"):
        select(index, build_search(filter='"eo:cloudcover" < 3'))


def test_local_item_json_points_at_files(index: CatalogIndex) -> None:
    item = item_with_local_paths(index.items[0])
    mask = Path(item["assets"]["mask"]["href"])
    assert mask.is_absolute() and mask.is_file()
    links = {link["rel"]: link["href"] for link in item["links"]}
    assert links["derived_from"].startswith("http://127.0.0.1:")  # the source API
    assert Path(links["root"]) == index.root / "catalog.json"


def test_links_that_leave_the_catalog_are_skipped(
    mask_catalog: Path, tmp_path: Path, scenes: tuple[Scene, ...]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(mask_catalog, copy)
    outside = tmp_path / "outside.json"
    outside.write_text((copy / "catalog.json").read_text())
    catalog = json.loads((copy / "catalog.json").read_text())
    catalog["links"] += [
        {"rel": "child", "href": "../outside.json"},
        {"rel": "child", "href": "https://example.invalid/catalog.json"},
    ]
    (copy / "catalog.json").write_text(json.dumps(catalog))
    with pytest.warns(StacmaskWarning) as caught:
        index = CatalogIndex.load(copy)
    messages = " ".join(str(warning.message) for warning in caught)
    assert "'../outside.json' leads outside" in messages
    assert "'https://example.invalid/catalog.json' is not relative" in messages
    assert len(index.items) == len(scenes)


def test_missing_catalog_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"catalog\.json"):
        CatalogIndex.load(tmp_path)
