"""SceneMetadata on INPE's real XML files, on hostile XML, and over HTTP from 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stacmask.constants import DEFAULT_GAINS
from stacmask.errors import MetadataError, StacmaskWarning
from stacmask.reading.storage import REMOTE
from stacmask.sensors.cbers4a.xml import SceneMetadata
from tests.conftest import shared_path

WPM = "CBERS_4A_WPM_20200730_209_139_L4_BAND2.xml"
MUX = "CBERS_4A_MUX_20200808_201_137_L4_BAND6.xml"
HREF = "https://example.test/scene_BAND1.xml"
# CBERS_4A_WPM_20200730_209_139_L4_BAND2.xml, AMAZONIA_1_WFI_20220810_033_018_L4_LEFT_BAND2.xml
NAME = re.compile(
    r"(?P<sat>[A-Z]+)_(?P<num>[0-9A-Z]+)_(?P<inst>[A-Z0-9]+)_(?P<date>\d{8})_(?P<path>\d{3})_"
    r"(?P<row>\d{3})_L(?P<level>\d)(_LEFT|_RIGHT)?_BAND(?P<band>\d+)\.xml"
)


def xml_dir() -> Path:
    return shared_path("data/inpe-xml")


def touch_all(meta: SceneMetadata) -> None:
    """Evaluate every property, as a consumer would."""
    for name in ("satellite", "instrument", "path", "row", "level", "columns", "lines"):
        getattr(meta, name)
    for name in ("pixel_size", "orbit_direction", "acquired", "processing_time", "bbox"):
        getattr(meta, name)
    _ = (meta.sun_elevation, meta.sun_azimuth, meta.gains)


# --- real files ---------------------------------------------------------------------------------
def test_every_real_file_parses_and_agrees_with_its_name() -> None:
    files = sorted(xml_dir().rglob("*.xml"))
    assert len(files) >= 30
    for file in files:
        meta = SceneMetadata.read(str(file))
        touch_all(meta)
        name = NAME.fullmatch(file.name)
        assert name, file.name
        assert meta.satellite == f"{name['sat']}-{name['num']}", file
        assert meta.instrument == name["inst"], file
        assert (meta.path, meta.row, meta.level) == (
            int(name["path"]),
            int(name["row"]),
            int(name["level"]),
        ), file
        assert meta.acquired.tzinfo is timezone.utc
        assert meta.acquired.strftime("%Y%m%d") == name["date"], file
        processing_time = meta.processing_time
        assert processing_time is not None and processing_time >= meta.acquired, file
        assert meta.sun_elevation is not None and 0 < meta.sun_elevation < 90, file
        assert meta.sun_azimuth is not None and meta.pixel_size is not None, file
        assert meta.bbox is not None and meta.bbox[0] < meta.bbox[2] and meta.bbox[1] < meta.bbox[3]
        if meta.gains:  # a file's gains cover its own band
            assert name["band"] in meta.gains, file


def test_wpm_2020_values_and_default_gains() -> None:
    path = xml_dir() / WPM
    meta = SceneMetadata.read(str(path))
    assert (meta.satellite, meta.instrument, meta.level) == ("CBERS-4A", "WPM", 4)
    assert (meta.path, meta.row, meta.columns, meta.lines) == (209, 139, 14198, 14584)
    assert meta.pixel_size == 8.0
    assert meta.orbit_direction == "descending"
    assert meta.sun_elevation == pytest.approx(44.3304)
    assert meta.sun_azimuth == pytest.approx(32.9789)
    assert meta.acquired == datetime(2020, 7, 30, 13, 51, 24, 147000, tzinfo=timezone.utc)
    assert meta.processing_time == datetime(2020, 7, 31, 4, 49, 26, 41520, tzinfo=timezone.utc)
    assert meta.gains == {}
    with pytest.warns(StacmaskWarning) as record:
        gains, source = meta.calibration_gains()
    assert (gains, source) == (DEFAULT_GAINS, "default")
    assert str(path) in str(record[0].message) and "1, 2, 3, 4" in str(record[0].message)


def test_wpm_per_band_files_share_the_scene() -> None:
    metas = [
        SceneMetadata.read(str(xml_dir() / f"stars/CBERS_4A_WPM_20200730_209_139_L4_BAND{b}.xml"))
        for b in range(5)
    ]
    assert {(m.path, m.row, m.acquired) for m in metas} == {(209, 139, metas[0].acquired)}
    assert [m.pixel_size for m in metas] == [2.0, 8.0, 8.0, 8.0, 8.0]
    elevations = [m.sun_elevation or 0.0 for m in metas]
    assert max(elevations) - min(elevations) < 0.05  # per-band values, one sun
    assert all(m.gains == {} for m in metas)


def test_mux_gains_come_from_the_xml() -> None:
    meta = SceneMetadata.read(str(xml_dir() / MUX))
    assert meta.gains == {"5": 0.947982, "6": 0.965583, "7": 0.946315, "8": 0.739644}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert meta.calibration_gains(("5", "6", "7", "8")) == (
            (0.947982, 0.965583, 0.946315, 0.739644),
            "xml",
        )
    with pytest.warns(StacmaskWarning, match=r"band\(s\) 9;"):
        assert meta.calibration_gains(("5", "6", "7", "9")) == (DEFAULT_GAINS, "default")


def test_two_camera_file_averages_the_cameras() -> None:
    meta = SceneMetadata.read(str(xml_dir() / "CBERS_4A_WFI_20200801_221_156_L4_BAND13.xml"))
    # left camera 32.4378 / 31.4542, right camera 33.2494 / 27.5007 (read from the file)
    assert meta.sun_elevation == pytest.approx((32.4378 + 33.2494) / 2)
    assert meta.sun_azimuth == pytest.approx((31.4542 + 27.5007) / 2)
    assert meta.columns == 9729  # left camera


def test_agrees_with_cbers_2_stac_reference_items() -> None:
    refs = sorted(xml_dir().glob("ref_*.json"))
    assert len(refs) >= 9
    for ref_file in refs:
        ref = json.loads(ref_file.read_text())
        props = ref["properties"]
        meta = SceneMetadata.read(str(xml_dir() / ref["assets"]["metadata"]["href"].split("/")[-1]))
        prefix = "amazonia" if meta.satellite.startswith("AMAZONIA") else "cbers"
        assert (meta.path, meta.row) == (props[f"{prefix}:path"], props[f"{prefix}:row"]), ref_file
        assert f"L{meta.level}" == props[f"{prefix}:data_type"], ref_file
        assert meta.satellite.lower() == props["platform"], ref_file
        assert [meta.instrument] == props["instruments"], ref_file
        assert meta.orbit_direction == props["sat:orbit_state"], ref_file
        assert meta.acquired.strftime("%Y-%m-%dT%H:%M:%SZ") == props["datetime"], ref_file
        assert meta.sun_elevation == pytest.approx(props["view:sun_elevation"], abs=1e-9)
        assert meta.sun_azimuth == pytest.approx(props["view:sun_azimuth"], abs=1e-9)
        # cbers-2-stac takes bbox from the LL and UR corners; ours is the envelope of all four,
        # so it holds the reference and differs by the rotation of the scene frame (a few %)
        west, south, east, north = ref["bbox"]
        bbox = meta.bbox
        assert bbox is not None
        assert bbox[0] <= west and bbox[1] <= south and bbox[2] >= east and bbox[3] >= north
        extent = max(east - west, north - south)
        assert max(abs(a - b) for a, b in zip(bbox, ref["bbox"], strict=True)) < 0.05 * extent
        if "NOGAIN" in ref_file.name:
            assert meta.gains == {}


# --- hostile and malformed XML ------------------------------------------------------------------
@pytest.fixture(scope="module")
def wpm_bytes() -> bytes:
    return (xml_dir() / WPM).read_bytes()


def edit(base: bytes, old: str, new: str) -> bytes:
    assert base.count(old.encode()) == 1, old
    return base.replace(old.encode(), new.encode())


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE prdf [<!ENTITY a "lololololololololol">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + ']><prdf xmlns="http://www.gisplan.com.br/xmlsat">&j;</prdf>'
).encode()
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE prdf [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<prdf xmlns="http://www.gisplan.com.br/xmlsat"><satellite><name>&x;</name></satellite></prdf>'
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE prdf SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b'<prdf xmlns="http://www.gisplan.com.br/xmlsat"/>'
)

# id -> (build bytes from the real WPM file, expected message)
HOSTILE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "billion-laughs": (lambda b: LAUGHS, "refused XML"),
    "external-entity": (lambda b: EXTERNAL, "refused XML"),
    "external-dtd": (lambda b: EXTERNAL_DTD, "refused XML"),
    "dtd-in-real-file": (
        lambda b: edit(b, "<prdf ", "<!DOCTYPE prdf []>\n<prdf "),
        "refused XML",
    ),
    "html-error-page": (lambda b: b"<html><body>502 Bad Gateway</body></html>", "root is <html>"),
    "not-xml": (lambda b: b"%PDF-1.4\n\x00\x01binary", "not well-formed"),
    "empty": (lambda b: b"", "not well-formed"),
    "unknown-encoding": (lambda b: edit(b, 'encoding="UTF-8"', 'encoding="klingon"'), "klingon"),
    "truncated": (lambda b: b[: len(b) // 2], "not well-formed"),
    "wrong-root": (lambda b: b'<kml xmlns="http://www.opengis.net/kml/2.2"/>', "expected <prdf>"),
    "wrong-namespace": (
        lambda b: edit(b, 'xmlns="http://www.gisplan.com.br/xmlsat"', 'xmlns="http://x.test/"'),
        "expected <prdf>",
    ),
    "no-namespace": (
        lambda b: edit(b, 'xmlns="http://www.gisplan.com.br/xmlsat"', ""),
        "expected <prdf>",
    ),
    "oversize": (lambda b: b + b"<!--" + b"x" * 2_000_000 + b"-->", "2000000-byte limit"),
    "sun-elevation-abc": (
        lambda b: edit(b, "<elevation>44.3304<", "<elevation>abc<"),
        "sun elevation is not a number: 'abc'",
    ),
    "sun-elevation-95": (
        lambda b: edit(b, "<elevation>44.3304<", "<elevation>95<"),
        r"sun elevation 95 is outside \[-90, 90\]",
    ),
    "sun-elevation-nan": (lambda b: edit(b, "<elevation>44.3304<", "<elevation>NaN<"), "outside"),
    "sun-azimuth-400": (lambda b: edit(b, "<sunAzimuth>32.9789<", "<sunAzimuth>400<"), "outside"),
    "path-abc": (lambda b: edit(b, "<path>209<", "<path>abc<"), "path is not an integer"),
    "path-negative": (lambda b: edit(b, "<path>209<", "<path>-209<"), "path is not an integer"),
    "path-missing": (lambda b: edit(b, "<path>209</path>", ""), "missing element image/path"),
    "columns-huge": (lambda b: edit(b, "<columns>14198<", "<columns>99999999999<"), "outside"),
    "date-not-iso": (
        lambda b: re.sub(rb"(<viewing>\s*<begin>[^<]*</begin>\s*<center>)[^<]*", rb"\1x", b),
        "viewing/center is not an ISO date-time: 'x'",
    ),
    "orbit-sideways": (
        lambda b: edit(b, ">Descending<", ">Sideways<"),
        "orbitDirection is malformed",
    ),
    "satellite-name-markup": (
        lambda b: edit(b, "<name>CBERS</name>", "<name>CBERS; rm -rf</name>"),
        "satellite/name is malformed",
    ),
    "gain-negative": (
        lambda b: edit(b, "<ephemerisMode>", _gains('"1">-0.3', '"2">0.3') + "<ephemerisMode>"),
        "calibration gain of band 1 -0.3 is outside",
    ),
    "gain-duplicate": (
        lambda b: edit(b, "<ephemerisMode>", _gains('"1">0.3', '"1">0.3') + "<ephemerisMode>"),
        "calibration band name '1' is malformed",
    ),
    "gain-text": (
        lambda b: edit(b, "<ephemerisMode>", _gains('"1">high', '"2">0.3') + "<ephemerisMode>"),
        "calibration gain of band 1 is not a number",
    ),
    "bbox-half-corner": (lambda b: edit(b, "<latitude>-20.117457</latitude>", ""), "lacks"),
}


def _gains(*bands: str) -> str:
    inner = "".join(f"<band name={band}</band>" for band in bands)
    return f"<absoluteCalibrationCoefficient>{inner}</absoluteCalibrationCoefficient>"


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_or_malformed_xml_raises_metadata_error(wpm_bytes: bytes, case: str) -> None:
    build, message = HOSTILE[case]
    data = build(wpm_bytes)
    start = time.monotonic()
    with pytest.raises(MetadataError, match=message) as error:
        touch_all(SceneMetadata.from_bytes(data, HREF))
    assert time.monotonic() - start < 1.0  # refused, never expanded
    assert error.value.href == HREF and str(error.value).startswith(HREF)
    assert "root:" not in str(error.value)  # /etc/passwd never read


def test_missing_optional_elements_give_none(wpm_bytes: bytes) -> None:
    data = re.sub(rb"<sunPosition>.*?</sunPosition>", b"", wpm_bytes, flags=re.S)
    data = re.sub(rb"<boundingBox>.*?</boundingBox>", b"", data, flags=re.S)
    for tag in (b"processingTime", b"orbitDirection", b"horizontalPixelSize"):
        data = re.sub(rb"<%s>.*?</%s>" % (tag, tag), b"", data)
    meta = SceneMetadata.from_bytes(data, HREF)
    assert (meta.sun_elevation, meta.sun_azimuth, meta.bbox) == (None, None, None)
    assert (meta.processing_time, meta.orbit_direction, meta.pixel_size) == (None, None, None)
    assert meta.path == 209  # the rest still reads


def test_time_stamp_is_the_fallback_acquisition_time(wpm_bytes: bytes) -> None:
    data = re.sub(rb"<viewing>.*?</viewing>", b"", wpm_bytes, flags=re.S)
    meta = SceneMetadata.from_bytes(data, HREF)
    assert meta.acquired == datetime(2020, 7, 30, 13, 51, 24, 147711, tzinfo=timezone.utc)


def test_local_read_errors(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="cannot read"):
        SceneMetadata.read(str(tmp_path / "missing.xml"))
    with pytest.raises(MetadataError, match="scheme 'ftp' is not read"):
        SceneMetadata.read("ftp://host/scene.xml")
    with pytest.raises(MetadataError, match="GDAL virtual file prefixes"):
        SceneMetadata.read("/vsizip//tmp/a.zip/scene.xml")
    with pytest.raises(MetadataError, match="local paths are not read from remote items"):
        SceneMetadata.read(str(tmp_path / "missing.xml"), access=REMOTE)
    big = tmp_path / "big.xml"
    big.write_bytes(b" " * 3_000_000)
    with pytest.raises(MetadataError, match="limit"):
        SceneMetadata.read(str(big))


# --- HTTP on 127.0.0.1 --------------------------------------------------------------------------
@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between body bytes
    headers: tuple[tuple[str, str], ...] = ()
    length: bool = True  # send Content-Length (else the body ends when the connection closes)


class XmlServer(ThreadingHTTPServer):
    """Serves scripted answers per path; answer n goes to request n (the last one repeats)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, list[Answer]] = {}
        self.hits: Counter[str] = Counter()

    def url(self, path: str, *answers: Answer) -> str:
        self.routes[path] = list(answers)
        return f"http://127.0.0.1:{self.server_port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: XmlServer

    def do_GET(self) -> None:
        answers = self.server.routes[self.path]
        answer = answers[min(self.server.hits[self.path], len(answers) - 1)]
        self.server.hits[self.path] += 1
        time.sleep(answer.delay)
        try:
            self.send_response(answer.status)
            for key, value in answer.headers:
                self.send_header(key, value)
            if answer.length:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if not answer.trickle:
                self.wfile.write(answer.body)
            for byte in answer.body if answer.trickle else b"":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(answer.trickle)
        except OSError:  # the client hung up, as it should on hostile answers
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[XmlServer]:
    srv = XmlServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_http_read_matches_local_read(server: XmlServer, wpm_bytes: bytes) -> None:
    meta = SceneMetadata.read(server.url("/a.xml", Answer(body=wpm_bytes)))
    assert (meta.path, meta.row, meta.sun_elevation) == (209, 139, 44.3304)
    assert meta.href.endswith("/a.xml")


def test_http_gzip_body_is_decoded(server: XmlServer, wpm_bytes: bytes) -> None:
    gz = Answer(body=gzip.compress(wpm_bytes), headers=(("Content-Encoding", "gzip"),))
    assert SceneMetadata.read(server.url("/gz.xml", gz)).row == 139


def test_http_500_then_200_is_retried(server: XmlServer, wpm_bytes: bytes) -> None:
    url = server.url("/flaky.xml", Answer(status=500, body=b"busy"), Answer(body=wpm_bytes))
    assert SceneMetadata.read(url).path == 209
    assert server.hits["/flaky.xml"] == 2


def test_http_persistent_5xx_gives_up_after_the_retries(server: XmlServer) -> None:
    url = server.url("/down.xml", Answer(status=503))
    with pytest.raises(MetadataError, match="failed after 3 attempt"):
        SceneMetadata.read(url, retries=2)
    assert server.hits["/down.xml"] == 3


def test_http_404_is_not_retried(server: XmlServer) -> None:
    url = server.url("/gone.xml", Answer(status=404))
    with pytest.raises(MetadataError, match="HTTP 404"):
        SceneMetadata.read(url)
    assert server.hits["/gone.xml"] == 1


def test_http_silent_server_times_out_quickly(server: XmlServer, wpm_bytes: bytes) -> None:
    url = server.url("/slow.xml", Answer(body=wpm_bytes, delay=3.0))
    start = time.monotonic()
    with pytest.raises(MetadataError, match=r"no answer within 0\.3 s"):
        SceneMetadata.read(url, timeout=0.3)
    assert time.monotonic() - start < 1.5
    assert server.hits["/slow.xml"] == 1  # a timeout is not retried


def test_http_trickling_body_meets_the_deadline(server: XmlServer, wpm_bytes: bytes) -> None:
    url = server.url("/trickle.xml", Answer(body=wpm_bytes[:200], trickle=0.02))
    start = time.monotonic()
    with pytest.raises(MetadataError, match=r"body not received within 0\.5 s"):
        SceneMetadata.read(url, timeout=0.5)
    assert time.monotonic() - start < 1.5  # 200 bytes x 0.02 s would take 4 s


@pytest.mark.parametrize("length", [True, False])
def test_http_oversize_body_is_refused(server: XmlServer, length: bool) -> None:
    url = server.url("/big.xml", Answer(body=b"<" * 2_500_000, length=length))
    with pytest.raises(MetadataError, match="2000000-byte limit"):
        SceneMetadata.read(url)


def test_http_gzip_bomb_is_capped(server: XmlServer) -> None:
    bomb = Answer(body=gzip.compress(b" " * 20_000_000), headers=(("Content-Encoding", "gzip"),))
    assert len(bomb.body) < 100_000
    with pytest.raises(MetadataError, match="limit"):
        SceneMetadata.read(server.url("/bomb.xml", bomb))


def test_http_refused_connection_is_retried_then_fails() -> None:
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(MetadataError, match="failed after 2 attempt"):
        SceneMetadata.read(f"http://127.0.0.1:{port}/x.xml", retries=1)
    assert 0.2 < time.monotonic() - start < 2.0  # one backoff of 0.25 s
