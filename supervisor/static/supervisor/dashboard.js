// Supervisor dashboard: draws the figures the server sends on /ws/supervisor/, ticks waits
// locally from their start timestamps, and posts the supervisor's actions. Plain ES modules,
// one panel each; all text goes in as text, and the page runs no inline script (a strict CSP).
import { $, readJson } from "../rapport/dom.js";
import { liveSocket } from "../rapport/socket.js";
import { drawAbandoned } from "./abandoned.js";
import { drawAgents, drawNotReady } from "./agents.js";
import { drawChart } from "./chart.js";
import { setServerTime, tick } from "./clock.js";
import { root } from "./page.js";
import { drawQueues, drawTotals } from "./queues.js";
import { drawReasons, drawReunionTable, refreshReunionTable } from "./reunion.js";

let lastFigures = null;

function draw(figures) {
  lastFigures = figures;
  setServerTime(figures.generated_at);
  const notReadyToday = figures.totals.not_ready_today || [];
  drawTotals(figures.totals);
  drawQueues(figures.queues);
  drawReasons(figures.totals.reunion);
  drawChart(figures.series);
  drawAgents(figures.agents, notReadyToday);
  drawNotReady(notReadyToday);
  drawAbandoned(figures.abandoned || []);
  root.setAttribute("data-frames", String(Number(root.getAttribute("data-frames") || 0) + 1));
  tick();
}

const initial = readJson("supervisor-figures");
if (initial) draw(initial);
drawReunionTable(readJson("supervisor-reunion"));
setInterval(tick, 1000);
setInterval(refreshReunionTable, 60000);
liveSocket(root.dataset.socketPath, {
  link: $("[data-link-state]"),
  onMessage: (message) => {
    if (message.type === "snapshot" || message.type === "figures") draw(message);
  },
}).connect();
window.rapportSupervisor = { figures: () => lastFigures };
