"""Offers that cannot double-book, refused by PostgreSQL itself: an agent never holds two ringing
offers, and a call is never offered to two agents at once."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from routing.models import Call, Offer

pytestmark = pytest.mark.django_db


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
