// The agent console: one WebSocket (docs/sockets.md), a few JSON requests, no framework, no
// build: plain ES modules, one topic each. This one draws the page from the model and wires
// the keys and buttons. Every piece of data reaches the page as text; nothing is parsed as HTML.
import { renderAlerts, tickTitle } from "./alerts.js";
import { connect } from "./connection.js";
import { wireNotifications } from "./desktop.js";
import { handle } from "./messages.js";
import { focusNote, ready, renderSide, saveNote, wireSidePanel } from "./note.js";
import { accept, decline, tickRing } from "./offer.js";
import { wireSoundControls } from "./ring.js";
import { answer, askMicrophoneWhenAvailable, declineHere, renderPhone, wirePhone } from "./softphone.js";
import { renderStage } from "./stage.js";
import { onChange } from "./state.js";
import { renderStatus, wireStatusControl } from "./status.js";
import { renderCallControls, wireCallControls } from "./transfer.js";
import { renderWaiting, tickWaiting } from "./waiting.js";
import { chooseCodeByKey, renderWrapUpCodes } from "./wrap_up_codes.js";

function render() {
  renderStatus();
  renderWaiting();
  renderStage();
  renderSide();
  renderWrapUpCodes();
  renderCallControls();
  renderAlerts();
  renderPhone();
  askMicrophoneWhenAvailable();
}

const SHORTCUTS = {
  // A call ringing in this browser (softphone.js) is answered here; else the offer on screen.
  KeyA: () => answer() || accept(),
  KeyD: () => declineHere() || decline(),
  KeyR: ready,
  KeyN: focusNote,
};

function onKey(event) {
  const target = event.target;
  const inField = target.closest && target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "Escape" && inField) {
    target.blur();
    return;
  }
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && target.closest("[data-note-form]")) {
    event.preventDefault();
    saveNote();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.repeat) return;
  if (inField && !event.altKey) return;
  const digit = /^(Digit|Numpad)([1-9])$/.exec(event.code);
  if (digit && chooseCodeByKey(Number(digit[2]))) {
    event.preventDefault();
    return;
  }
  const action = SHORTCUTS[event.code];
  if (!action) return;
  event.preventDefault();
  action();
}

onChange(render);
wireStatusControl();
wireSidePanel();
wireCallControls();
wireSoundControls();
wireNotifications();
wirePhone();
document.addEventListener("keydown", onKey);
setInterval(tickRing, 250);
setInterval(tickWaiting, 1000);
setInterval(tickTitle, 1000);
render();
connect(handle);
