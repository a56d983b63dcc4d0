"""A telephony event is recorded once per webhook id."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from routing.models import Call
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
