"""Runs ../shared/tools/offline_schemas.py with pystac's schema reads kept offline too.

offline_schemas.py answers the schema URLs that `requests` fetches from ../shared/stac-schemas;
stac-api-validator's last step (pystac's `validate()` of the landing page and collections)
reads extension schemas with urllib3 instead, which it does not intercept. This answers those
from the same schema map, then hands over to offline_schemas.py unchanged.
Usage: python offline_pystac.py OFFLINE_SCHEMAS_PY CONSOLE_SCRIPT ARGS...
Runs in stac-api-validator's own environment (it has urllib3 and pyyaml).
"""

import io
import os
import runpy
import sys

import urllib3
import yaml

TOOL = os.path.abspath(sys.argv[1])
BASE = os.path.join(os.path.dirname(TOOL), "..", "stac-schemas")
with open(os.path.join(BASE, "schema-map.yaml"), encoding="utf-8") as stream:
    SCHEMAS = {k: os.path.join(BASE, v) for k, v in yaml.safe_load(stream)["schemas"].items()}
_request = urllib3.PoolManager.request


def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
    """A schema from the map as a 200 response; anything else as urllib3 would."""
    local = SCHEMAS.get(str(url).split("#")[0])
    if method == "GET" and local is not None:
        with open(local, "rb") as schema:
            body = schema.read()
        return urllib3.response.HTTPResponse(
            body=io.BytesIO(body), status=200, preload_content=False, request_url=url
        )
    return _request(self, method, url, *args, **kwargs)


urllib3.PoolManager.request = request
sys.argv = sys.argv[1:]
runpy.run_path(TOOL, run_name="__main__")
