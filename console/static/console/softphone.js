// The phone in the console (docs/console.md "The phone in the browser"): where the agent has a
// SIP address on Rapport's PBX, GET /api/softphone/ gives this page its own short-lived
// credentials, and JsSIP registers it over WebSocket to Kamailio. A call the PBX rings here puts
// Accept and Decline on the caller's card that Generic CTI already showed; Accept answers in the
// browser. The top bar says whether the phone is connected. <body data-softphone> and
// <body data-softphone-call> say what is happening.
import { $, setText } from "../rapport/dom.js";
import { UA, WebSocketInterface } from "./vendor/jssip.js";
import { notice } from "./notice.js";
import { changed, config, model } from "./state.js";

// New credentials this long before the old ones expire: a registration refresh signs with them.
const RENEW_BEFORE_MS = 5 * 60 * 1000;
const RETRY_MS = 15 * 1000;
const MICROPHONE_REFUSED =
  "Rapport needs your microphone to answer calls in the browser; allow it in the address bar, " +
  "or use your desk phone.";
const STATE_TEXT = {
  off: "Phone off",
  connecting: "Phone connecting…",
  connected: "Phone connected",
  reconnecting: "Phone reconnecting…",
};

let ua = null;
let phone = "off"; // off | connecting | connected | reconnecting
let renewTimer = null;
let renewWhenIdle = false;
let leaving = false;
let microphone = "unasked"; // unasked | allowed | refused
let asking = null; // the permission prompt's promise while it is open
// The one SIP call on this page: {session, state: "ringing"|"answering"|"talking", muted, held,
// callId, rapportCallId, number}. A second INVITE while there is one is answered busy.
let call = null;

// --- credentials and registration -----------------------------------------------------------

function start() {
  if (!config.softphone_url) return;
  fetch(config.softphone_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((response) => {
      // 404: this agent has no phone here (no PBX, or a desk phone only): nothing to show.
      if (response.status === 404) return;
      if (!response.ok) throw new Error("credentials: " + response.status);
      return response.json().then(register);
    })
    .catch(() => {
      setPhone("reconnecting");
      scheduleRenewal(RETRY_MS);
    });
}

function register(credentials) {
  if (leaving) return;
  if (ua) ua.stop();
  setPhone("connecting");
  ua = new UA({
    sockets: [new WebSocketInterface(credentials.websocket_url)],
    uri: credentials.uri,
    authorization_user: credentials.username,
    password: credentials.password,
    register: true,
    register_expires: 300,
    session_timers: false,
    user_agent: "Rapport console",
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 30,
  });
  const mine = ua;
  const ifCurrent = (handler) => (event) => {
    if (ua === mine) handler(event);
  };
  ua.on("registered", ifCurrent(() => setPhone("connected")));
  ua.on("disconnected", ifCurrent(() => setPhone(leaving ? "off" : "reconnecting")));
  ua.on("unregistered", ifCurrent(() => setPhone(leaving ? "off" : "reconnecting")));
  ua.on("registrationFailed", ifCurrent((event) => {
    setPhone("reconnecting");
    // Refused credentials (expired, or the PBX's secret changed): ask Rapport for new ones. A lost
    // connection JsSIP retries by itself.
    if (event.cause !== "Connection Error" && event.cause !== "Request Timeout") scheduleRenewal(RETRY_MS);
  }));
  ua.on("newRTCSession", ifCurrent(onSession));
  ua.start();
  // `expires`: unix time (seconds).
  const expires = Number(credentials.expires) * 1000;
  scheduleRenewal(Math.max(RETRY_MS, (expires || Date.now()) - Date.now() - RENEW_BEFORE_MS));
}

// The username carries its expiry, so renewing means a new user agent; never in the middle of
// a call: then right after it.
function scheduleRenewal(delay) {
  clearTimeout(renewTimer);
  renewTimer = setTimeout(() => {
    if (call) renewWhenIdle = true;
    else start();
  }, delay);
}

function setPhone(state) {
  phone = state;
  renderPhone();
}

// --- the microphone, asked once -------------------------------------------------------------

// `again`: ask even if refused before (Accept: the agent may have allowed it in the address bar).
function askMicrophone(again) {
  if (microphone === "allowed") return Promise.resolve(true);
  if (asking) return asking;
  if (microphone === "refused" && !again) return Promise.resolve(false);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    microphone = "refused";
    renderPhone();
    return Promise.resolve(false);
  }
  asking = navigator.mediaDevices
    .getUserMedia({ audio: true, video: false })
    .then(
      (stream) => {
        // Only the permission is wanted now; answering a call opens the microphone again.
        stream.getTracks().forEach((track) => track.stop());
        microphone = "allowed";
      },
      () => {
        microphone = "refused";
      }
    )
    .then(() => {
      asking = null;
      renderPhone();
      return microphone === "allowed";
    });
  return asking;
}

// --- calls ----------------------------------------------------------------------------------

function header(request, name) {
  try {
    return request.getHeader(name) || "";
  } catch (error) {
    return "";
  }
}

function onSession(event) {
  if (event.originator !== "remote") return;
  const session = event.session;
  if (call) {
    session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
    return;
  }
  const request = event.request;
  call = {
    session: session,
    state: "ringing",
    muted: false,
    held: false,
    callId: request.call_id,
    rapportCallId: header(request, "X-Rapport-Call-Id"),
    number: request.from && request.from.uri ? request.from.uri.user : "",
  };
  session.on("peerconnection", (data) => playRemoteAudio(data.peerconnection));
  session.on("confirmed", () => onCallChange(session, () => (call.state = "talking")));
  session.on("hold", () => onCallChange(session, () => (call.held = true)));
  session.on("unhold", () => onCallChange(session, () => (call.held = false)));
  session.on("muted", () => onCallChange(session, () => (call.muted = true)));
  session.on("unmuted", () => onCallChange(session, () => (call.muted = false)));
  session.on("ended", () => endCall(session));
  session.on("failed", () => endCall(session));
  changed();
}

function onCallChange(session, change) {
  if (!call || call.session !== session) return;
  change();
  changed();
}

function endCall(session) {
  if (!call || call.session !== session) return;
  call = null;
  $("[data-phone-audio]").srcObject = null;
  changed();
  if (renewWhenIdle) {
    renewWhenIdle = false;
    start();
  }
}

function playRemoteAudio(connection) {
  connection.addEventListener("track", (event) => {
    const audio = $("[data-phone-audio]");
    audio.srcObject = event.streams[0] || new MediaStream([event.track]);
    audio.play().catch(() => {
      // Autoplay refused before any click: the page has been clicked by then (Accept).
    });
  });
}

function digits(number) {
  return String(number || "").replace(/\D/g, "").slice(-10);
}

// The caller's card this SIP call belongs to: the PBX's X-Rapport-Call-Id, its Call-ID (the id
// it gives Rapport's events), or else the caller's number.
function belongsTo(source) {
  if (!call || !source) return false;
  if (call.rapportCallId) return call.rapportCallId === source.call_id;
  if (call.callId === source.call_id) return true;
  const number = digits(source.caller && source.caller.number);
  return number !== "" && number === digits(call.number);
}

// Ringing in this browser for the card `source` (Generic CTI's `ringing` message).
export function ringsHere(source) {
  return belongsTo(source);
}

// A call ringing here before (or without) Rapport's card for it: the card drawn from the INVITE.
export function ringingWithoutCard() {
  if (!call || call.state === "talking" || belongsTo(model.ringing)) return null;
  return {
    call_id: call.rapportCallId || call.callId,
    queue: null,
    caller: { kind: "unknown", number: call.number, customer: null, candidates: [] },
  };
}

export function isRingingHere() {
  return !!call && call.state === "ringing";
}

// Accept: answered in the browser, with the microphone (asked now if never asked).
export function answer() {
  if (!call || call.state !== "ringing") return false;
  const session = call.session;
  call.state = "answering";
  changed();
  askMicrophone(true).then((allowed) => {
    if (!call || call.session !== session) return;
    if (!allowed) {
      call.state = "ringing";
      changed();
      return;
    }
    try {
      session.answer({ mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } });
    } catch (error) {
      notice("Could not answer: " + error.message);
    }
  });
  return true;
}

// Decline: busy for this browser only, so the PBX goes on to the agent's other phones or the queue.
export function declineHere() {
  if (!call || call.state !== "ringing") return false;
  call.session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
  return true;
}

function hangUp() {
  if (call) call.session.terminate();
}

function toggleMute() {
  if (!call || call.state !== "talking") return;
  if (call.muted) call.session.unmute({ audio: true });
  else call.session.mute({ audio: true });
}

function toggleHold() {
  if (!call || call.state !== "talking") return;
  if (call.held) call.session.unhold();
  else call.session.hold();
}

// --- drawing --------------------------------------------------------------------------------

export function renderPhone() {
  const state = $("[data-phone-state]");
  state.hidden = !ua && phone === "off";
  state.setAttribute("data-phone-state", phone);
  setText(state, STATE_TEXT[phone]);
  document.body.dataset.softphone = phone;
  const mic = $("[data-phone-mic]");
  mic.hidden = microphone !== "refused";
  setText(mic, microphone === "refused" ? MICROPHONE_REFUSED : "");
  document.body.dataset.softphoneCall = call ? call.state : "none";
  const box = $("[data-phone-call]");
  const talking = !!call && call.state === "talking";
  box.hidden = !talking;
  if (!talking) return;
  setText($("[data-phone-call-state]"), call.held ? "On hold" : call.muted ? "Muted" : "On the line");
  const mute = $("[data-phone-mute]");
  mute.setAttribute("aria-pressed", String(call.muted));
  setText(mute, call.muted ? "Unmute" : "Mute");
  const hold = $("[data-phone-hold]");
  hold.setAttribute("aria-pressed", String(call.held));
  setText(hold, call.held ? "Resume" : "Hold");
}

export function wirePhone() {
  $("[data-phone-mute]").addEventListener("click", toggleMute);
  $("[data-phone-hold]").addEventListener("click", toggleHold);
  $("[data-phone-hangup]").addEventListener("click", hangUp);
  // Unregister on leaving: a reloaded page registers afresh, and the PBX rings the agent's other
  // phones or the queue meanwhile. A call in progress would end, so the browser asks first.
  window.addEventListener("beforeunload", (event) => {
    if (call && call.state === "talking") {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  window.addEventListener("pagehide", () => {
    leaving = true;
    clearTimeout(renewTimer);
    if (ua) ua.stop();
  });
  // Back from the browser's back-forward cache: the page registers again, as a reload would.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    leaving = false;
    ua = null;
    start();
  });
  renderPhone();
  start();
}

// The microphone is asked the first time the agent is Available with a phone here, not in the
// middle of the first ring.
export function askMicrophoneWhenAvailable() {
  if (ua && microphone === "unasked" && model.agent.status === "available") askMicrophone();
}
