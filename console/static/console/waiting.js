// Callers held for this agent while they are busy: a quiet line each, not an offer, so they can
// wrap up first. The server ends each line; the seconds tick here.
import { $, $$, el } from "../rapport/dom.js";
import { parseDate } from "./format.js";
import { model } from "./state.js";

export function dropWaiting(callId) {
  model.waiting = model.waiting.filter((line) => line.call_id !== callId);
}

export function renderWaiting() {
  const list = $("[data-waiting-lines]");
  list.replaceChildren(
    ...model.waiting.map((line) =>
      el(
        "li",
        { class: "waiting-line", "data-waiting-call": line.call_id },
        el("span", { class: "waiting-name", text: line.caller_name || "A caller" }),
        line.chose_to_wait ? " chose to wait for you " : " is waiting for you ",
        el("span", {
          class: "waiting-secs",
          "data-waiting-since": line.waiting_since,
          "data-waiting-clock": line.chose_to_wait ? "minutes" : "seconds",
        })
      )
    )
  );
  list.hidden = !model.waiting.length;
  tickWaiting();
}

export function tickWaiting() {
  // A line whose wait is long over (its ending message was lost) goes anyway.
  const stale = model.waiting.filter((line) => {
    const until = parseDate(line.wait_until);
    return until && Date.now() - until.getTime() > 10000;
  });
  if (stale.length) {
    stale.forEach((line) => dropWaiting(line.call_id));
    renderWaiting();
    return;
  }
  $$("[data-waiting-since]").forEach((node) => {
    const since = parseDate(node.getAttribute("data-waiting-since"));
    const seconds = since ? Math.max(0, Math.floor((Date.now() - since.getTime()) / 1000)) : 0;
    // A caller who chose to wait is told in minutes and seconds, like a phone's call timer.
    node.textContent =
      node.getAttribute("data-waiting-clock") === "minutes"
        ? "(" + Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0") + ")"
        : "(" + seconds + " s)";
  });
}
