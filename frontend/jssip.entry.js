// What the console's softphone (console/static/console/softphone.js) takes from JsSIP: the user
// agent and its WebSocket transport, as one ES module the page imports without a bundler.
export { UA, WebSocketInterface, debug } from "jssip";
