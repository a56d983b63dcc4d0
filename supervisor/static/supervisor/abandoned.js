// Today's callers who hung up before an answer, to call back.
import { $, el, setText } from "../rapport/dom.js";
import { clockTime, spoken } from "./format.js";
import { post, root } from "./page.js";

export function drawAbandoned(abandoned) {
  const body = $("[data-abandoned]");
  if (!body) return;
  setText(
    $("[data-abandoned-summary]"),
    abandoned.length
      ? abandoned.filter((row) => !row.called_back).length + " of " + abandoned.length + " not called back yet"
      : "None today."
  );
  body.replaceChildren(
    ...abandoned.map((row) =>
      el(
        "tr",
        { "data-abandoned-call": row.call_id },
        el("th", { class: "sv-abandoned-caller", text: row.caller, scope: "row" }),
        el("td", { class: "sv-abandoned-number", text: row.number || "" }),
        el("td", { class: "sv-num", text: clockTime(row.hung_up_at) }),
        el("td", { class: "sv-num", text: spoken(row.waited_seconds) }),
        el("td", { text: row.last_agent ? row.last_agent.display_name : "–" }),
        el("td", { class: "sv-called-back" }, calledBack(row))
      )
    )
  );
}

function calledBack(row) {
  if (row.called_back) return "Called back by " + row.called_back.by + " at " + clockTime(row.called_back.at);
  const button = el("button", { class: "sv-small", type: "button", text: "Mark called back" });
  button.addEventListener("click", () => {
    button.disabled = true;
    post(
      root.dataset.calledBackUrl.replace("{id}", encodeURIComponent(row.call_id)),
      {},
      row.caller + " marked called back."
    );
  });
  return button;
}
