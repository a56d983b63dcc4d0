// The agents: a row each with their status, for how long, why not ready today, their caller,
// and a status the supervisor may set for them (or, for a busy agent, the call the phone system
// forgot to end, with the reason they type); and today's not-ready time per reason.
import { $, el, setText } from "../rapport/dom.js";
import { setSince } from "./clock.js";
import { spoken } from "./format.js";
import { labels, post, root } from "./page.js";
import { STATUS_GLYPH, STATUS_ORDER } from "./queues.js";

const SETTABLE = ["available", "break", "offline"];
const agentRows = new Map();

// `notReadyToday`: the figures' totals per reason, which name every reason an agent has today.
export function drawAgents(agents, notReadyToday) {
  const reasonLabels = new Map(notReadyToday.map((row) => [row.reason, row.label]));
  const body = $("[data-agents]");
  const seen = new Set();
  const counts = {};
  agents.forEach((agent, index) => {
    seen.add(agent.id);
    counts[agent.status] = (counts[agent.status] || 0) + 1;
    let tr = agentRows.get(agent.id);
    if (!tr) {
      tr = agentRow(agent);
      agentRows.set(agent.id, tr);
    }
    if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
    tr.className = "sv-status-" + agent.status + (agent.ringing ? " sv-ringing" : "");
    setText($(".sv-glyph", tr), STATUS_GLYPH[agent.status] || "?");
    setText($(".sv-status-label", tr), agent.status_label + (agent.ringing ? " · ringing" : ""));
    setSince($(".sv-for", tr), agent.status_changed_at);
    setText($(".sv-not-ready-today", tr), notReadyInWords(agent.not_ready_today_seconds, reasonLabels));
    setText($(".sv-caller", tr), agent.call ? agent.call.caller : "");
    tr.dataset.callId = agent.call ? agent.call.call_id : "";
    $(".sv-end-call", tr).hidden = !(agent.status === "busy" && agent.call);
    setText($(".sv-calls-today", tr), agent.calls_today);
    setText($(".sv-agent-queues", tr), agent.queues.join(", "));
  });
  agentRows.forEach((tr, id) => {
    if (!seen.has(id)) {
      tr.remove();
      agentRows.delete(id);
    }
  });
  setText(
    $("[data-agent-summary]"),
    STATUS_ORDER.map((s) => (counts[s] || 0) + " " + labels.statuses[s].toLowerCase()).join(" · ")
  );
}

function notReadyInWords(byReason, reasonLabels) {
  return Object.keys(byReason || {})
    .map((reason) => (reasonLabels.get(reason) || reason) + " " + spoken(byReason[reason]))
    .join(" · ");
}

function agentRow(agent) {
  const select = el("select", { "aria-label": "Set " + agent.display_name + "'s status" });
  // "break" comes once per not-ready reason: the option's value is "break:<reason>".
  SETTABLE.forEach((value) => {
    const choices =
      value === "break" && labels.not_ready_reasons.length
        ? labels.not_ready_reasons.map((reason) => [
            value + ":" + reason.code,
            labels.statuses[value] + " — " + reason.label,
          ])
        : [[value, labels.statuses[value]]];
    choices.forEach((choice) => select.appendChild(el("option", { value: choice[0], text: choice[1] })));
  });
  select.value = "offline";
  const form = el("form", { class: "sv-set-status" }, select, el("button", { class: "sv-small", text: "Set" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const parts = select.value.split(":");
    const body = { status: parts[0], reason: "set from the dashboard" };
    if (parts[1]) body.not_ready_reason = parts[1];
    post(
      root.dataset.statusUrl.replace("{id}", agent.id),
      body,
      agent.display_name + " set to " + select.options[select.selectedIndex].textContent + "."
    );
  });
  const endCall = el("button", {
    type: "button",
    class: "sv-small sv-end-call",
    text: "End the call the phone system forgot",
    hidden: true,
  });
  endCall.addEventListener("click", () => {
    const callId = endCall.closest("tr").dataset.callId;
    if (!callId) return;
    const reason = window.prompt(
      "End " + agent.display_name + "'s call " + callId + " as lost? Say why (kept with the call):"
    );
    if (!reason || !reason.trim()) return;
    post(
      root.dataset.endCallUrl.replace("{id}", encodeURIComponent(callId)),
      { reason: reason.trim() },
      agent.display_name + "'s call " + callId + " ended as lost."
    );
  });
  return el(
    "tr",
    { "data-agent": agent.id },
    el("th", { class: "sv-agent-name", text: agent.display_name, scope: "row" }),
    el(
      "td",
      { class: "sv-status" },
      el("span", { class: "sv-glyph", "aria-hidden": "true" }),
      el("span", { class: "sv-status-label" })
    ),
    el("td", { class: "sv-for" }),
    el("td", { class: "sv-not-ready-today sv-sub" }),
    el("td", { class: "sv-caller" }),
    el("td", { class: "sv-calls-today sv-num" }),
    el("td", { class: "sv-agent-queues sv-sub" }),
    el("td", { class: "sv-agent-action" }, form, endCall)
  );
}

export function drawNotReady(totals) {
  const list = $("[data-not-ready]");
  if (!list) return;
  list.replaceChildren(
    ...totals.map((row) =>
      el(
        "li",
        { class: "sv-not-ready-reason", "data-not-ready-reason": row.reason },
        el("span", { class: "sv-reason-label", text: row.label }),
        el("span", { class: "sv-reason-n", text: spoken(row.seconds) }),
        el("span", { class: "sv-sub", text: row.agents_now ? row.agents_now + " now" : "" })
      )
    )
  );
}
