"""What the agent's screen is sent (docs/sockets.md): every payload in one place, including the
caller card that travels inside an offer so the screen renders it at once."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from customers.models import Customer
from customers.selectors import (
    customer_context,
    customers_with_recorders,
    history_hidden,
    load_recorders,
    named_to_onlookers,
)
from routing import policy, selectors
from routing.models import Agent, Call, CallerChoice, DecisionReason, Offer, Voicemail
from routing.states import AgentStatus, CallState, status_label

# Not read yet: whoever shows the card reads it.
UNREAD = object()


def caller_context(
    *,
    from_e164: str,
    customer_ids: list[int],
    identity_verified: bool = False,
    queue_id: int | None = None,
    last_agent: Any = UNREAD,
    customer: Customer | None = None,
) -> dict[str, Any]:
    """The `caller` object of an offer. At most three queries, whatever the history: one for
    the customer (or the candidates), one for notes and their count, one for the last agent
    within `queue_id`'s look-back. Fewer when the router already read them in the same
    transaction: `customer` (loaded without its recorders; still held or not) and `last_agent`.

    Reading is not recording: whoever shows the card records the access (customers.audit).
    """
    caller: dict[str, Any] = {
        "kind": "unknown",
        "number": from_e164,
        "customer": None,
        "candidates": [],
    }
    if len(customer_ids) > 1:
        candidates = list(
            Customer.objects.filter(id__in=customer_ids, erased_at__isnull=True)
            .order_by("name", "id")
            .values("id", "name")
        )
        if len(candidates) > 1:
            caller.update(kind="shared", candidates=candidates)
            return caller
        customer_ids = [candidate["id"] for candidate in candidates]
    if len(customer_ids) == 1:
        if customer is not None and customer.id == customer_ids[0]:
            customer = None if customer.erased_at is not None else load_recorders(customer)
        else:
            customer = customers_with_recorders().filter(id=customer_ids[0]).first()
        if customer is not None:
            caller.update(
                kind="known",
                customer=customer_context(
                    customer,
                    identity_verified=identity_verified,
                    last_agent=last_agent_shown(
                        customer, queue_id=queue_id, already_read=last_agent
                    ),
                ),
            )
    return caller


def last_agent_shown(
    customer: Customer, *, queue_id: int | None, already_read: Any = UNREAD
) -> dict[str, Any] | None:
    """The customer's last agent as a person is shown it: none, and no query, when consent hides
    their history; no query either when the router `already_read` it for this call."""
    if history_hidden(customer):
        return None
    if already_read is not UNREAD:
        return already_read
    return selectors.last_agent(customer_id=customer.id, queue_id=queue_id, now=timezone.now())


def customer_ids_on_card(call: Call) -> list[int]:
    """The customer the call is from, or while nobody has said who is calling, every customer
    sharing the number."""
    if call.customer_id is not None:
        return [call.customer_id]
    return list(call.candidates.values_list("id", flat=True))


def caller_for_call(
    call: Call, *, customer_ids: list[int] | None = None, last_agent: Any = UNREAD
) -> dict[str, Any]:
    """The caller of `call`, with the last agent the router chooses for its queue (`last_agent`:
    when the router read it already in this transaction)."""
    customer_ids = customer_ids_on_card(call) if customer_ids is None else customer_ids
    known, customer = UNREAD, None
    if call.customer_id is not None and customer_ids == [call.customer_id]:
        known = last_agent
        # The router's locking read of the call brought its customer: no second read.
        if Call.customer.is_cached(call):
            customer = call.customer
    return caller_context(
        from_e164=call.from_e164 or call.from_number,
        customer_ids=customer_ids,
        identity_verified=call.identity_verified,
        queue_id=call.queue_id,
        last_agent=known,
        customer=customer,
    )


HOLD_RULE_WORDS = {
    policy.AVOIDS_HOLDING: "avoids holding",
    policy.IN_A_RUSH: "in a rush",
    policy.FINE_ON_HOLD: "fine on hold",
}
# The card preference behind each rule: an agent is told the rule only where the card shows it.
_RULE_PREFERENCE = {
    policy.AVOIDS_HOLDING: ("hold_tolerance", "avoid"),
    policy.IN_A_RUSH: ("pace", "brisk"),
    policy.FINE_ON_HOLD: ("hold_tolerance", "fine"),
}


def hold_explanation(
    story: selectors.HoldStory | None, *, agent_id: int, caller: dict[str, Any]
) -> dict[str, Any] | None:
    """Why the caller was (or was not) held for their busy last agent, in a few words for the
    card of the agent who gets the call (`hold_rule` of docs/sockets.md). None when no hold rule
    applied (no last agent, or they were free or away).

    Told as consent allows: the preference behind the rule only where the card shows that
    preference, and another agent's name only where the card shows the last agent."""
    if story is None:
        return None
    customer = caller.get("customer") or {}
    rule = story.detail.get("hold_rule", policy.UNKNOWN_HOLD)
    provenance = story.detail.get("provenance", "unknown")
    if rule in _RULE_PREFERENCE:
        name, value = _RULE_PREFERENCE[rule]
        shown = customer.get("preferences", {}).get(name, {}).get("value")
        if shown != value:
            rule = provenance = None
    held = story.reason == DecisionReason.LAST_AGENT_BUSY_WAITED
    seconds = max(1, round(story.waited_ms / 1000)) if held else 0
    last_agent = customer.get("last_agent") or {}
    if story.last_agent_id == agent_id:
        who = "you"
    elif last_agent.get("id") == story.last_agent_id and last_agent.get("display_name"):
        who = last_agent["display_name"]
    else:
        who = "their last agent"
    why = HOLD_RULE_WORDS.get(rule)
    if not held:
        if rule == policy.IN_A_RUSH:
            text = f"In a rush — not held for {who}"
        else:
            text = "Sent straight to the queue" + (f" — {why}" if why else "")
    else:
        verb = "Held only" if rule in policy.HOLD_AVERSE_RULES and who != "you" else "Waited"
        text = f"{verb} {seconds} s for {who}" + (f" — {why}" if why else "")
    return {
        "rule": rule,
        "provenance": provenance,
        "held": held,
        "waited_seconds": seconds,
        "text": text,
    }


def hold_explanation_for(
    call: Call,
    *,
    agent_id: int,
    caller: dict[str, Any],
    decisions_made: list[str] | None = None,
) -> dict | None:
    """`hold_explanation` of `call`; one query, none for a caller without a last agent, nor
    when the router made every decision on the call in this transaction (`decisions_made`) and
    none was about holding."""
    if call.last_agent_id is None:
        return None
    if decisions_made is not None and not selectors.HOLD_DECISION_REASONS.intersection(
        decisions_made
    ):
        return None
    return hold_explanation(selectors.hold_story(call.id), agent_id=agent_id, caller=caller)


def notification_name(customer: dict[str, Any] | None) -> str | None:
    """The caller's first name on a desktop notification (`caller.customer`, or None). A lock
    screen or a shared screen shows it to whoever is near, so like an onlooker they learn it
    only with consent `conditional` or `open`; never a surname."""
    if not customer or not named_to_onlookers(customer["consent"]):
        return None
    return first_name(customer["name"])


def first_name(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None


def offer_message(
    offer: Offer,
    *,
    reason: str,
    caller: dict[str, Any],
    hold_rule: dict[str, Any] | None = None,
) -> dict[str, Any]:
    call = offer.call
    queue = call.queue
    return {
        "type": "offer",
        "offer_id": offer.id,
        "call_id": call.telephony_call_id,
        "queue": {"slug": queue.slug, "name": queue.name} if queue else None,
        "queue_id": call.queue_id,
        "offered_at": offer.offered_at.isoformat(),
        "expires_at": offer.expires_at.isoformat(),
        "timeout_seconds": queue.offer_timeout_seconds if queue else None,
        "reason": reason,
        "caller": caller,
        "hold_rule": hold_rule,
        "notification_name": notification_name(caller.get("customer")),
        "callback": callback_summary(call),
        "handoff": handoff_of(offer),
    }


def handoff_of(offer: Offer) -> dict[str, Any] | None:
    """What a colleague handing the call over wrote (`handoff` of docs/sockets.md), or None for
    an offer the router made. `offer.handoff_from` is read with the offer."""
    if offer.handoff_from_id is None:
        return None
    return {
        "from_agent": {
            "id": offer.handoff_from_id,
            "display_name": offer.handoff_from.display_name,
        },
        "note": offer.handoff_note,
    }


def transfer_message(offer: Offer, *, state: str) -> dict[str, Any]:
    """To the agent handing a call over: how their hand-off stands (`state`: the offer's, offered
    to timed_out; docs/sockets.md `transfer`)."""
    return {
        "type": "transfer",
        "call_id": offer.call.telephony_call_id,
        "offer_id": offer.id,
        "to_agent": {"id": offer.agent_id, "display_name": offer.agent.display_name},
        "state": state,
    }


def callback_summary(call: Call) -> dict[str, Any] | None:
    """On a call back's card: that it is one, asked when, which try, and, when the agent is to
    dial it, the number (the card's caller is filtered by consent like any call's)."""
    if call.callback_id is None:
        return None
    callback = call.callback
    return {
        "id": callback.pk,
        "requested_at": callback.requested_at.isoformat(),
        "attempt": callback.attempts,
        # No phone system places it: the agent dials this number (what the call needs).
        "agent_dials": callback.agent_dials,
        "number": callback.number if callback.agent_dials else None,
        # The reason for the call back, so what the call needs: shown whatever the consent.
        "message": message_summary(callback.pk),
    }


def message_summary(callback_id: int) -> dict[str, int] | None:
    """The latest message left for the call back (routing.voicemails), to play from Rapport."""
    return (
        Voicemail.objects.filter(callback_id=callback_id)
        .order_by("-created_at", "-id")
        .values("id", "duration_seconds")
        .first()
    )


def waiting_caller_name(customer: Customer | None) -> str | None:
    """The name on a waiting line: the agent is not serving this call (yet), so like an
    onlooker they learn it only with consent `conditional` or `open`."""
    if customer is None or customer.erased_at is not None:
        return None
    return customer.name if named_to_onlookers(customer.consent) else None


def caller_waiting_message(call: Call) -> dict[str, Any]:
    """The quiet line on the last agent's screen while `call` is held for them (not an offer).
    `call.customer` must be loaded with it."""
    since = call.queued_at or call.created_at
    name = waiting_caller_name(call.customer)
    return {
        "type": "caller_waiting",
        "call_id": call.telephony_call_id,
        "caller_name": name,
        "notification_name": first_name(name),
        "waiting_since": since.isoformat() if since else None,
        "wait_until": (
            call.last_agent_wait_until.isoformat() if call.last_agent_wait_until else None
        ),
        # The caller pressed to keep waiting for this agent (routing.caller_choice).
        "chose_to_wait": call.caller_choice == CallerChoice.WAIT,
    }


def calling_back_message(call: Call, *, follow_up: dict[str, Any]) -> dict[str, Any]:
    """The line telling a caller's last agent that the caller is calling back about what their
    last call left to do (`selectors.follow_up`). `call.customer` must be loaded with it; the
    caller is named by their first name, as on a notification (`waiting_caller_name`)."""
    who = first_name(waiting_caller_name(call.customer)) or "Your caller"
    text = f"{who} is calling back"
    if follow_up["wrap_up_code"]:
        text += f" about “{follow_up['wrap_up_code']}”"
    if follow_up["open_matter"]:
        text += " — still open" if follow_up["wrap_up_code"] else " about a matter still open"
    return {
        "type": "calling_back",
        "call_id": call.telephony_call_id,
        "caller_name": who if who != "Your caller" else None,
        "text": text,
        "follow_up": follow_up,
    }


def caller_waiting_ended_message(call: Call, *, why: str) -> dict[str, Any]:
    return {"type": "caller_waiting_ended", "call_id": call.telephony_call_id, "why": why}


def call_message(call: Call, *, caller: dict[str, Any], state: str | None = None) -> dict[str, Any]:
    return {
        "type": "call",
        "call_id": call.telephony_call_id,
        "state": state or call.state,
        "connected_at": call.connected_at.isoformat() if call.connected_at else None,
        "customer_id": call.customer_id,
        "caller": caller,
        "callback": callback_summary(call),
        # The console's wrap-up panel offers this queue's codes (routing.wrap_up).
        "queue_id": call.queue_id,
        "wrap_up_code": (
            {"id": call.wrap_up_code_id, "label": call.wrap_up_label}
            if call.wrap_up_label
            else None
        ),
    }


def ringing_message(call: Call, *, caller: dict[str, Any]) -> dict[str, Any]:
    """The caller card of a call ringing on the agent's phone, routed by the telephony system
    itself (Generic CTI): nothing to accept or decline here; the agent answers the phone."""
    queue = call.queue
    return {
        "type": "ringing",
        "call_id": call.telephony_call_id,
        "queue": {"slug": queue.slug, "name": queue.name} if queue else None,
        "ringing_at": call.ringing_at.isoformat() if call.ringing_at else None,
        "caller": caller,
    }


def ringing_ended_message(call: Call) -> dict[str, Any]:
    return {"type": "ringing_ended", "call_id": call.telephony_call_id, "state": call.state}


def status_message(agent: Agent, *, reason: str) -> dict[str, Any]:
    return {
        "type": "status",
        "status": agent.status,
        "status_changed_at": agent.status_changed_at.isoformat(),
        "reason": reason,
        "not_ready_reason": agent.not_ready_reason,
        "status_label": status_label(agent.status, agent.not_ready_reason),
    }


def agent_state_message(agent_id: int) -> dict[str, Any]:
    """The first message on an agent's socket: everything the screen needs to draw itself,
    including the offer ringing now and the current call, so a reconnect heals."""
    agent = Agent.objects.prefetch_related("queues").get(id=agent_id)
    offer = (
        selectors.open_offers()
        .filter(agent=agent)
        .select_related("call__queue", "decision", "handoff_from")
        .first()
    )
    offer_payload = None
    if offer is not None:
        reason = offer.decision.reason if hasattr(offer, "decision") else ""
        caller = caller_for_call(offer.call)
        offer_payload = offer_message(
            offer,
            reason=reason,
            caller=caller,
            hold_rule=hold_explanation_for(offer.call, agent_id=agent.id, caller=caller),
        )
    call = selectors.agent_current_call(agent)
    call_payload = None
    if call is not None:
        state = CallState.WRAP_UP if agent.status == AgentStatus.WRAP_UP else None
        if agent.status == AgentStatus.BUSY and call.agent_id != agent.id:
            # A hand-off they accepted: being connected to them, as after any accept.
            state = CallState.OFFERED
        call_payload = call_message(call, caller=caller_for_call(call), state=state)
    return {
        "type": "state",
        "agent": {
            "id": agent.id,
            "display_name": agent.display_name,
            "status": agent.status,
            "status_changed_at": agent.status_changed_at.isoformat(),
            "not_ready_reason": agent.not_ready_reason,
            "status_label": status_label(agent.status, agent.not_ready_reason),
            "queues": [queue.slug for queue in agent.queues.all()],
        },
        "offer": offer_payload,
        "call": call_payload,
        "waiting_callers": [
            caller_waiting_message(held)
            for held in selectors.calls_held_for(agent.id, now=timezone.now())
        ],
    }
