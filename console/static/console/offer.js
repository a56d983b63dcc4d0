// An offer ringing on the screen: announced, counted down, accepted or declined.
import { $, el } from "../rapport/dom.js";
import { send } from "./connection.js";
import { parseDate } from "./format.js";
import { changed, model } from "./state.js";

export function announce(offer, action) {
  const caller = offer.caller || {};
  const who = caller.customer ? caller.customer.name : caller.kind === "shared" ? "shared number" : "new caller";
  $("[data-announce]").textContent = "Incoming call: " + who + ". " + (action || "Press A to accept.");
}

export function accept() {
  if (!model.offer || model.pending) return;
  if (send({ type: "accept", offer_id: model.offer.offer_id })) {
    model.pending = "accept";
    changed();
  }
}

export function decline() {
  if (!model.offer || model.pending) return;
  if (send({ type: "decline", offer_id: model.offer.offer_id })) {
    model.pending = "decline";
    changed();
  }
}

export function ringTimer() {
  return el(
    "span",
    { class: "ring", "aria-label": "Time left to answer" },
    el("span", { class: "ring-track" }, el("span", { class: "ring-bar", "data-ring-bar": true })),
    el("span", { class: "ring-secs", "data-ring-secs": true })
  );
}

export function tickRing() {
  const bar = $("[data-ring-bar]");
  const secs = $("[data-ring-secs]");
  if (!model.offer || !bar) return;
  const expires = parseDate(model.offer.expires_at);
  const total = (model.offer.timeout_seconds || 15) * 1000;
  const left = expires ? Math.max(0, Math.min(total, expires.getTime() - Date.now())) : 0;
  bar.style.transform = "scaleX(" + (left / total).toFixed(3) + ")";
  bar.setAttribute("data-urgent", String(left < 5000));
  secs.textContent = Math.ceil(left / 1000) + " s";
}

export function offerActions() {
  const waiting = model.pending !== null;
  return el(
    "footer",
    { class: "actions" },
    el(
      "button",
      { type: "button", class: "primary accept", "data-accept": true, disabled: waiting, onclick: accept },
      model.pending === "accept" ? "Connecting…" : "Accept",
      el("kbd", { text: "A" })
    ),
    el(
      "button",
      { type: "button", class: "secondary", "data-decline": true, disabled: waiting, onclick: decline },
      "Decline",
      el("kbd", { text: "D" })
    )
  );
}
