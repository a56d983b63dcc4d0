// What the card shows of a known customer, as consent allows: how they like to be served, how
// far they trust us, who they last spoke with, and the notes from earlier calls.
import { el } from "../rapport/dom.js";
import { formatDay, parseDate } from "./format.js";
import { notice } from "./notice.js";
import { api } from "./server.js";
import { changed, config, me, model } from "./state.js";
import { codeBadge, followUpLine } from "./wrap_up_codes.js";

const PACE = {
  brisk: ["In a rush — skip the chit-chat", "brisk"],
  unhurried: ["Unhurried — happy to talk", "calm"],
  unknown: ["Ask: in a hurry today?", "ask"],
};
const HOLD = {
  fine: ["Fine to put on hold", "calm"],
  avoid: ["Avoid holding — offer a call back", "brisk"],
  unknown: ["Ask before putting on hold", "ask"],
};
const CHANNEL = {
  text: ["Prefers text — offer a text follow-up", "calm"],
  email: ["Prefers email — offer an email follow-up", "calm"],
  phone: ["Prefers phone", "calm"],
  unknown: ["Ask: text or email for follow-up?", "ask"],
};

function isClosed(customer) {
  return customer.history_hidden || customer.consent === "closed";
}

export function customerDetails(customer, source) {
  const parts = [];
  const followUp = followUpLine(customer, isThisCall(customer.last_agent, source));
  if (followUp) parts.push(followUp);
  if (isClosed(customer)) {
    parts.push(
      el(
        "p",
        { class: "banner closed", "data-consent-closed": true, role: "note" },
        el("strong", { text: "Consent closed — no history shown." }),
        " Serve this call; do not bring up earlier purchases or notes."
      )
    );
  }
  parts.push(preferences(customer), trustLine(customer, source));
  if (!customer.history_hidden && !isThisCall(customer.last_agent, source)) {
    parts.push(lastAgentLine(customer));
  }
  parts.push(notesSection(customer));
  return parts;
}

// ---- how they like to be served ----------------------------------------------------------------

function preferences(customer) {
  const prefs = customer.preferences || {};
  const closed = isClosed(customer);
  const row = el("div", { class: "prefs" });
  row.append(prefCell("Pace", "pace", prefs.pace, PACE));
  if (!closed || (prefs.hold_tolerance && prefs.hold_tolerance.value !== "unknown")) {
    row.append(prefCell("Hold", "hold_tolerance", prefs.hold_tolerance, HOLD));
  }
  if (!closed || (prefs.preferred_channel && prefs.preferred_channel.value !== "unknown")) {
    row.append(prefCell("Channel", "preferred_channel", prefs.preferred_channel, CHANNEL));
  }
  return row;
}

function prefCell(label, name, pref, table) {
  const value = (pref && pref.value) || "unknown";
  const entry = table[value] || [value, "calm"];
  return el(
    "div",
    { class: "pref pref-" + entry[1], "data-pref": name, "data-value": value },
    el("span", { class: "pref-label", text: label }),
    el("span", { class: "pref-value", text: entry[0] }),
    el("span", { class: "pref-source", text: value === "unknown" ? "not known yet" : provenance(pref) })
  );
}

function provenance(pref) {
  if (!pref || !pref.source || pref.source === "unknown") return "not recorded yet";
  const when = formatDay(pref.set_at);
  const who =
    pref.source === "caller"
      ? "said by the caller"
      : pref.source === "keypad"
        ? "said by the caller, on the keypad"
        : "inferred by " + firstName(pref.set_by);
  return when ? who + ", " + when : who;
}

function firstName(name) {
  return (name || "").trim().split(/\s+/)[0] || "an agent";
}

// ---- how far they trust us -------------------------------------------------------------------

function trustLine(customer, source) {
  const trust = customer.trust || {};
  const consent = trust.consent || customer.consent || "closed";
  const items = [];
  items.push(
    {
      closed: chip("bad", "✕", "Consent closed", "consent"),
      conditional: chip("warn", "◐", "Consent conditional", "consent"),
      open: chip("good", "✓", "Consent open", "consent"),
    }[consent] || chip("neutral", "?", "Consent " + consent, "consent")
  );
  const verified = trust.identity_verified || source.identity_verified;
  items.push(
    verified
      ? chip("good", "✓", "ID verified on this call", "identity")
      : chip("warn", "!", "ID not verified yet", "identity")
  );
  const survey = {
    agree: chip("good", "✓", "Trusts us (survey)", "survey"),
    neutral: chip("neutral", "–", "Survey: neutral", "survey"),
    disagree: chip("bad", "✕", "Doubts we have their interest at heart", "survey"),
  }[trust.survey_trust];
  if (survey) items.push(survey);
  else if (!customer.history_hidden) items.push(chip("neutral", "?", "No trust survey", "survey"));
  const tenure = tenureText(trust.customer_since);
  if (tenure) items.push(chip("neutral", "", tenure, "tenure"));
  const returns = {
    rarely: "Rarely returns",
    sometimes: "Sometimes returns",
    often: "Often returns",
  }[trust.return_behaviour];
  if (returns) items.push(chip("neutral", "", returns, "returns"));
  const line = el("p", { class: "trust", "data-trust": true, "aria-label": "Trust signals" });
  items.forEach((item, index) => {
    if (index) line.append(el("span", { class: "sep", "aria-hidden": "true", text: "·" }));
    line.append(item);
  });
  return line;
}

function chip(tone, icon, text, name) {
  return el(
    "span",
    { class: "chip tone-" + tone, "data-trust-item": name },
    icon ? el("span", { class: "icon", "aria-hidden": "true", text: icon }) : null,
    text
  );
}

function tenureText(since) {
  const date = parseDate(since);
  if (!date) return "";
  const years = (Date.now() - date.getTime()) / (365.25 * 24 * 3600 * 1000);
  if (years < 1) return "Customer since " + formatDay(since);
  return "Customer " + Math.floor(years) + (Math.floor(years) === 1 ? " year" : " years");
}

// ---- who they last spoke with ----------------------------------------------------------------

// Once connected, the caller's "last call" is this one: not worth a line.
function isThisCall(lastAgent, source) {
  const spoke = lastAgent && parseDate(lastAgent.last_spoke_at);
  const connected = parseDate(source.connected_at);
  return !!(spoke && connected && spoke.getTime() >= connected.getTime() - 1000);
}

function lastAgentLine(customer) {
  const last = customer.last_agent;
  if (!last) return el("p", { class: "last-agent muted", text: "First call with the team." });
  const when = formatDay(last.last_spoke_at);
  if (last.id === me.id) {
    return el(
      "p",
      { class: "last-agent mine", "data-last-agent": true },
      el("strong", { text: "You spoke with them" }),
      when ? " on " + when + "." : "."
    );
  }
  return el("p", {
    class: "last-agent",
    "data-last-agent": true,
    text: "Last spoke with " + last.display_name + (when ? " on " + when : "") + ".",
  });
}

// ---- notes from earlier calls ----------------------------------------------------------------

function notesSection(customer) {
  const older = model.olderNotes[customer.id] || { notes: [], loading: false };
  const notes = (customer.notes || []).concat(older.notes);
  const remaining = Math.max(0, (customer.more_notes || 0) - older.notes.length);
  const closed = isClosed(customer);
  const section = el(
    "section",
    { class: "notes", "aria-label": "Notes from earlier calls" },
    el("h2", { text: closed ? "Open matters" : "Earlier calls" })
  );
  if (!notes.length) {
    section.append(el("p", { class: "muted small", text: closed ? "No open matters." : "No notes yet." }));
  } else {
    const list = el("ol", { class: "note-list", "data-notes": true });
    notes.forEach((note) => list.append(noteItem(note)));
    section.append(list);
  }
  if (remaining > 0) {
    section.append(
      el("button", {
        type: "button",
        class: "link more",
        "data-more-notes": true,
        disabled: older.loading,
        text: older.loading ? "Loading…" : remaining + " more",
        onclick: () => loadOlderNotes(customer),
      })
    );
  }
  return section;
}

function noteItem(note) {
  const context = note.context || {};
  const fields = [
    ["Occasion", note.occasion || context.occasion],
    ["Intent", note.intent || context.intent],
    ["For", note.shopping_for || context.shopping_for],
    ["Sizes", note.sizes || context.sizes],
  ].filter((pair) => pair[1]);
  const item = el(
    "li",
    { class: "note-item", "data-note-id": note.id },
    el(
      "div",
      { class: "note-meta" },
      el("time", { datetime: note.created_at, text: formatDay(note.created_at) }),
      " · ",
      el("span", { class: "author", text: note.author || "Unknown agent" }),
      note.open_matter ? el("span", { class: "badge", text: "Open matter" }) : null,
      codeBadge(note)
    )
  );
  if (fields.length) {
    const dl = el("dl", { class: "note-context" });
    fields.forEach((pair) => {
      dl.append(el("div", {}, el("dt", { text: pair[0] }), el("dd", { text: pair[1] })));
    });
    item.append(dl);
  }
  if (note.text) item.append(el("p", { class: "note-text", text: note.text }));
  return item;
}

function loadOlderNotes(customer) {
  const older = model.olderNotes[customer.id] || { notes: [], loading: false };
  if (older.loading) return;
  older.loading = true;
  model.olderNotes[customer.id] = older;
  changed();
  const shown = (customer.notes || []).concat(older.notes);
  const oldest = shown.length ? shown[shown.length - 1].id : null;
  const url = config.customers_url + customer.id + "/notes/?limit=10" + (oldest ? "&before=" + oldest : "");
  api("GET", url)
    .then((data) => {
      const known = {};
      shown.forEach((note) => {
        known[note.id] = true;
      });
      (data.notes || []).forEach((note) => {
        if (!known[note.id]) older.notes.push(note);
      });
      customer.more_notes = older.notes.length + (data.more_notes || 0);
    })
    .catch((error) => notice("Could not load older notes: " + error.message))
    .then(() => {
      older.loading = false;
      changed();
    });
}
