// The caller card: who is calling, why the call came to this agent, and what we know of the
// caller (customer.js), for an offer, a call ringing on the phone or the call in progress.
import { el } from "../rapport/dom.js";
import { customerDetails } from "./customer.js";
import { formatTime } from "./format.js";
import { notice } from "./notice.js";
import { offerActions, ringTimer } from "./offer.js";
import { api } from "./server.js";
import { answer, declineHere, isRingingHere, ringsHere } from "./softphone.js";
import { changed, config, labels, model } from "./state.js";

// `ringing`: an offer to accept or decline; `onPhone`: rung by the phone system itself.
export function callerCard(source, ringing, onPhone) {
  const caller = source.caller || { kind: "unknown", number: "", customer: null, candidates: [] };
  const here = onPhone && ringsHere(source);
  const parts = [here ? ringingHereHead(source) : onPhone ? phoneRingingHead(source) : cardHead(source, ringing)];
  // A colleague's hand-off is what the agent reads first, before the usual context.
  if (source.handoff) parts.push(handoffNote(source.handoff));
  const hold = source.hold_rule;
  if (hold && hold.text) {
    parts.push(el("p", { class: "hold-why", "data-hold-rule": hold.rule || "", text: hold.text }));
  }
  if (source.callback && source.callback.message) parts.push(voicemailNote(source.callback.message));
  if (!ringing && source.callback && source.callback.agent_dials) parts.push(callbackDial(source));
  parts.push(whoIsCalling(source, caller));
  if (caller.customer) {
    parts.push(...customerDetails(caller.customer, source));
  } else if (caller.kind === "unknown") {
    parts.push(
      el(
        "p",
        { class: "banner neutral" },
        "No customer has this number. Ask their name; your note will start their record."
      )
    );
  }
  if (ringing) parts.push(offerActions());
  if (here) parts.push(answerHereActions());
  return parts;
}

function handoffNote(handoff) {
  return el(
    "section",
    { class: "handoff", "data-handoff": true },
    el("p", { class: "handoff-from", text: "Hand-off from " + handoff.from_agent.display_name }),
    el("p", { class: "handoff-note", "data-handoff-note": true, text: handoff.note })
  );
}

function cardHead(source, ringing) {
  const queue = source.queue ? source.queue.name : "";
  // A call back rings here like a call; nobody is on the line until Rapport places it.
  const label = source.callback
    ? ringing
      ? "Call back"
      : "Call back · " + callStateLabel(source.state)
    : ringing
      ? "Incoming call"
      : callStateLabel(source.state);
  const reason = ringing ? labels.offer_reasons[source.reason] : null;
  const head = el(
    "header",
    { class: "card-head" },
    el("span", {
      class: "tag " + (ringing ? "tag-ring" : "tag-call"),
      text: label,
      "data-callback": source.callback ? source.callback.id : null,
    }),
    queue ? el("span", { class: "queue", text: queue }) : null,
    reason ? el("span", { class: "reason", text: reason }) : null
  );
  if (ringing) {
    head.append(ringTimer());
  } else if (source.connected_at) {
    head.append(el("span", { class: "since", text: "since " + formatTime(source.connected_at) }));
  }
  return head;
}

function callStateLabel(state) {
  return labels.call_states[state] || labels.call_states.connected;
}

// Rung by the phone system: there is nothing to accept here; the agent answers the phone.
function phoneRingingHead(source) {
  const queue = source.queue ? source.queue.name : "";
  return el(
    "header",
    { class: "card-head" },
    el("span", { class: "tag tag-ring", text: "Ringing on your phone" }),
    queue ? el("span", { class: "queue", text: queue }) : null,
    el("span", { class: "reason", text: "Answer on your phone" })
  );
}

// Rung by the phone system in this browser (softphone.js): answered here, one click.
function ringingHereHead(source) {
  const queue = source.queue ? source.queue.name : "";
  return el(
    "header",
    { class: "card-head" },
    el("span", { class: "tag tag-ring", text: "Incoming call" }),
    queue ? el("span", { class: "queue", text: queue }) : null,
    el("span", { class: "reason", text: "Ringing in this browser" })
  );
}

function answerHereActions() {
  const answering = !isRingingHere();
  return el(
    "footer",
    { class: "actions" },
    el(
      "button",
      { type: "button", class: "primary accept", "data-phone-accept": true, disabled: answering, onclick: answer },
      answering ? "Connecting…" : "Accept",
      el("kbd", { text: "A" })
    ),
    el(
      "button",
      { type: "button", class: "secondary", "data-phone-decline": true, disabled: answering, onclick: declineHere },
      "Decline",
      el("kbd", { text: "D" })
    )
  );
}

function whoIsCalling(source, caller) {
  const box = el("div", { class: "who-calls" });
  if (caller.customer) {
    box.append(el("h1", { class: "caller-name", "data-caller-name": true, text: caller.customer.name }));
  } else if (caller.kind === "shared") {
    box.append(el("h1", { class: "caller-name ask", text: "Who am I speaking with?" }));
  } else {
    box.append(el("h1", { class: "caller-name", "data-caller-name": true, text: "New caller" }));
  }
  box.append(el("p", { class: "number", text: caller.number || "Number withheld" }));
  if (!caller.customer && caller.kind === "shared") {
    box.append(el("p", { class: "muted small", text: "Several customers share this number. Ask, then choose:" }));
    const list = el("ul", { class: "candidates", "data-candidates": true });
    (caller.candidates || []).forEach((candidate) => {
      list.append(
        el(
          "li",
          {},
          el("button", {
            type: "button",
            "data-candidate": candidate.id,
            text: candidate.name,
            onclick: () => chooseCaller(source, candidate.id),
          })
        )
      );
    });
    box.append(list);
  }
  return box;
}

// On a shared number the agent says which of its customers is calling.
function chooseCaller(source, customerId) {
  api("POST", config.calls_url + encodeURIComponent(source.call_id) + "/caller/", {
    customer_id: customerId,
  })
    .then((data) => {
      [model.offer, model.call].forEach((item) => {
        if (item && item.call_id === source.call_id) {
          item.caller = data.caller;
          item.customer_id = customerId;
          item.chosenCustomerId = customerId;
        }
      });
      notice("");
      changed();
    })
    .catch((error) => notice("Could not set the caller: " + error.message));
}

// A call back no phone system places: the agent dials the number, then says how it went.
function callbackDial(source) {
  const callback = source.callback;
  const say = (reached) => () =>
    api("POST", "/api/callbacks/" + callback.id + "/called-back/", { reached: reached }).then(
      () => notice(reached ? "Called back." : "Not answered: it will be tried again."),
      (error) => notice(error.message)
    );
  return el(
    "div",
    { class: "banner neutral callback-dial", "data-callback-dial": callback.id },
    el("span", { text: "Dial " }),
    el("strong", { text: callback.number || "" }),
    el("span", { text: " to call them back, then: " }),
    el("button", { type: "button", "data-called-back": "reached", text: "Called back", onclick: say(true) }),
    " ",
    el("button", { type: "button", "data-called-back": "no-answer", text: "No answer", onclick: say(false) })
  );
}

// The message the caller left, the reason for the call back: played from Rapport, which fetches
// it from the phone system. One player for the page, so a card drawn again goes on playing.
let player = null;

function voicemailNote(message) {
  const url = "/api/voicemails/" + message.id + "/audio/";
  const playOrPause = () => {
    if (player && player.dataset.url === url && !player.paused) {
      player.pause();
      return;
    }
    if (!player || player.dataset.url !== url) {
      if (player) player.pause();
      player = new Audio(url);
      player.dataset.url = url;
    }
    player.play().catch((error) => notice("Could not play the message: " + error.message));
  };
  return el(
    "div",
    { class: "banner neutral voicemail", "data-voicemail": message.id },
    el("span", { text: "Left a message (" + minutesAndSeconds(message.duration_seconds) + ") " }),
    el("button", { type: "button", "data-play-voicemail": message.id, text: "▶ Play", onclick: playOrPause })
  );
}

function minutesAndSeconds(seconds) {
  const whole = Math.max(0, Math.round(seconds || 0));
  return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
}
