// The ring while an offer is open: two soft tones made with Web Audio (no sound file to
// license), every two seconds until the offer ends. Browsers let a page make sound only after
// the person has clicked or typed in it, so the audio starts on the first gesture and, until
// then, one line says the sound is off. Volume and mute are the agent's own, kept in this
// browser per agent. <body data-ringing> and <body data-sound> say what is happening.
import { $ } from "../rapport/dom.js";
import { me } from "./state.js";

const SETTINGS_KEY = "rapport.console.ring." + me.id;
const TONES = [
  { hz: 659.25, at: 0 }, // E5 then C5: a soft falling chime, not an alarm
  { hz: 523.25, at: 0.22 },
];
const REPEAT_MS = 2000;

let audio = null;
let volume = null;
let repeat = null;
const settings = loadSettings();

function loadSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY)) || {};
    return {
      volume: typeof saved.volume === "number" ? Math.min(1, Math.max(0, saved.volume)) : 0.6,
      muted: saved.muted === true,
    };
  } catch (error) {
    return { volume: 0.6, muted: false };
  }
}

function saveSettings() {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch (error) {
    // A browser that keeps nothing (private mode, full storage) still rings at this volume.
  }
}

// The first click or key in the page: from now on the page may make sound.
function unlock() {
  const AudioContext = window.AudioContext || window.webkitAudioContext;
  if (!AudioContext) return;
  if (!audio) {
    audio = new AudioContext();
    volume = audio.createGain();
    volume.connect(audio.destination);
    applyVolume();
    audio.addEventListener("statechange", renderSound);
  }
  if (audio.state === "suspended") audio.resume().then(renderSound, renderSound);
  renderSound();
}

function applyVolume() {
  if (volume) volume.gain.value = settings.muted ? 0 : settings.volume;
}

function chime() {
  if (!audio || audio.state !== "running") return;
  const start = audio.currentTime + 0.02;
  TONES.forEach((tone) => {
    const oscillator = audio.createOscillator();
    const envelope = audio.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = tone.hz;
    // A quick rise and a long fade: a bell, without a click at either end.
    envelope.gain.setValueAtTime(0.0001, start + tone.at);
    envelope.gain.exponentialRampToValueAtTime(0.5, start + tone.at + 0.02);
    envelope.gain.exponentialRampToValueAtTime(0.0001, start + tone.at + 0.6);
    oscillator.connect(envelope).connect(volume);
    oscillator.start(start + tone.at);
    oscillator.stop(start + tone.at + 0.65);
  });
}

export function startRing() {
  if (repeat) return;
  chime();
  repeat = setInterval(chime, REPEAT_MS);
  renderSound();
}

export function stopRing() {
  if (!repeat) return;
  clearInterval(repeat);
  repeat = null;
  renderSound();
}

function soundState() {
  if (!audio) return "locked";
  if (audio.state !== "running") return audio.state;
  return settings.muted ? "muted" : "on";
}

function renderSound() {
  const state = soundState();
  document.body.dataset.ringing = String(repeat !== null);
  document.body.dataset.sound = state;
  const line = $("[data-sound-line]");
  line.hidden = state !== "locked" && state !== "suspended";
  $("[data-ring-mute]").setAttribute("aria-pressed", String(settings.muted));
  $("[data-ring-volume]").value = String(Math.round(settings.volume * 100));
}

export function wireSoundControls() {
  ["pointerdown", "keydown"].forEach((type) => document.addEventListener(type, unlock, true));
  $("[data-ring-mute]").addEventListener("click", () => {
    settings.muted = !settings.muted;
    saveSettings();
    applyVolume();
    renderSound();
  });
  $("[data-ring-volume]").addEventListener("input", (event) => {
    settings.volume = Number(event.target.value) / 100;
    settings.muted = false;
    saveSettings();
    applyVolume();
    renderSound();
  });
  renderSound();
}
