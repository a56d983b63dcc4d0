// A queue's wrap-up codes today (docs/supervisor.md): how its answered calls ended, most chosen
// first, and how many were left without a code.
import { el, setText } from "../rapport/dom.js";

export function wrapUpCodesLine() {
  return el("p", { class: "sv-codes sv-sub", "data-wrap-up-codes": true, text: "Wrap-up codes today: none yet" });
}

export function drawWrapUpCodes(line, tally) {
  const parts = (tally.codes || []).map((code) => code.label + " " + code.count);
  if (tally.uncoded) parts.push("no code " + tally.uncoded);
  setText(line, "Wrap-up codes today: " + (parts.length ? parts.join(" · ") : "none yet"));
}
