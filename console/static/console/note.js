// The side panel during and after a call: the note for the next colleague, what the caller says
// of themselves, and Ready once wrap-up is done.
import { $, $$, el } from "../rapport/dom.js";
import { send } from "./connection.js";
import { formatTime } from "./format.js";
import { api } from "./server.js";
import { changed, config, currentCustomer, isIdleStatus, isTalking, me, model } from "./state.js";
import { dropDraft, keepDraft, readyBlockedByCode, restoreDraft } from "./wrap_up_codes.js";

export function renderSide() {
  const form = $("[data-note-form]");
  const call = model.call;
  form.hidden = !call;
  $("[data-wrapup]").hidden = model.agent.status !== "wrap_up";
  if (!call) return;
  restoreDraft(form);
  const customer = call.caller && call.caller.customer;
  const forLine = $("[data-note-for]");
  if (customer) {
    forLine.textContent = "Saved on this call for " + customer.name + ".";
  } else if (call.caller && call.caller.kind === "shared") {
    forLine.textContent = "Choose who you are speaking with (left) before saving.";
  } else if (!forLine.contains($("[data-new-caller-name]"))) {
    // Put in once and then left alone: moving it on every redraw would take the focus (and
    // the rest of the name) from an agent still typing it.
    forLine.replaceChildren("New caller: ", newCallerNameInput());
  }
  const said = $("[data-said]");
  said.disabled = !customer;
  if (customer) {
    const prefs = customer.preferences || {};
    $$("[data-said-field]", said).forEach((button) => {
      const field = button.getAttribute("data-said-field");
      const current = field === "consent" ? { value: customer.consent } : prefs[field];
      const pressed = !!current && current.value === button.getAttribute("data-said-value");
      button.setAttribute("aria-pressed", String(pressed));
    });
  }
}

function newCallerNameInput() {
  return el("input", {
    name: "new_caller_name",
    "data-new-caller-name": true,
    placeholder: "their name, to start a record",
    class: "inline-input",
  });
}

export function resetNoteForm() {
  if (model.call) dropDraft(model.call.call_id);
  $("[data-note-form]").reset();
  model.noteDirty = false;
  $("[data-note-state]").textContent = "";
  $("[data-said-state]").textContent = "";
}

function noteFromForm(form) {
  const data = new FormData(form);
  const field = (name) => String(data.get(name) || "").trim();
  return {
    text: field("text"),
    call_id: model.call.call_id,
    context: {
      occasion: field("occasion"),
      intent: field("intent"),
      shopping_for: field("shopping_for"),
      sizes: field("sizes"),
    },
    open_matter: data.get("open_matter") === "on",
  };
}

function isEmptyNote(note) {
  const context = note.context;
  return !note.text && !context.occasion && !context.intent && !context.shopping_for && !context.sizes;
}

// Resolves to true when there is nothing left to save.
export function saveNote() {
  const form = $("[data-note-form]");
  const state = $("[data-note-state]");
  if (!model.call) return Promise.resolve(true);
  const note = noteFromForm(form);
  if (isEmptyNote(note)) {
    model.noteDirty = false;
    return Promise.resolve(true);
  }
  state.textContent = "Saving…";
  return ensureCustomer()
    .then((customer) => {
      if (!customer) throw new Error("choose who you are speaking with first");
      return api("POST", config.customers_url + customer.id + "/notes/", note);
    })
    .then(() => {
      resetNoteForm();
      if (isIdleStatus(model.agent.status)) {
        model.call = null;
        changed();
      }
      state.textContent = "Saved at " + formatTime(new Date().toISOString()) + " — the next agent sees it.";
      return true;
    })
    .catch((error) => {
      state.textContent = "Not saved: " + error.message;
      return false;
    });
}

// An unknown caller gets a customer record from the name the agent typed.
function ensureCustomer() {
  const customer = currentCustomer();
  if (customer) return Promise.resolve(customer);
  const caller = model.call.caller || {};
  const nameInput = $("[data-new-caller-name]");
  const name = nameInput ? nameInput.value.trim() : "";
  if (caller.kind === "shared" || !name) return Promise.resolve(null);
  const callId = model.call.call_id;
  return api("POST", config.customers_url, {
    name: name,
    phones: caller.number ? [caller.number] : [],
  }).then((created) =>
    api("POST", config.calls_url + encodeURIComponent(callId) + "/caller/", {
      customer_id: created.id,
    }).then((data) => {
      if (model.call && model.call.call_id === callId) {
        model.call.caller = data.caller;
        model.call.customer_id = created.id;
        model.call.chosenCustomerId = created.id;
      }
      changed();
      return data.caller.customer;
    })
  );
}

function recordSaid(field, value) {
  const customer = currentCustomer();
  const state = $("[data-said-state]");
  if (!customer) return;
  const body = { source: "caller" };
  if (field === "hold_tolerance") body.hold_ok = value === "fine";
  else body[field] = value;
  state.textContent = "Saving…";
  api("PATCH", config.customers_url + customer.id + "/", body)
    .then(() => {
      const now = new Date().toISOString();
      if (field === "consent") {
        customer.consent = value;
        customer.trust = Object.assign({}, customer.trust, { consent: value });
      } else {
        customer.preferences = customer.preferences || {};
        customer.preferences[field] = { value: value, source: "caller", set_by: me.display_name, set_at: now };
      }
      state.textContent = "Recorded: said by the caller.";
      changed();
    })
    .catch((error) => {
      state.textContent = "Not recorded: " + error.message;
    });
}

// Wrap-up done: the note is saved first (if any), then the queue hears the agent is ready.
// The call panel goes when the server says the agent is available: a Ready it refuses (a
// wrap-up code still to choose) leaves everything in place.
export function ready() {
  if (model.agent.status !== "wrap_up" && !(model.call && !isTalking(model.call))) return;
  if (readyBlockedByCode()) return;
  const saving = model.noteDirty ? saveNote() : Promise.resolve(true);
  saving.then((saved) => {
    if (!saved) return;
    if (model.agent.status !== "wrap_up") {
      // Nothing to end on the server (the wrap-up ran out meanwhile): just clear the panel.
      model.call = null;
      resetNoteForm();
      changed();
      return;
    }
    send({ type: "ready" });
  });
}

// Leaving wrap-up some other way (a break, offline): the note being written is saved first,
// while the call is still the agent's to write on. Resolves to whether the change may go.
export function saveNoteBeforeLeavingWrapUp() {
  if (model.agent.status !== "wrap_up" || !model.noteDirty) return Promise.resolve(true);
  return saveNote();
}

export function focusNote() {
  if (!$("[data-note-form]").hidden) $("[data-note-text]").focus();
}

export function wireSidePanel() {
  $("[data-ready]").addEventListener("click", ready);
  $$("[data-said-field]").forEach((button) => {
    button.addEventListener("click", () => {
      recordSaid(button.getAttribute("data-said-field"), button.getAttribute("data-said-value"));
    });
  });
  const form = $("[data-note-form]");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveNote();
  });
  form.addEventListener("input", (event) => {
    if (event.target.name === "new_caller_name") return;
    model.noteDirty = true;
    keepDraft(form);
  });
}
