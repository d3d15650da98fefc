"""The client's decoders against recorded NetSuite responses and Oracle's documented shapes.

`ERPGW_VENDOR_SPECS/netsuite` has no recorded responses (no public machine-readable source
exists, see its SOURCE.txt); every file that appears in `netsuite/wire-samples/` is parsed.
The documented shapes below are written for this project from Oracle's help pages.
"""

from __future__ import annotations

import json

import httpx
import msgspec
import pytest

from contracts.errors import UpstreamAuthFailed, UpstreamInvalid, UpstreamNotFound
from system_apis.erp.netsuite._client_http import ERRORS
from system_apis.erp.netsuite._wire import Collection, ErrorDocument, SuiteQLPage
from tests.support.vendor_specs import vendor_specs_dir

DOCUMENTED_ERRORS = [
    (401, {"type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
           "title": "Unauthorized", "status": 401,
           "o:errorDetails": [{"detail": "Invalid login attempt.",
                               "o:errorCode": "INVALID_LOGIN"}]}, UpstreamAuthFailed),
    (400, {"type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1",
           "title": "Bad Request", "status": 400,
           "o:errorDetails": [{"detail": "Invalid Field Value 9999 for the following field: item",
                               "o:errorCode": "INVALID_CONTENT",
                               "o:errorPath": "item.items[0].item"}]}, UpstreamInvalid),
    (404, {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5",
           "title": "Not Found", "status": 404,
           "o:errorDetails": [{"detail": "The record instance does not exist.",
                               "o:errorCode": "NONEXISTENT_ID"}]}, UpstreamNotFound),
]


@pytest.mark.parametrize(("status", "body", "error"), DOCUMENTED_ERRORS)
def test_documented_errors_classify(status: int, body: dict[str, object],
                                    error: type[Exception]) -> None:
    response = httpx.Response(status, json=body, request=httpx.Request("GET", "https://x"))
    classified = ERRORS.error_for(response, "read")
    assert isinstance(classified, error)
    if isinstance(classified, UpstreamInvalid):
        assert classified.errors[0].pointer == "item.items[0].item"


def test_documented_collection_page_parses() -> None:
    body = {"links": [{"rel": "next", "href": "https://demo.test/customer?limit=2&offset=2"},
                      {"rel": "self", "href": "https://demo.test/customer?limit=2&offset=0"}],
            "items": [{"links": [{"rel": "self", "href": "https://demo.test/customer/107"}],
                       "id": "107"}], "count": 1, "hasMore": True, "offset": 0,
            "totalResults": 3}
    page = msgspec.json.decode(json.dumps(body), type=Collection)
    assert (page.items[0].id, page.has_more, page.total_results) == ("107", True, 3)
    rows = msgspec.json.decode(json.dumps({**body, "items": [{"links": [], "id": "1",
                                                              "companyname": "A"}]}),
                               type=SuiteQLPage)
    assert rows.items[0]["companyname"] == "A"


def test_every_recorded_netsuite_response_parses() -> None:
    folder = vendor_specs_dir() / "netsuite" / "wire-samples"
    if not folder.is_dir():
        pytest.skip("no recorded NetSuite responses exist in the vendor specs "
                    "(netsuite/SOURCE.txt: each account serves its own metadata)")
    parsed = 0
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "o:errorDetails" in data:
            msgspec.convert(data, ErrorDocument)
        elif isinstance(data, dict) and "items" in data:
            msgspec.convert(data, Collection if "hasMore" in data else SuiteQLPage)
        else:
            continue
        parsed += 1
    assert parsed > 0, f"no NetSuite response in {folder} was parsed"
