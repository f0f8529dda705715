"""Identifiers and personal data are never features: the name and value rules."""
from __future__ import annotations

import pytest

from plugin.predictions import personal


@pytest.mark.parametrize("name", ["user_id", "orderId", "zip_code", "ZipCode", "postcode", "postal-code",
                                  "billing_address", "customer_no", "order_number", "Email", "phone_number",
                                  "first_name", "state", "uuid", "ip", "device.idfa", "account_ref"])
def test_identifying_names(name):
    assert personal.identifying_name(name)


@pytest.mark.parametrize("name", ["number_of_cds", "dollar_value", "plan_name", "order_state", "country_code",
                                  "quantity", "age", "lifetime_value", "device_type", "idle_days"])
def test_ordinary_names(name):
    assert not personal.identifying_name(name)


@pytest.mark.parametrize("values", [
    [f"user{i}@example.com" for i in range(30)],
    [f"+44 20 7946 {i:04d}" for i in range(30)],
    ["10001", "94107", "SW1A 1AA", "75008", "H2X 1Y4", "02139-4307"] * 5,
    [f"123e4567-e89b-12d3-a456-{i:012d}" for i in range(30)],
    [700_000 + 7 * i for i in range(40)],                      # an order-number counter
])
def test_identifying_values(values):
    assert personal.identifying_values(values)


@pytest.mark.parametrize("values", [
    [19.99, 5.0, 120.5, 19.99, 33.0] * 8,                       # prices
    [1, 2, 3, 1, 1, 2] * 10,                                    # quantities
    [1200, 1500, 1200, 1800, 2500] * 8,                         # repeated large numbers (e.g. cents)
    ["gold", "silver", "bronze"] * 10,
])
def test_ordinary_values(values):
    assert not personal.identifying_values(values)
