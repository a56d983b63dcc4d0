// The stage: the caller card when an offer rings, the phone rings or a call is on, else the
// idle panel saying why no call is coming.
import { $ } from "../rapport/dom.js";
import { callerCard } from "./card.js";
import { tickRing } from "./offer.js";
import { ringingWithoutCard } from "./softphone.js";
import { isTalking, labels, model } from "./state.js";

export function renderStage() {
  const card = $("[data-card]");
  const idle = $("[data-idle]");
  // A call ringing on the phone shows unless the agent is talking on another.
  const onPhone = model.ringing || ringingWithoutCard();
  const ringing = onPhone && !(model.call && isTalking(model.call)) ? onPhone : null;
  const source = model.offer || ringing || model.call;
  if (!source) {
    card.hidden = true;
    card.replaceChildren();
    idle.hidden = false;
    $("[data-idle-title]").textContent = idleTitle();
    return;
  }
  idle.hidden = true;
  card.hidden = false;
  card.setAttribute("data-mode", model.offer ? "offer" : source === ringing ? "ringing" : "call");
  card.setAttribute("data-call-id", source.call_id || "");
  card.replaceChildren(...callerCard(source, !!model.offer, source === ringing));
  tickRing();
}

function idleTitle() {
  const status = model.agent.status;
  if (status === "available") return "Waiting for the next caller";
  if (status === "break") return "Not ready — no calls are offered to you";
  if (status === "offline") return "Offline — choose Available to take calls";
  if (status === "wrap_up") return "Wrap-up";
  return labels.statuses[status] || "Connecting…";
}
