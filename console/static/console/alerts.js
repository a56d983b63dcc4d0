// An offer the agent cannot miss while working in another tab: the ring, a desktop
// notification and a flashing title, from the moment it arrives until it is accepted,
// declined, timed out or withdrawn, whichever message ended it (each view follows the model).
// A caller newly held for this agent notifies once too.
import { closeNotification, notify, openTags } from "./desktop.js";
import { startRing, stopRing } from "./ring.js";
import { isRingingHere } from "./softphone.js";
import { model } from "./state.js";

const TITLE = "Console · Rapport";
let flashOn = false;
const notified = new Set(); // each offer and each waiting caller notifies once, even after a reconnect

function notifyOnce(tag, title, body) {
  if (notified.has(tag)) return;
  notified.add(tag);
  notify(tag, title, body);
}

function offerTitle(offer) {
  return "Incoming call — " + (offer.queue ? offer.queue.name : "Rapport");
}

export function renderAlerts() {
  const offer = model.offer;
  const wanted = new Set();
  if (offer) {
    const tag = "offer-" + offer.offer_id;
    wanted.add(tag);
    // The first name only, and only where consent lets a passer-by see it (the server decides).
    notifyOnce(tag, offerTitle(offer), offer.notification_name);
    startRing();
  } else if (isRingingHere()) {
    startRing();
  } else {
    stopRing();
  }
  model.waiting.forEach((line) => {
    // A caller who then chose to wait is news of its own: a second notification.
    const tag = "waiting-" + line.call_id + (line.chose_to_wait ? "-chose" : "");
    wanted.add(tag);
    const title = line.chose_to_wait ? "A caller chose to wait for you" : "A caller is waiting for you";
    notifyOnce(tag, title, line.notification_name);
  });
  openTags()
    .filter((tag) => !wanted.has(tag))
    .forEach(closeNotification);
  Array.from(notified)
    .filter((tag) => !wanted.has(tag))
    .forEach((tag) => notified.delete(tag));
  renderTitle();
}

function renderTitle() {
  let title = (model.ringing ? "Incoming call · " : "") + TITLE;
  if (model.offer) title = flashOn ? TITLE : offerTitle(model.offer);
  if (document.title !== title) document.title = title;
}

// While an offer rings the title alternates each second, so a background tab catches the eye.
export function tickTitle() {
  flashOn = !!model.offer && !flashOn;
  renderTitle();
}
