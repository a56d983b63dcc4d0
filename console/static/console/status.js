// The agent's own status in the top bar: Available, Not ready (with a reason), Offline; the
// router sets On a call and Wrap-up.
import { $, $$ } from "../rapport/dom.js";
import { send } from "./connection.js";
import { saveNoteBeforeLeavingWrapUp } from "./note.js";
import { notice } from "./notice.js";
import { labels, model } from "./state.js";
import { readyBlockedByCode } from "./wrap_up_codes.js";

export function renderStatus() {
  const status = model.agent.status;
  $$("[data-set-status]").forEach((button) => {
    button.setAttribute("aria-checked", String(button.getAttribute("data-set-status") === status));
  });
  const label = $("[data-status-label]");
  label.textContent = model.agent.status_label || labels.statuses[status] || status || "";
  label.setAttribute("data-status", status || "");
  const reason = $("[data-not-ready-reason]");
  // The reason matters only to Not ready: chosen there, shown there.
  reason.hidden = status !== "break";
  if (status === "break" && model.agent.not_ready_reason && reason.value !== model.agent.not_ready_reason) {
    reason.value = model.agent.not_ready_reason;
  }
}

function setStatus(status) {
  const message = { type: "set_status", status: status };
  // The reason picked next to "Not ready"; "missed call" is the system's, never offered.
  if (status === "break") message.not_ready_reason = $("[data-not-ready-reason]").value;
  if (status === "available" && readyBlockedByCode()) return;
  saveNoteBeforeLeavingWrapUp().then((saved) => {
    if (saved) send(message);
    else notice("Your note is not saved yet, so your status did not change.");
  });
}

export function wireStatusControl() {
  $$("[data-set-status]").forEach((button) => {
    button.addEventListener("click", () => setStatus(button.getAttribute("data-set-status")));
  });
  $("[data-not-ready-reason]").addEventListener("change", () => {
    if (model.agent.status === "break") setStatus("break");
  });
}
