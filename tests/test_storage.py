"""The href policy's storage access (reading/storage.py): Planetary Computer signing against a
SAS token endpoint on 127.0.0.1, GDAL's AWS settings for stacmask's own s3 reads, credentials
kept out of messages and catalogs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from stacmask.errors import BandReadError, redact
from stacmask.reading.storage import (
    REMOTE,
    StorageAccess,
    _s3_request,
    gdal_path,
    with_token,
    without_secrets,
)
from tests.recorded_services import features
from tests.scripted_http import Answer, Request, ScriptedServer

SIGNED = StorageAccess(sign="planetary-computer")


class SasEndpoint:
    """Planetary Computer's token service: /<account>/<container> -> a SAS token that expires
    `lifetime` seconds after it is issued."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.issued = 0
        self.server = ScriptedServer(self.answer)

    def answer(self, request: Request) -> Answer:
        self.issued += 1
        expiry = datetime.now(timezone.utc) + timedelta(seconds=self.lifetime)
        token = (
            f"st=2025-01-01&se={expiry:%Y-%m-%dT%H:%M:%SZ}&sp=rl&sv=2021&sr=c&sig=tok{self.issued}"
        )
        return Answer.json({"msft:expiry": expiry.isoformat(), "token": token})


@pytest.fixture
def sas(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[SasEndpoint]:
    import planetary_computer
    from planetary_computer.sas import TOKEN_CACHE

    endpoint = SasEndpoint(getattr(request, "param", 3600.0))
    with endpoint.server:
        monkeypatch.setenv("PC_SDK_SAS_URL", endpoint.server.url)  # the package's own setting
        planetary_computer.settings.Settings.get.cache_clear()
        TOKEN_CACHE.clear()
        yield endpoint
        planetary_computer.settings.Settings.get.cache_clear()
        TOKEN_CACHE.clear()


def pc_band_href() -> str:
    item = features("pc-landsat-c2-l2", "interaction02.json")[0]
    return str(item["assets"]["red"]["href"])


def test_planetary_computer_hrefs_are_signed_by_the_token_endpoint(sas: SasEndpoint) -> None:
    href = pc_band_href()
    path = gdal_path(href, SIGNED)
    assert path.startswith("/vsicurl/" + href + "?")
    assert parse_qs(urlsplit(path).query)["sig"] == ["tok1"]
    assert sas.server.routes() == ["/landsateuwest/landsat-c2"]
    gdal_path(href, SIGNED)  # the next scene: the token is still good
    assert sas.issued == 1
    assert gdal_path(href, REMOTE) == "/vsicurl/" + href  # unsigned without --sign


@pytest.mark.parametrize("sas", [61.5], indirect=True)
def test_expired_tokens_are_renewed_during_a_long_build(sas: SasEndpoint) -> None:
    """Each scene is signed when it is read; a token within a minute of expiry is renewed."""
    href = pc_band_href()
    first = gdal_path(href, SIGNED)
    time.sleep(2.0)  # the token now has under 60 s left
    second = gdal_path(href, SIGNED)
    assert sas.issued == 2
    assert "sig=tok1" in first and "sig=tok2" in second


def test_a_failing_token_endpoint_names_the_href(monkeypatch: pytest.MonkeyPatch) -> None:
    import planetary_computer
    from planetary_computer.sas import TOKEN_CACHE

    with ScriptedServer(lambda request: Answer.json({"detail": "no"}, 403)) as down:
        monkeypatch.setenv("PC_SDK_SAS_URL", down.url)
        planetary_computer.settings.Settings.get.cache_clear()
        TOKEN_CACHE.clear()
        with pytest.raises(BandReadError, match="cannot sign for Planetary Computer"):
            gdal_path(pc_band_href(), SIGNED)
    planetary_computer.settings.Settings.get.cache_clear()


def test_credentials_never_reach_messages_or_catalog_hrefs() -> None:
    signed = "https://a.blob.core.windows.net/c/b.tif?st=1&se=2&sp=rl&sv=3&sr=c&sig=SECRET"
    assert "SECRET" not in redact(f"{signed}: HTTP 403")
    assert without_secrets(signed) == "https://a.blob.core.windows.net/c/b.tif"
    bdc = "https://data.inpe.br/bdc/stac/v1/collections/C/items/I?access_token=SECRET&x=1"
    assert without_secrets(bdc) == "https://data.inpe.br/bdc/stac/v1/collections/C/items/I?x=1"
    access = StorageAccess(access_token="SECRET").for_api("https://data.inpe.br/bdc/stac/v1/")
    assert with_token("https://data.inpe.br/bdc/data/a.tif", access).endswith("access_token=SECRET")
    assert with_token("https://elsewhere.org/a.tif", access) == "https://elsewhere.org/a.tif"


def test_s3_reads_follow_gdal_aws_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")
    monkeypatch.setenv("AWS_REQUEST_PAYER", "requester")
    monkeypatch.delenv("AWS_S3_ENDPOINT", raising=False)
    url, headers = _s3_request("s3://cbers-pds/CBERS4A/a b.xml")
    assert url == "https://cbers-pds.s3.amazonaws.com/CBERS4A/a%20b.xml"
    assert headers == {"x-amz-request-payer": "requester"}
    monkeypatch.setenv("AWS_S3_ENDPOINT", "127.0.0.1:9000")
    monkeypatch.setenv("AWS_HTTPS", "NO")
    monkeypatch.setenv("AWS_VIRTUAL_HOSTING", "FALSE")
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "NO")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    url, headers = _s3_request("s3://usgs-landsat/c2/x.TIF")
    assert url == "http://127.0.0.1:9000/usgs-landsat/c2/x.TIF"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert headers["x-amz-request-payer"] == "requester"
