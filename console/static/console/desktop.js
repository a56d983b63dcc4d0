// Desktop notifications, for an agent working in another tab. The browser asks the agent's
// permission only when they press the button (never on page load: a prompt out of nowhere is
// what people learn to block). A line in the top bar says what the console can do.
import { $ } from "../rapport/dom.js";

const open = new Map(); // tag -> the notification on the desktop now

function supported() {
  return "Notification" in window;
}

// Shown only while the console is not in front: in front, the card and the ring say it all.
export function notify(tag, title, body) {
  if (!supported() || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible" || open.has(tag)) return;
  let notification;
  try {
    notification = new Notification(title, { body: body || "", tag: tag });
  } catch (error) {
    return; // a browser that shows notifications only from a service worker
  }
  // A click brings the console to the front; the notification goes when the offer ends.
  notification.onclick = () => window.focus();
  notification.onclose = () => {
    if (open.get(tag) === notification) open.delete(tag);
  };
  open.set(tag, notification);
}

export function closeNotification(tag) {
  const notification = open.get(tag);
  if (!notification) return;
  open.delete(tag);
  notification.close();
}

export function openTags() {
  return Array.from(open.keys());
}

function renderPermission() {
  const button = $("[data-notify-ask]");
  const line = $("[data-notify-state]");
  const permission = supported() ? Notification.permission : "unsupported";
  button.hidden = permission !== "default";
  line.setAttribute("data-permission", permission);
  if (permission === "denied") {
    line.textContent =
      "Desktop notifications are blocked for this site, so a call cannot reach you in another tab: " +
      "allow them in the browser's site settings.";
  } else if (permission === "unsupported") {
    line.textContent = "This browser cannot show desktop notifications: keep the console in view.";
  } else {
    line.textContent = "";
  }
  line.hidden = !line.textContent;
}

export function wireNotifications() {
  $("[data-notify-ask]").addEventListener("click", () => {
    if (!supported()) return;
    Promise.resolve(Notification.requestPermission()).then(renderPermission, renderPermission);
  });
  renderPermission();
}
