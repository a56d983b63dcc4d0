// The dashboard's page: its element (the URLs it posts to are its data attributes), the labels
// the server sends with it (supervisor/views.py, in a json_script block: the page runs no
// inline script), and the notice line where the supervisor's actions answer.
import { $, readJson, setText } from "../rapport/dom.js";

export const root = document.getElementById("supervisor");
export const labels = readJson("supervisor-labels");

export function notice(text, isError) {
  const node = $("[data-notice]");
  node.hidden = false;
  node.classList.toggle("sv-error", Boolean(isError));
  setText(node, text);
}

// A supervisor action: its result goes to the notice line; the figures show its effect.
export function post(url, body, success) {
  fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrfToken },
    body: JSON.stringify(body),
  })
    .then((response) =>
      response
        .json()
        .catch(() => ({}))
        .then((data) => {
          if (response.ok) notice(success, false);
          else notice(data.detail || "That did not work (" + response.status + ").", true);
        })
    )
    .catch(() => notice("The server could not be reached.", true));
}
