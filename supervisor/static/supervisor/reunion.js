// How often returning callers reached their own agent: today's misses by reason, and the last
// week per queue and per agent (its own endpoint: it changes slowly).
import { $, el, setText } from "../rapport/dom.js";
import { percent } from "./format.js";
import { labels, root } from "./page.js";

export function drawReasons(reunion) {
  const keys = Object.keys(labels.not_reunited);
  const missed = keys.reduce((sum, key) => sum + reunion.not_reunited[key], 0);
  $("[data-reasons]").replaceChildren(
    ...keys.map((key) => {
      const count = reunion.not_reunited[key];
      const fill = el("span", { class: "sv-reason-fill" });
      fill.style.width = (missed ? Math.round((count / missed) * 100) : 0) + "%";
      return el(
        "li",
        { class: "sv-reason", "data-reason": key },
        el("span", { class: "sv-reason-label", text: labels.not_reunited[key] }),
        el("span", { class: "sv-reason-bar" }, fill),
        el("span", { class: "sv-reason-n", text: count })
      );
    })
  );
  setText(
    $("[data-reunion-waiting]"),
    reunion.callers_with_last_agent
      ? reunion.reunited +
          " of " +
          reunion.callers_with_last_agent +
          " returning callers reached their own agent" +
          (reunion.still_waiting ? "; " + reunion.still_waiting + " still waiting" : "") +
          "."
      : "No returning callers yet today."
  );
}

function reunionCells(row) {
  return [
    row.returning,
    percent(row.reunion_rate),
    row.waited_for + " (" + percent(row.waited_for_share) + ")",
    row.waited_for_reunited + " (" + percent(row.waited_for_reached_rate) + ")",
    row.sent_to_queue + " (" + percent(row.sent_to_queue_share) + ")",
    row.agent_unavailable + " (" + percent(row.agent_unavailable_share) + ")",
  ].map((text) => el("td", { class: "sv-num", text: text }));
}

export function drawReunionTable(table) {
  if (!table) return;
  $("[data-reunion-queues]").replaceChildren(
    ...table.queues.map((row) =>
      el(
        "tr",
        { "data-reunion-queue": row.slug || "" },
        el(
          "th",
          { text: row.name, scope: "row" },
          el("span", {
            class: "sv-sub sv-window",
            text: " waits " + row.last_agent_wait_seconds + " s · " + row.hold_averse_wait_seconds + " s if averse to holding",
          })
        ),
        reunionCells(row)
      )
    )
  );
  $("[data-reunion-agents]").replaceChildren(
    ...table.agents.map((row) =>
      el(
        "tr",
        { "data-reunion-agent": row.id },
        el("th", { text: row.display_name, scope: "row" }),
        reunionCells(row)
      )
    )
  );
  setText($("[data-reunion-empty]"), table.queues.length ? "" : "No returning callers in the last " + table.days + " days.");
}

export function refreshReunionTable() {
  fetch(root.dataset.reunionUrl, { credentials: "same-origin" })
    .then((response) => (response.ok ? response.json() : null))
    .then(drawReunionTable)
    .catch(() => {
      /* the next refresh tries again */
    });
}
