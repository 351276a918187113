"""Where band rasters and metadata may be read from, and how: stacmask's href policy.

Hrefs of remote items are hostile until checked. A band or metadata href may be
- an http(s) URL (GDAL reads it through /vsicurl/; stacmask's own reads through stacmask.http);
- an `s3://bucket/key` URL, read with GDAL's own AWS settings (AWS_NO_SIGN_REQUEST,
  AWS_REQUEST_PAYER, AWS_S3_ENDPOINT, AWS_HTTPS, AWS_VIRTUAL_HOSTING, AWS_REGION and the usual
  credentials), by GDAL through /vsis3/ and by stacmask (the CBERS XML) with the same settings;
- a local path only when the caller says so (`stacmask mask`, a catalog the user points at a
  local folder: `StorageAccess(allow_local=True)`).
Anything else is refused: other schemes (file://, ftp://, ...) and GDAL's own prefixes
(/vsizip/, /vsicurl/, /vsisubfile/, /vsigzip/, /vsistdin/, ...), which must never come from
remote input. A redirect never takes a read to another scheme: stacmask's session follows http(s)
only, and GDAL's curl, which would follow a redirect to ftp(s)://, is sent to a dead loopback
proxy for those schemes (`guard_redirects`).

StorageAccess also carries how hrefs are made readable: an `alternate` asset href (e.g.
`alternate.s3`), Planetary Computer SAS signing (the `planetary-computer` package; its token
endpoint is PC_SDK_SAS_URL; tokens are fetched per scene when it is read and renewed when they
near expiry), and a Brazil Data Cube `access_token` added to the hrefs of the API's own host.
None of it is ever written into a catalog.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import rasterio
from rasterio.io import DatasetReader

from stacmask.errors import SECRET_PARAMETERS, BandReadError, ItemError, StacmaskError, redact
from stacmask.http import fetch

#: Signing services stacmask knows (`--sign`).
Signer = Literal["planetary-computer"]
SIGNERS: Final = ("planetary-computer",)
#: Environment variable of the BDC access token (`--access-token`).
ACCESS_TOKEN_ENV: Final = "BDC_ACCESS_TOKEN"
#: A loopback port nothing listens on: GDAL's curl is sent there for ftp(s) redirects.
DEAD_PROXY: Final = "http://127.0.0.1:9"
#: GDAL settings for reading bands over HTTP: retries on 429/5xx, timeouts, no directory
#: listing of the remote folder, merged consecutive range requests.
GDAL_HTTP_OPTIONS: Final[dict[str, str | int | bool]] = {
    "GDAL_HTTP_MAX_RETRY": 3,
    "GDAL_HTTP_RETRY_DELAY": 1,
    "GDAL_HTTP_TIMEOUT": 60,
    "GDAL_HTTP_CONNECTTIMEOUT": 15,
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    # GDAL's block cache defaults to 5 % of RAM; decoded blocks are read once, so keep it small.
    "GDAL_CACHEMAX": 128,
}


class HrefRefused(ItemError):
    """An href that stacmask will not read (a scheme or GDAL prefix outside the policy)."""

    def __init__(self, href: str, reason: str) -> None:
        super().__init__(f"{redact(href)[:300]}: refused: {reason}")
        self.href = redact(href)


@dataclass(frozen=True)
class StorageAccess:
    """How a build (or `stacmask mask`) may read hrefs, and how it makes them readable."""

    #: Local paths may be read (`stacmask mask`, a local source catalog); never for remote items.
    allow_local: bool = False
    #: Read each asset's `alternate.<name>.href` where it has one (e.g. "s3").
    alternate: str | None = None
    #: Sign hrefs with this service before reading them.
    sign: Signer | None = None
    #: Brazil Data Cube access token, added as `?access_token=` to hrefs on `token_host`.
    access_token: str | None = None
    token_host: str | None = None

    def for_api(self, stac_url: str) -> StorageAccess:
        """This access with its token bound to the host of the STAC API at `stac_url`."""
        return replace(self, token_host=urlsplit(stac_url).hostname)


#: Remote items: http(s) and s3 only.
REMOTE: Final = StorageAccess()
#: Files the user named on the command line.
LOCAL: Final = StorageAccess(allow_local=True)


def _scheme(href: str) -> str:
    if href.startswith("/vsi") or href.startswith("\\vsi"):
        return "vsi"
    scheme = urlsplit(href).scheme.lower()
    return "" if len(scheme) == 1 else scheme  # a Windows drive letter is a local path


def checked(href: str, access: StorageAccess) -> tuple[str, str]:
    """(scheme, href) of an href the policy allows ("" for a local path); HrefRefused else."""
    if not isinstance(href, str) or not href or "\x00" in href:
        raise HrefRefused(str(href), "empty or not a text href")
    scheme = _scheme(href)
    if scheme in ("http", "https"):
        if not urlsplit(href).hostname:
            raise HrefRefused(href, "URL has no host")
        return scheme, href
    if scheme == "s3":
        parts = urlsplit(href)
        if not parts.netloc or not parts.path.strip("/"):
            raise HrefRefused(href, "an s3 href needs a bucket and a key")
        return scheme, href
    if scheme == "" and access.allow_local:
        return scheme, href
    if scheme == "vsi":
        raise HrefRefused(href, "GDAL virtual file prefixes are never read from item hrefs")
    if scheme == "":
        raise HrefRefused(href, "local paths are not read from remote items")
    raise HrefRefused(href, f"scheme {scheme!r} is not read (use http(s) or s3)")


def with_token(href: str, access: StorageAccess) -> str:
    """`href` with the BDC access token as `access_token=` when it is on the token's host."""
    if not access.access_token or urlsplit(href).hostname != access.token_host:
        return href
    parts = urlsplit(href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = [(k, v) for k, v in query if k != "access_token"]
    query.append(("access_token", access.access_token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def signed(href: str, access: StorageAccess) -> str:
    """`href` signed for reading (Planetary Computer SAS for its blob storage hrefs)."""
    if access.sign != "planetary-computer":
        return href
    try:
        import planetary_computer
    except ImportError as exc:  # pragma: no cover - an install without the extra
        raise StacmaskError(
            "--sign planetary-computer needs the planetary-computer package "
            "(pip install 'stacmask[planetary-computer]')"
        ) from exc
    try:
        return str(planetary_computer.sign_url(href))
    except Exception as exc:  # the token service failed: say which href, in one line
        raise BandReadError(href, f"cannot sign for Planetary Computer: {exc}") from exc


def readable(href: str, access: StorageAccess) -> str:
    """The href as it is read: checked by the policy, with the access token, signed."""
    scheme, href = checked(href, access)
    if scheme in ("http", "https"):
        return signed(with_token(href, access), access)
    return href


def gdal_path(href: str, access: StorageAccess) -> str:
    """What GDAL opens for `href`: /vsicurl/ for http(s), /vsis3/ for s3, a local path as is."""
    scheme, _ = checked(href, access)
    href = readable(href, access)
    if scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    if scheme == "s3":
        parts = urlsplit(href)
        return f"/vsis3/{parts.netloc}{parts.path}"
    return href


def open_raster(path: str) -> DatasetReader:
    """rasterio.open for what `gdal_path` makes (and local paths); other GDAL prefixes refused.

    The reader's last guard: whatever reaches it, only /vsicurl/http(s), /vsis3/ and plain
    paths are opened (an http(s) or s3 URL is turned into one; other schemes are refused).
    """
    if path.startswith("/vsi") or path.startswith("\\vsi"):
        rest = path.split("/", 2)[-1] if path.startswith("/vsi") else ""
        allowed = (path.startswith("/vsicurl/") and _scheme(rest) in ("http", "https")) or (
            path.startswith("/vsis3/")
        )
        if not allowed:
            raise HrefRefused(path, "GDAL virtual file prefixes other than the reader's own")
    elif _scheme(path) != "":  # a URL given straight to the reader (`stacmask mask`)
        path = gdal_path(path, LOCAL)
    return rasterio.open(path)


def guard_redirects() -> None:
    """Make GDAL's curl unable to follow a redirect to ftp(s)://: it would (curl allows
    http, https, ftp and ftps on redirect and GDAL has no setting for it), so those schemes go
    to a dead loopback proxy. curl never follows redirects to file:// or other schemes."""
    for name in ("ftp_proxy", "ftps_proxy", "FTP_PROXY", "FTPS_PROXY"):
        os.environ[name] = DEAD_PROXY


def gdal_options(timeout: float) -> dict[str, str | int | bool]:
    """GDAL_HTTP_OPTIONS with an HTTP timeout of `timeout` seconds (at least 1); also guards
    GDAL's redirects (guard_redirects)."""
    guard_redirects()
    seconds = max(1, round(timeout))
    return {
        **GDAL_HTTP_OPTIONS,
        "GDAL_HTTP_TIMEOUT": seconds,
        "GDAL_HTTP_CONNECTTIMEOUT": min(seconds, 15),
    }


# --- items -----------------------------------------------------------------------------------
def with_alternates(item: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """A copy of the item dict whose assets use their `alternate.<name>.href` where they have
    one (the STAC alternate-assets extension), e.g. name "s3" for USGS landsatlook items."""
    result = copy.deepcopy(dict(item))
    if not name:
        return result
    for asset in (result.get("assets") or {}).values():
        if not isinstance(asset, dict):
            continue
        alternate = asset.get("alternate")
        choice = alternate.get(name) if isinstance(alternate, dict) else None
        if isinstance(choice, dict) and isinstance(choice.get("href"), str):
            asset["href"] = choice["href"]
    return result


def without_secrets(href: str | None) -> str | None:
    """`href` without credential query parameters (an access token, a SAS signature): for
    hrefs written into the catalog."""
    if not href:
        return href
    parts = urlsplit(href)
    if not parts.query:
        return href
    secret_names = {name.lower() for name in SECRET_PARAMETERS} | {"se", "sp", "sv", "sr", "st"}
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in secret_names
    ]
    return urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote)))


# --- stacmask's own reads (metadata files) ---------------------------------------------------
def _s3_request(href: str) -> tuple[str, dict[str, str]]:
    """The HTTP URL and headers of an s3:// href under GDAL's AWS settings (environment)."""
    env = os.environ
    parts = urlsplit(href)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    endpoint = env.get("AWS_S3_ENDPOINT", "s3.amazonaws.com")
    endpoint = endpoint.split("://", 1)[-1].rstrip("/")
    https = env.get("AWS_HTTPS", "YES").upper() not in ("NO", "FALSE", "OFF", "0")
    virtual = env.get("AWS_VIRTUAL_HOSTING", "TRUE").upper() not in ("NO", "FALSE", "OFF", "0")
    scheme = "https" if https else "http"
    quoted = quote(key, safe="/~")
    if virtual and "." not in bucket:
        url = f"{scheme}://{bucket}.{endpoint}/{quoted}"
    else:
        url = f"{scheme}://{endpoint}/{bucket}/{quoted}"
    headers: dict[str, str] = {}
    if env.get("AWS_REQUEST_PAYER", "").lower() == "requester":
        headers["x-amz-request-payer"] = "requester"
    if env.get("AWS_NO_SIGN_REQUEST", "NO").upper() in ("YES", "TRUE", "ON", "1"):
        return url, headers
    return url, _aws_signed_headers(url, headers, href)


def _aws_signed_headers(url: str, headers: dict[str, str], href: str) -> dict[str, str]:
    """`headers` with AWS Signature V4 for a GET of `url` (botocore's signer and credentials)."""
    import botocore.session
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise HrefRefused(
            href,
            "no AWS credentials: set AWS_NO_SIGN_REQUEST=YES for a public bucket, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_REQUEST_PAYER=requester for a "
            "requester-pays bucket)",
        )
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    request = AWSRequest(method="GET", url=url, headers=dict(headers))
    S3SigV4Auth(credentials.get_frozen_credentials(), "s3", region).add_auth(request)
    return dict(request.headers.items())


def read_bytes(
    href: str, access: StorageAccess, *, timeout: float, max_bytes: int, retries: int = 3
) -> bytes:
    """The bytes at `href` (a metadata file) under the policy: http(s) and s3 through
    stacmask's HTTP policy, local paths when `access` allows them. At most `max_bytes` + 1
    bytes are read from a local file (the caller refuses a larger one)."""
    scheme, href = checked(href, access)
    if scheme == "":
        with open(href, "rb") as file:
            return file.read(max_bytes + 1)
    if scheme == "s3":
        url, headers = _s3_request(href)
        return fetch(url, timeout=timeout, max_bytes=max_bytes, retries=retries, headers=headers)
    return fetch(readable(href, access), timeout=timeout, max_bytes=max_bytes, retries=retries)
