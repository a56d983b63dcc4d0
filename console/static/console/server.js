// JSON requests to the REST API, as the logged-in agent (session cookie and CSRF token).
import { config } from "./state.js";

export function api(method, url, body) {
  return fetch(url, {
    method: method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-CSRFToken": config.csrf_token,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((response) =>
    response.text().then((raw) => {
      let data = null;
      try {
        data = raw ? JSON.parse(raw) : null;
      } catch (error) {
        data = null;
      }
      if (!response.ok) throw new Error(describeError(data, response.status));
      return data;
    })
  );
}

function describeError(data, status) {
  if (data && data.errors) {
    return Object.keys(data.errors)
      .map((field) => field + ": " + [].concat(data.errors[field]).join(" "))
      .join("; ");
  }
  if (data && data.detail) return String(data.detail);
  return "The server answered " + status + ".";
}
