// Every queue now: the totals across queues, and a card per queue with its waiting callers,
// each of whom the supervisor may move to another queue.
import { $, el, setText } from "../rapport/dom.js";
import { setSince } from "./clock.js";
import { percent } from "./format.js";
import { labels, post, root } from "./page.js";
import { drawWrapUpCodes, wrapUpCodesLine } from "./wrap_up_codes.js";

export const STATUS_GLYPH = { available: "●", busy: "■", wrap_up: "◐", break: "‖", offline: "○" };
export const STATUS_ORDER = ["available", "busy", "wrap_up", "break", "offline"];

let queueSlugs = [];
const queueCards = new Map();

export function drawTotals(totals) {
  setText($("[data-total=waiting]"), totals.waiting);
  setText($("[data-total=offered]"), totals.offered ? totals.offered + " ringing at an agent" : "none ringing");
  setSince($("[data-total=longest]"), totals.longest_waiting_since);
  $("[data-tile=waiting]").classList.toggle("sv-attention", totals.waiting > 0);
  const reunion = totals.reunion;
  setText($("[data-total=reunion-rate]"), percent(reunion.rate));
  setText($("[data-total=reunion-count]"), reunion.reunited + " of " + reunion.callers_with_last_agent + " returning callers");
  const today = totals.today;
  setText($("[data-total=service-level]"), percent(today.service_level));
  setText($("[data-total=service-level-detail]"), today.answered_within_target + " answered within target");
  setText($("[data-total=answered]"), today.answered);
  setText($("[data-total=abandoned]"), today.abandoned);
  setText(
    $("[data-total=asa]"),
    today.average_speed_of_answer_seconds === null
      ? "no answers yet"
      : "average answer " + today.average_speed_of_answer_seconds + " s"
  );
}

export function drawQueues(queues) {
  const container = $("[data-queues]");
  queueSlugs = queues.map((q) => ({ slug: q.slug, name: q.name }));
  const seen = new Set();
  queues.forEach((queue, index) => {
    seen.add(queue.slug);
    let entry = queueCards.get(queue.slug);
    if (!entry) {
      entry = queueCard(queue);
      queueCards.set(queue.slug, entry);
    }
    if (container.children[index] !== entry.card) container.insertBefore(entry.card, container.children[index] || null);
    drawQueue(entry, queue);
  });
  queueCards.forEach((entry, slug) => {
    if (!seen.has(slug)) {
      entry.card.remove();
      queueCards.delete(slug);
    }
  });
}

function stat(field, label, value) {
  return el(
    "div",
    { class: "sv-stat" + (field === "waiting" ? " sv-stat-waiting" : "") },
    el("span", { class: "sv-mid", text: value, "data-field": field }),
    el("span", { class: "sv-label", text: label })
  );
}

function queueCard(queue) {
  const list = el("ol", { class: "sv-waiting-list", "aria-label": "Callers waiting in " + queue.name });
  const card = el(
    "article",
    { class: "sv-queue", "data-queue": queue.slug },
    el(
      "header",
      { class: "sv-queue-head" },
      el("h2", { class: "sv-queue-name", text: queue.name }),
      el("span", { class: "sv-sub sv-queue-target" })
    ),
    el(
      "div",
      { class: "sv-queue-now" },
      stat("waiting", "waiting", "0"),
      stat("longest", "longest wait"),
      stat("offered", "ringing", "0")
    ),
    el(
      "ul",
      { class: "sv-agent-counts", "aria-label": "Agents in this queue" },
      STATUS_ORDER.map((status) =>
        el(
          "li",
          { class: "sv-count sv-status-" + status },
          el("span", { class: "sv-glyph", text: STATUS_GLYPH[status], "aria-hidden": "true" }),
          el("span", { class: "sv-count-n", text: "0", "data-count": status }),
          el("span", { class: "sv-count-label", text: labels.statuses[status] })
        )
      )
    ),
    el(
      "dl",
      { class: "sv-day" },
      [
        ["answered", "Answered"],
        ["abandoned", "Abandoned"],
        ["service_level", "Service level"],
        ["asa", "Avg answer"],
        ["reunion", "Own agent"],
        ["chose_to_wait", "Chose to wait"],
        ["chose_next_colleague", "Chose next colleague"],
        ["asked_for_callback", "Asked for a call back"],
        ["callbacks", "Call backs to make"],
      ].map((pair) => el("div", {}, el("dt", { text: pair[1] }), el("dd", { text: "–", "data-day": pair[0] })))
    ),
    wrapUpCodesLine(),
    list
  );
  return { card: card, list: list, rows: new Map() };
}

function drawQueue(entry, queue) {
  const card = entry.card;
  setText($(".sv-queue-target", card), "target " + queue.service_level_seconds + " s");
  setText($("[data-field=waiting]", card), queue.waiting);
  setText($("[data-field=offered]", card), queue.offered);
  setSince($("[data-field=longest]", card), queue.longest_waiting_since);
  card.classList.toggle("sv-attention", queue.waiting > 0);
  STATUS_ORDER.forEach((status) => {
    setText($("[data-count=" + status + "]", card), queue.agents[status] || 0);
  });
  const today = queue.today;
  setText($("[data-day=answered]", card), today.answered);
  setText($("[data-day=abandoned]", card), today.abandoned);
  setText($("[data-day=service_level]", card), percent(today.service_level));
  setText(
    $("[data-day=asa]", card),
    today.average_speed_of_answer_seconds === null ? "–" : today.average_speed_of_answer_seconds + " s"
  );
  setText($("[data-day=reunion]", card), percent(queue.reunion.rate));
  setText($("[data-day=chose_to_wait]", card), today.chose_to_wait);
  setText($("[data-day=chose_next_colleague]", card), today.chose_next_colleague);
  setText($("[data-day=asked_for_callback]", card), today.asked_for_callback);
  const callbacks = queue.callbacks;
  setText(
    $("[data-day=callbacks]", card),
    callbacks.pending
      ? callbacks.pending + " (oldest " + Math.floor(callbacks.oldest_age_seconds / 60) + " min)"
      : "0"
  );
  if (today.wrap_up_codes) drawWrapUpCodes($("[data-wrap-up-codes]", card), today.wrap_up_codes);

  const seen = new Set();
  queue.waiting_calls.forEach((call, index) => {
    seen.add(call.call_id);
    let row = entry.rows.get(call.call_id);
    if (!row) {
      row = waitingRow(call);
      entry.rows.set(call.call_id, row);
    }
    if (entry.list.children[index] !== row) entry.list.insertBefore(row, entry.list.children[index] || null);
    setSince($(".sv-wait", row), call.waiting_since);
    const note =
      call.callback
        ? "call back" + (call.state === "offered" ? ", ringing at an agent" : "")
        : call.state === "offered"
        ? "ringing at an agent"
        : call.held_for_last_agent
          ? "held for " + call.held_for_last_agent
          : "waiting";
    setText($(".sv-waiting-note", row), note);
    row.classList.toggle("sv-ringing", call.state === "offered");
    fillMoveOptions($("select", row), queue.slug);
  });
  entry.rows.forEach((row, callId) => {
    if (!seen.has(callId)) {
      row.remove();
      entry.rows.delete(callId);
    }
  });
}

function waitingRow(call) {
  const wait = el("span", { class: "sv-wait" });
  setSince(wait, call.waiting_since);
  const select = el("select", { "aria-label": "Move caller to queue" });
  const form = el("form", { class: "sv-move" }, select, el("button", { class: "sv-small", text: "Move" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!select.value) return;
    post(
      root.dataset.moveUrl.replace("{id}", encodeURIComponent(call.call_id)),
      { queue: select.value, reason: "moved from the dashboard" },
      "Caller moved to " + select.options[select.selectedIndex].textContent + "."
    );
  });
  return el("li", { class: "sv-waiting", "data-call": call.call_id }, wait, el("span", { class: "sv-waiting-note" }), form);
}

function fillMoveOptions(select, currentSlug) {
  const wanted = queueSlugs.filter((q) => q.slug !== currentSlug);
  const key = wanted.map((q) => q.slug).join(",");
  if (select.getAttribute("data-options") === key) return;
  select.setAttribute("data-options", key);
  select.replaceChildren(el("option", { value: "", text: "Move to…" }));
  wanted.forEach((q) => select.appendChild(el("option", { value: q.slug, text: q.name })));
}
