// What each message on the agent's socket (docs/sockets.md) does to the model.
import { resetNoteForm } from "./note.js";
import { notice } from "./notice.js";
import { announce } from "./offer.js";
import { changed, isIdleStatus, labels, model } from "./state.js";
import { onTransfer } from "./transfer.js";
import { dropWaiting } from "./waiting.js";
import { onCallingBack, onWrapUpCode } from "./wrap_up_codes.js";

let missedCallNoticeShown = false;

export function handle(message) {
  switch (message.type) {
    case "state":
      model.agent = message.agent;
      model.offer = message.offer || null;
      if (message.call) model.call = message.call;
      else if (!model.noteDirty) model.call = null;
      model.waiting = message.waiting_callers || [];
      model.pending = null;
      break;
    case "offer":
      dropWaiting(message.call_id);
      model.offer = message;
      model.pending = null;
      notice("");
      announce(message);
      break;
    case "offer_ended":
      if (model.offer && model.offer.offer_id === message.offer_id) {
        if (message.outcome === "accepted") takeCall(model.offer);
        const outcomes = model.offer.handoff ? labels.handoff_outcomes : labels.offer_outcomes;
        model.offer = null;
        model.pending = null;
        if (!missedCallNoticeShown) notice(outcomes[message.outcome] || "");
      }
      break;
    case "call":
      onCall(message);
      break;
    case "transfer":
      onTransfer(message);
      break;
    case "caller_waiting":
      dropWaiting(message.call_id);
      model.waiting.push(message);
      break;
    case "caller_waiting_ended":
      dropWaiting(message.call_id);
      break;
    case "ringing":
      model.ringing = message;
      announce(message, "Answer your phone.");
      break;
    case "ringing_ended":
      if (model.ringing && model.ringing.call_id === message.call_id) model.ringing = null;
      break;
    case "status":
      onStatus(message);
      break;
    case "wrap_up_code":
      onWrapUpCode(message);
      break;
    case "calling_back":
      onCallingBack(message);
      break;
    case "error":
      model.pending = null;
      notice(message.message || "Something went wrong.");
      break;
    default:
      return;
  }
  changed();
}

function onCall(message) {
  const previous = model.call && model.call.call_id === message.call_id ? model.call : {};
  const merged = Object.assign({}, previous, message);
  if (!message.caller && previous.caller) merged.caller = previous.caller;
  // A message written before the agent chose who is calling (it crossed the choice on the
  // way) must not take the chosen customer off the card: once chosen, the call's messages
  // name that customer.
  if (previous.chosenCustomerId && message.customer_id == null) {
    merged.caller = previous.caller;
    merged.customer_id = previous.customer_id;
  }
  if (model.call && model.call.call_id !== message.call_id) resetNoteForm();
  model.call = merged;
  if (model.offer && model.offer.call_id === message.call_id) model.offer = null;
  if (model.ringing && model.ringing.call_id === message.call_id) model.ringing = null;
  model.pending = null;
  notice("");
}

// Accepted: the card stays while the telephony system connects the caller.
function takeCall(offer) {
  if (model.call && model.call.call_id !== offer.call_id) resetNoteForm();
  model.call = {
    type: "call",
    call_id: offer.call_id,
    state: "connecting",
    queue: offer.queue,
    queue_id: offer.queue_id,
    wrap_up_code: null,
    connected_at: null,
    customer_id: offer.caller && offer.caller.customer ? offer.caller.customer.id : null,
    chosenCustomerId: offer.chosenCustomerId || null,
    caller: offer.caller,
    hold_rule: offer.hold_rule,
    handoff: offer.handoff || null,
  };
}

function onStatus(message) {
  model.agent.status = message.status;
  model.agent.status_changed_at = message.status_changed_at;
  model.agent.not_ready_reason = message.not_ready_reason || "";
  model.agent.status_label = message.status_label;
  // With no call left to the agent, the call panel goes, unless a note is still unsaved.
  if (isIdleStatus(message.status) && model.call && !model.noteDirty) model.call = null;
  missedCallNoticeShown = message.reason === "offer_timed_out";
  if (missedCallNoticeShown) {
    notice("You missed a call, so you are now Not ready. Choose Available when you are back.");
  } else if (message.reason === "wrap_up_limit") {
    notice("Wrap-up time ran out, so you are available again.");
  } else if (message.status === "available") {
    notice("");
  }
}
