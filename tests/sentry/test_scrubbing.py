"""The scrubber on its own: what counts as a secret name, a card number, a secret query or path parameter."""

from __future__ import annotations

import pytest

from otelkit.sentry.scrubbing import FILTERED, Scrubber, luhn_valid


@pytest.mark.parametrize(
    "name",
    ["password", "user_password", "Passwd", "client_secret", "access_token", "X-Api-Key", "apikey", "sessionid",
     "Authorization", "Cookie", "Set-Cookie", "csrf_token", "private_key", "aws_credentials"],
)  # fmt: skip
def test_secret_names_are_recognised_however_they_are_spelled(name: str) -> None:
    assert Scrubber().scrub({name: "s3cr3t"}) == {name: FILTERED}


@pytest.mark.parametrize("name", ["author", "passenger", "order_id", "user_agent", "description"])
def test_ordinary_names_are_left_alone(name: str) -> None:
    assert Scrubber().scrub({name: "value"}) == {name: "value"}


def test_client_addresses_go_unless_pii_is_allowed() -> None:
    data = {"client.address": "203.0.113.9", "headers": {"X-Forwarded-For": "203.0.113.9"}}
    assert Scrubber().scrub(data) == {"client.address": FILTERED, "headers": {"X-Forwarded-For": FILTERED}}
    assert Scrubber(send_default_pii=True).scrub(data) == data


def test_card_numbers_are_replaced_only_when_the_luhn_check_passes() -> None:
    scrubbed = Scrubber().scrub("paid with 4111 1111 1111 1111 and 5500-0000-0000-0004, order 4111111111111112")
    assert scrubbed == f"paid with {FILTERED} and {FILTERED}, order 4111111111111112"
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


def test_identifiers_are_never_taken_for_card_numbers() -> None:
    """A trace id can hold a Luhn-valid run of digits; Sentry rejects the event if it is filtered."""
    card_like = "4111111111111111"
    trace_id = f"ab{card_like}cdef0123456789"  # a 32-character hex id around a Luhn-valid run
    all_digit_span_id = card_like  # 16 hex digits that happen to be all decimal
    assert len(trace_id) == 32
    event = {"contexts": {"trace": {"trace_id": trace_id, "span_id": all_digit_span_id}}, "message": trace_id}
    assert Scrubber().scrub(event) == event
    assert Scrubber().scrub(f"paid with {card_like}") == f"paid with {FILTERED}"  # alone, it is a card
    assert Scrubber().scrub(f"card {card_like}.") == f"card {FILTERED}."  # a real one still goes
    for text in (f"card%3D{card_like}", f"cc{card_like}", f"ref_{card_like}", f"/pay/{card_like}abc"):
        assert card_like not in Scrubber().scrub(text), text  # next to letters it is still a card number
    assert Scrubber().scrub(f"trace {trace_id} paid with {card_like}") == f"trace {trace_id} paid with {FILTERED}"
    assert Scrubber().scrub({"event_id": f"my card {card_like}"}) == {"event_id": f"my card {FILTERED}"}


def test_query_strings_keep_their_ordinary_parameters() -> None:
    scrubber = Scrubber()
    assert (
        scrubber.scrub("token=abc&page=2&session_id=x", "query_string")
        == "token=%5BFiltered%5D&page=2&session_id=%5BFiltered%5D"
    )
    assert (
        scrubber.scrub("https://shop/cart?api_key=k&q=shoes", "url")
        == "https://shop/cart?api_key=%5BFiltered%5D&q=shoes"
    )


def test_secret_path_parameters_are_replaced_by_route_template() -> None:
    scrubber = Scrubber()
    assert scrubber.scrub_path("/reset/9f2c1a/confirm", "/reset/{token}/confirm") == f"/reset/{FILTERED}/confirm"
    assert scrubber.scrub_path("/items/42", "/items/{item_id:int}") == "/items/42"
    assert scrubber.scrub_path("/files/a/b", "/files/{path:path}") == "/files/a/b"  # does not line up: left as is


def test_nested_structures_and_header_pairs_are_walked() -> None:
    event = {
        "request": {"headers": [["Authorization", "Bearer x"], ["Accept", "*/*"]], "data": {"user": {"pwd": "p"}}},
        "breadcrumbs": {"values": [{"message": "login", "data": {"session": "abc", "attempt": 2}}]},
        "extra": {"note": ("card", "4111111111111111")},
    }
    assert Scrubber().scrub(event) == {
        "request": {"headers": [["Authorization", FILTERED], ["Accept", "*/*"]], "data": {"user": {"pwd": FILTERED}}},
        "breadcrumbs": {"values": [{"message": "login", "data": {"session": FILTERED, "attempt": 2}}]},
        "extra": {"note": ["card", FILTERED]},
    }


def test_extra_patterns_add_to_the_defaults() -> None:
    scrubber = Scrubber(extra_field_patterns=[r"^iban$"], extra_value_patterns=[r"DE\d{20}"])
    assert scrubber.scrub({"iban": "x", "ibanx": "y", "memo": "to DE89370400440532013000 today"}) == {
        "iban": FILTERED,
        "ibanx": "y",
        "memo": f"to {FILTERED} today",
    }


def test_the_input_is_not_modified() -> None:
    data = {"password": "p", "list": [{"token": "t"}]}
    Scrubber().scrub(data)
    assert data == {"password": "p", "list": [{"token": "t"}]}


def test_the_sentry_privacy_section_configures_the_bridge_scrubber(monkeypatch: pytest.MonkeyPatch) -> None:
    from otelkit.sentry.client import SentryBridge
    from otelkit.settings import OtelkitSettings

    default_scrubber = SentryBridge(OtelkitSettings(), "https://k@sentry.example/1").scrubber
    monkeypatch.setenv("OTELKIT_SENTRY_PRIVACY__SCRUB_FIELDS", "^iban$")
    monkeypatch.setenv("OTELKIT_SENTRY_PRIVACY__SCRUB_VALUES", "ORD-[0-9]+")
    settings = OtelkitSettings(sentry_privacy={"send_default_pii": True})
    scrubber = SentryBridge(settings, "https://k@sentry.example/1").scrubber
    data = {"iban": "DE89", "note": "order ORD-42", "client.address": "203.0.113.9"}
    assert scrubber.scrub(data) == {"iban": FILTERED, "note": f"order {FILTERED}", "client.address": "203.0.113.9"}
    assert default_scrubber.scrub(data) == {"iban": "DE89", "note": "order ORD-42", "client.address": FILTERED}
