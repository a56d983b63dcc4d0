// The one-line notice above the card: what just happened, or what went wrong.
import { $ } from "../rapport/dom.js";

export function notice(text) {
  const box = $("[data-notice]");
  box.textContent = text || "";
  box.hidden = !text;
}
