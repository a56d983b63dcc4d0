// On a connected call: transfer it to a colleague with a one-line hand-off, and hang up or hold
// where the call's phone system can be told (GET /api/calls/<id>/controls/ says which). The
// transfer itself is the socket's `transfer` message; how it goes comes back as `transfer`.
import { $, el } from "../rapport/dom.js";
import { send } from "./connection.js";
import { notice } from "./notice.js";
import { api } from "./server.js";
import { changed, config, model } from "./state.js";

const TALKING = ["connected", "held", "transferred"];
let loadedFor = null;

function talkingCall() {
  const call = model.call;
  if (!call || model.agent.status !== "busy" || TALKING.indexOf(call.state) === -1) return null;
  return call;
}

function controlsOf(call) {
  return model.controls && model.controls.call_id === call.call_id ? model.controls : null;
}

export function renderCallControls() {
  const box = $("[data-call-controls]");
  const call = talkingCall();
  box.hidden = !call;
  if (!call) {
    loadedFor = null;
    return;
  }
  if (loadedFor !== call.call_id) {
    loadedFor = call.call_id;
    loadControls(call.call_id);
  }
  const known = controlsOf(call);
  const controls = known ? known.controls : {};
  $("[data-hold]").hidden = !controls.hold || call.state === "held";
  $("[data-resume]").hidden = !controls.hold || call.state !== "held";
  $("[data-hangup]").hidden = !controls.hangup;
  const transfer = model.transfer && model.transfer.call_id === call.call_id ? model.transfer : null;
  const underWay = !!transfer && (transfer.state === "offered" || transfer.state === "accepted");
  const button = $("[data-transfer-send]");
  button.disabled = underWay || !known;
  button.textContent = controls.transfer === "phone" ? "Send the note ahead" : "Transfer";
  $("[data-transfer-state]").textContent = transfer ? transferText(transfer, controls) : "";
}

function transferText(transfer, controls) {
  const name = transfer.to_agent.display_name;
  switch (transfer.state) {
    case "offered":
      return "Ringing " + name + " with your note…";
    case "accepted":
      return controls.transfer === "phone"
        ? "Transfer on your phone to " + name + " — the note has been sent ahead."
        : name + " accepted — the caller is being moved to them.";
    case "declined":
      return name + " declined — the caller stays with you.";
    case "timed_out":
      return name + " did not answer — the caller stays with you.";
    default:
      return name + " could not take it — the caller stays with you.";
  }
}

function loadControls(callId) {
  return api("GET", config.calls_url + encodeURIComponent(callId) + "/controls/")
    .then((data) => {
      model.controls = data;
      fillColleagues(data);
      changed();
    })
    .catch((error) => notice("Could not load the transfer list: " + error.message));
}

// Colleagues by name (only the free ones can be chosen), then any queue's next free agent.
function fillColleagues(data) {
  const select = $("[data-transfer-to]");
  const chosen = select.value;
  const people = el("optgroup", { label: "Colleague" });
  data.colleagues.forEach((colleague) => {
    const queues = colleague.queues.map((queue) => queue.name).join(", ");
    const text = colleague.display_name + " — " + colleague.status_label + (queues ? " (" + queues + ")" : "");
    people.append(el("option", { value: colleague.id, text: text, disabled: !colleague.free }));
  });
  const queues = el("optgroup", { label: "Next free agent in" });
  data.queues.forEach((queue) => {
    queues.append(el("option", { value: "queue:" + queue.slug, text: queue.name }));
  });
  select.replaceChildren(el("option", { value: "", text: "Choose a colleague" }), people, queues);
  select.value = chosen;
}

function submitTransfer(event) {
  event.preventDefault();
  const call = talkingCall();
  if (!call) return;
  const to = $("[data-transfer-to]").value;
  const note = $("[data-transfer-note]").value.trim();
  if (!to) return notice("Choose a colleague to transfer to.");
  if (!note) return notice("Write a one-line hand-off for your colleague.");
  const message = { type: "transfer", call_id: call.call_id, note: note };
  if (to.indexOf("queue:") === 0) message.to_queue = to.slice("queue:".length);
  else message.to_agent = Number(to);
  send(message);
}

function control(type) {
  const call = talkingCall();
  if (call) send({ type: type, call_id: call.call_id });
}

export function wireCallControls() {
  $("[data-transfer-form]").addEventListener("submit", submitTransfer);
  // Who is free changes by the second: the list is read again as the agent opens it.
  $("[data-transfer-to]").addEventListener("focus", () => {
    const call = talkingCall();
    if (call) loadControls(call.call_id);
  });
  $("[data-hold]").addEventListener("click", () => control("hold"));
  $("[data-resume]").addEventListener("click", () => control("resume"));
  $("[data-hangup]").addEventListener("click", () => control("hangup"));
}

export function onTransfer(message) {
  model.transfer = message;
  if (message.state === "accepted") $("[data-transfer-note]").value = "";
}
