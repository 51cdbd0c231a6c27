"""Validation helpers of ingest/payload.py and pipeline.py, on their own (no database)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from flask_analytics.errors import InvalidEvent
from flask_analytics.ingest.payload import check_event_id
from flask_analytics.ingest.pipeline import RequestInfo

CANONICAL = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    "sent",
    [
        CANONICAL,
        CANONICAL.upper(),
        "{" + CANONICAL + "}",
        "urn:uuid:" + CANONICAL,
        CANONICAL.replace("-", ""),
    ],
)
def test_event_ids_are_stored_in_one_form_whatever_the_spelling(sent):
    # Dedupe compares stored text: every spelling of one UUID must give the same text.
    assert check_event_id(sent, "event_id") == str(uuid.UUID(CANONICAL)) == CANONICAL


@pytest.mark.parametrize(
    "sent", ["not-a-uuid", CANONICAL[:-1] + "g", CANONICAL + "0", CANONICAL[:-1], 42]
)
def test_malformed_event_ids_are_refused(sent):
    with pytest.raises(InvalidEvent):
        check_event_id(sent, "event_id")


def test_request_info_copy_keeps_every_field_and_shares_the_memo():
    values = {
        "ip": "203.0.113.9",
        "user_agent": "UA",
        "dnt": True,
        "country_header": "DE",
        "accept_language": "de-DE,de;q=0.9",
        "request_host": "example.com",
        "from_browser": False,
        "request": object(),
        "memo": {"anon_ip": "203.0.113.0"},
    }
    # A field added to RequestInfo without being added to copy() fails here.
    assert {f.name for f in dataclasses.fields(RequestInfo)} == set(values)
    info = RequestInfo(**values)
    copied = info.copy()
    assert copied is not info
    for name, value in values.items():
        assert getattr(copied, name) is value
    copied.ip = None
    assert info.ip == "203.0.113.9"
