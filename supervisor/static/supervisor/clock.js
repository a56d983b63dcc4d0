// Waits tick here, from their start timestamps, between frames: every element with data-since
// shows the time elapsed since that moment, by the server's clock.
import { setText } from "../rapport/dom.js";
import { duration } from "./format.js";
import { root } from "./page.js";

let clockOffsetMs = 0; // server time minus this browser's time

export function setServerTime(iso) {
  clockOffsetMs = Date.parse(iso) - Date.now();
}

export function setSince(node, iso) {
  node.setAttribute("data-since", iso || "");
}

export function tick() {
  const now = Date.now() + clockOffsetMs;
  root.querySelectorAll("[data-since]").forEach((node) => {
    const since = node.getAttribute("data-since");
    setText(node, since ? duration(now - Date.parse(since)) : "–");
  });
  const clock = document.querySelector("[data-clock]");
  if (clock) setText(clock, new Date(now).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
}
