import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Consent, Customer, PhoneNumber
from customers.phone_numbers import normalise_phone_number
from routing.models import Call, Offer
from telephony.models import CallEvent

pytestmark = pytest.mark.django_db


def test_a_webhook_id_is_accepted_once():
    call = Call.objects.create(telephony_call_id="c-1")
    CallEvent.objects.create(
        webhook_id="msg_1", call=call, type="call.ringing", occurred_at=timezone.now()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        CallEvent.objects.create(
            webhook_id="msg_1", call=call, type="call.ended", occurred_at=timezone.now()
        )
    assert CallEvent.objects.count() == 1


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


def test_an_agent_never_holds_two_ringing_offers(make_agent):
    agent = make_agent()
    first = Call.objects.create(telephony_call_id="c-1")
    second = Call.objects.create(telephony_call_id="c-2")
    expires = timezone.now()
    Offer.objects.create(call=first, agent=agent, expires_at=expires)
    with pytest.raises(IntegrityError), transaction.atomic():
        Offer.objects.create(call=second, agent=agent, expires_at=expires)


def test_a_call_is_never_offered_to_two_agents_at_once(make_agent):
    dana, sam = make_agent("dana"), make_agent("sam")
    call = Call.objects.create(telephony_call_id="c-1")
    expires = timezone.now()
    Offer.objects.create(call=call, agent=dana, expires_at=expires)
    with pytest.raises(IntegrityError), transaction.atomic():
        Offer.objects.create(call=call, agent=sam, expires_at=expires)
    Offer.objects.filter(agent=dana).update(state="declined")
    Offer.objects.create(call=call, agent=sam, expires_at=expires)
