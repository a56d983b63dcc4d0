// The page's state: its config (console/views.py, in a json_script block: the page runs no
// inline script), the labels the server sends with it, and the model every view draws from.
import { readJson } from "../rapport/dom.js";

export const config = readJson("console-config");
export const me = config.agent;
export const labels = config.labels;

export const model = {
  agent: {
    id: me.id,
    display_name: me.display_name,
    status: me.status,
    not_ready_reason: me.not_ready_reason,
    status_label: me.status_label,
  },
  offer: null,
  call: null,
  waiting: [], // callers held for this agent while they are busy: {call_id, caller_name, waiting_since, wait_until}
  ringing: null, // a call ringing on the agent's phone, routed by the phone system itself
  olderNotes: {}, // customer id -> {notes: [...], loading: bool}
  noteDirty: false,
  pending: null, // "accept" | "decline" while waiting for the server's answer
  controls: null, // for the call: {call_id, controls: {transfer, hangup, hold}, colleagues}
  transfer: null, // the agent's own hand-off of their call, as the `transfer` message said
};

// After a change to the model, every view draws again (the entry module subscribes the drawing).
const listeners = [];

export function onChange(listener) {
  listeners.push(listener);
}

export function changed() {
  listeners.forEach((listener) => listener());
}

export function isIdleStatus(status) {
  return status === "available" || status === "break" || status === "offline";
}

export function isTalking(call) {
  return ["wrap_up", "ended", "abandoned"].indexOf(call.state) === -1;
}

export function currentCustomer() {
  return model.call && model.call.caller && model.call.caller.customer;
}
