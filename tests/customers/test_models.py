"""Customers and their numbers: normalised to E.164, shared by a household, held once each; a
new customer starts closed, preferences unknown."""

import pytest
from django.db import IntegrityError, transaction

from customers.models import Consent, Customer, PhoneNumber
from customers.phone_numbers import normalise_phone_number

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+14155550123", "+14155550123"),
        ("(415) 555-0123", "+14155550123"),
        ("415.555.0123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("011 44 20 7946 0958", "+442079460958"),
        ("not a number", None),
        ("12", None),
        ("", None),
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw, expected):
    assert normalise_phone_number(raw) == expected


def test_one_number_can_belong_to_a_household(make_customer):
    maya = make_customer("Maya Chen", phones=["+14155550142"])
    tom = make_customer("Tom Chen", phones=["+14155550142"])
    sharing = Customer.objects.filter(phones__number="+14155550142")
    assert set(sharing) == {maya, tom}


def test_a_customer_holds_a_number_once(make_customer):
    maya = make_customer(phones=["+14155550142"])
    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneNumber.objects.create(customer=maya, number="+14155550142")


def test_new_customers_start_closed_with_unknown_preferences():
    customer = Customer.objects.create(name="Anonymous")
    assert customer.consent == Consent.CLOSED
    assert (customer.pace, customer.pace_source) == ("unknown", "unknown")
