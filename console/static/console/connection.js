// The agent's socket (/ws/agent/, docs/sockets.md), on the reconnect policy every page shares.
import { $ } from "../rapport/dom.js";
import { liveSocket } from "../rapport/socket.js";
import { notice } from "./notice.js";
import { config } from "./state.js";

let socket = null;

export function connect(onMessage) {
  socket = liveSocket(config.socket_path, { onMessage, link: $("[data-link-state]") });
  socket.connect();
}

// False, with a notice, when the socket is not open: the agent tries again in a moment.
export function send(message) {
  if (socket && socket.send(message)) return true;
  notice("Not connected — reconnecting, try again in a moment.");
  return false;
}
