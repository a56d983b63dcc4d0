// The live socket of a page (/ws/agent/, /ws/supervisor/), with one reconnect policy for all:
//
// - The link reads "Connecting…" at first, "Live" once the server's first message has arrived
//   (the console's `state`, the dashboard's `snapshot`: a handshake alone proves little), and
//   "Reconnecting…" from a drop until the next first message.
// - After a drop it tries again with exponential back-off and jitter (0.5 s doubling up to 10 s,
//   each ±25 %), so a restarted server is not hit by every screen at once. Only a first message
//   resets the back-off: a server that accepts and drops at once is not hammered.
// - Close code 4403 means the login session ended (logged out, deactivated, expired) or was
//   never allowed here: it stops trying and says so, as trying again cannot help.

const SESSION_ENDED = 4403;

const LINK_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  refused: "Signed out — reload the page",
};

// `onMessage` gets each message, parsed; `link` is the element that shows the link's state
// (its `data-link-state` attribute and its text).
export function liveSocket(path, { onMessage, link }) {
  let socket = null;
  let attempt = 0;

  function showLink(state) {
    if (!link) return;
    link.setAttribute("data-link-state", state);
    link.textContent = LINK_TEXT[state];
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const current = new WebSocket(scheme + location.host + path);
    let greeted = false;
    socket = current;
    showLink(attempt ? "reconnecting" : "connecting");
    current.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (!greeted) {
        greeted = true;
        attempt = 0;
        showLink("live");
      }
      onMessage(message);
    });
    current.addEventListener("close", (event) => {
      if (socket === current) socket = null;
      if (event.code === SESSION_ENDED) {
        showLink("refused");
        return;
      }
      const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      showLink("reconnecting");
      setTimeout(connect, delay);
    });
  }

  // False when the socket is not open (the caller says so on its page); the message is dropped.
  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  return { connect, send };
}
