"""What the agent's console calls the codes its socket sends, in the agent's own words.

The page gets them in its config (`console/views.py`) and shows them as they are. An agent's
status is called what `routing.states` calls it; these are the console's own texts.
"""

from routing.models import DecisionReason
from routing.states import CallState, OfferState

# The tag on the card of the agent's call. `connecting` is the console's own: accepted, and
# the telephony system is connecting the caller.
CALL_STATE_LABELS: dict[str, str] = {
    "connecting": "Connecting…",
    CallState.OFFERED: "Connecting…",
    CallState.QUEUED: "Connecting…",
    CallState.CONNECTED: "On call",
    CallState.HELD: "On hold",
    CallState.TRANSFERRED: "Transferred",
    CallState.WRAP_UP: "Wrap-up",
    CallState.ENDED: "Wrap-up",
    CallState.ABANDONED: "Caller hung up",
}

# Why a ringing offer came to this agent (the routing decision behind it).
OFFER_REASON_LABELS: dict[str, str] = {
    DecisionReason.LAST_AGENT: "You were their last agent",
    DecisionReason.LAST_AGENT_BUSY_WAITED: "They waited for you, their last agent",
    DecisionReason.WAITING_LAST_AGENT_FREED: "They waited for you, their last agent",
    DecisionReason.LAST_AGENT_UNAVAILABLE: "Their last agent is away",
    DecisionReason.LAST_AGENT_DECLINED: "Their last agent could not take it",
    DecisionReason.LAST_AGENT_WAIT_EXPIRED: "Their last agent is still busy",
    DecisionReason.OFFER_TIMED_OUT: "Passed on: not answered in time",
    DecisionReason.OFFER_DECLINED: "Passed on by a colleague",
    DecisionReason.LONGEST_IDLE: "Next in the queue",
    DecisionReason.WAITING_FIFO: "Longest-waiting caller",
    DecisionReason.MOVED_BY_SUPERVISOR: "Moved here by a supervisor",
    DecisionReason.CALLER_CHOSE_NEXT: "They chose the next colleague",
    DecisionReason.TRANSFER_OFFERED: "Handed over by a colleague",
}

# How an offer the agent was shown ended, when it did not become their call.
OFFER_OUTCOME_LABELS: dict[str, str] = {
    OfferState.DECLINED: "You declined the call; it went back to the queue.",
    OfferState.TIMED_OUT: "The call was not answered in time and went back to the queue.",
    OfferState.WITHDRAWN: "The call stopped ringing (the caller hung up or a colleague took it).",
}

# How a hand-off offered to this agent ended, when they did not take it: the caller stays with
# the colleague who offered it.
HANDOFF_OUTCOME_LABELS: dict[str, str] = {
    OfferState.DECLINED: "You declined the hand-off; the caller stays with your colleague.",
    OfferState.TIMED_OUT: "The hand-off was not answered in time; the caller stays with your"
    " colleague.",
    OfferState.WITHDRAWN: "The hand-off stopped ringing (the call ended or moved on).",
}
