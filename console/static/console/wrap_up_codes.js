// Wrap-up codes (docs/console.md): the call's queue's outcomes, chosen in wrap-up with their
// digit key; Ready waits for one where the queue requires it. Also what the history and the
// next call show of them, and the note draft kept per call in this tab's sessionStorage, so a
// reload during wrap-up does not lose what the agent was writing.
import { $, el } from "../rapport/dom.js";
import { send } from "./connection.js";
import { formatDay } from "./format.js";
import { notice } from "./notice.js";
import { changed, config, me, model } from "./state.js";

export const CODE_REQUIRED = "Choose a wrap-up code before Ready.";

function queueCodes(call) {
  const byQueue = config.wrap_up_codes || {};
  return (call && call.queue_id != null && byQueue[String(call.queue_id)]) || { required: false, codes: [] };
}

function inWrapUp() {
  return model.agent.status === "wrap_up" && !!model.call;
}

// The panel's list: each code with its key, the chosen one pressed.
export function renderWrapUpCodes() {
  const box = $("[data-wrap-up-codes]");
  if (!box) return;
  const queue = queueCodes(model.call);
  box.hidden = !inWrapUp() || !queue.codes.length;
  if (box.hidden) return;
  const chosen = model.call.wrap_up_code ? model.call.wrap_up_code.id : null;
  const list = el("ol", { class: "code-list" });
  queue.codes.forEach((code) => {
    list.append(
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "code",
            "data-wrap-up-code": code.id,
            "aria-pressed": String(code.id === chosen),
            onclick: () => chooseCode(code),
          },
          el("kbd", { text: String(code.key) }),
          " " + code.label
        )
      )
    );
  });
  const hint = queue.required ? "Required before Ready — press its number." : "Press its number.";
  box.replaceChildren(el("p", { class: "small", text: "How did the call end? " + hint }), list);
}

function chooseCode(code) {
  if (!inWrapUp()) return;
  send({ type: "wrap_up_code", call_id: model.call.call_id, code: code.id });
}

// A digit key pressed outside a text field, during wrap-up: the code with that key.
export function chooseCodeByKey(digit) {
  if (!inWrapUp()) return false;
  const code = queueCodes(model.call).codes.find((each) => each.key === digit);
  if (!code) return false;
  chooseCode(code);
  return true;
}

// The server's word that a code was chosen (docs/sockets.md `wrap_up_code`).
export function onWrapUpCode(message) {
  if (!model.call || model.call.call_id !== message.call_id) return;
  model.call.wrap_up_code = message.code ? { id: message.code, label: message.label } : null;
  notice("");
}

// Ready is refused here, as the server would, when the queue requires a code and none is
// chosen: the agent is told at once and keeps the call panel.
export function readyBlockedByCode() {
  if (!inWrapUp() || model.call.wrap_up_code) return false;
  if (!queueCodes(model.call).required) return false;
  notice(CODE_REQUIRED);
  return true;
}

// "Maya is calling back about …": told to the last agent while they are busy.
export function onCallingBack(message) {
  notice(message.text);
}

// ---- what the card shows of codes ---------------------------------------------------------

// First on the card: what the caller's last call left to do, when this is a new call.
export function followUpLine(customer, isThisCall) {
  const last = customer.last_agent;
  if (!last || !last.follow_up || isThisCall) return null;
  const when = formatDay(last.last_spoke_at);
  const by = last.id === me.id ? "you" : last.display_name;
  return el(
    "p",
    { class: "banner follow-up", "data-follow-up": true, role: "note" },
    el("strong", { text: last.follow_up.text }),
    (when ? ", " + when : "") + (by ? ", by " + by : "") + "."
  );
}

export function codeBadge(note) {
  if (!note.wrap_up_code) return null;
  return el("span", { class: "code-badge", "data-note-code": true, text: note.wrap_up_code });
}

// ---- the note draft -----------------------------------------------------------------------

const DRAFT_FIELDS = ["text", "occasion", "intent", "shopping_for", "sizes", "open_matter"];
let restoredFor = null;

function draftKey(callId) {
  return "rapport:note-draft:" + me.id + ":" + callId;
}

function storage() {
  try {
    return window.sessionStorage;
  } catch (error) {
    return null;
  }
}

export function keepDraft(form) {
  const store = storage();
  if (!store || !model.call) return;
  const draft = {};
  DRAFT_FIELDS.forEach((name) => {
    const field = form.elements[name];
    if (field) draft[name] = field.type === "checkbox" ? field.checked : field.value;
  });
  store.setItem(draftKey(model.call.call_id), JSON.stringify(draft));
}

export function dropDraft(callId) {
  const store = storage();
  if (store && callId) store.removeItem(draftKey(callId));
}

// Once per call: a draft left by a reload goes back into the (empty) form.
export function restoreDraft(form) {
  const store = storage();
  if (!store || !model.call || restoredFor === model.call.call_id) return;
  restoredFor = model.call.call_id;
  const raw = store.getItem(draftKey(model.call.call_id));
  if (!raw) return;
  let draft;
  try {
    draft = JSON.parse(raw);
  } catch (error) {
    return;
  }
  DRAFT_FIELDS.forEach((name) => {
    const field = form.elements[name];
    if (!field || draft[name] === undefined) return;
    if (field.type === "checkbox") field.checked = !!draft[name];
    else if (!field.value) field.value = draft[name];
  });
  model.noteDirty = true;
  changed();
}
