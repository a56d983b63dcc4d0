// Today per 15 minutes, as inline SVG: callers waiting (bars) and the service level (a line).
import { $ } from "../rapport/dom.js";
import { percent } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  Object.keys(attrs).forEach((key) => node.setAttribute(key, attrs[key]));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function drawChart(series) {
  const chart = $("[data-chart]");
  const W = 720;
  const H = 220;
  const left = 34;
  const right = 40;
  const top = 10;
  const bottom = 26;
  const points = series.points.slice(-48); // the last twelve hours at most, so bars stay legible
  chart.replaceChildren();
  if (!points.length) return;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const maxWaiting = Math.max(4, Math.max(...points.map((p) => p.waiting)));
  const step = plotW / points.length;
  const y = (v) => top + plotH - (v / maxWaiting) * plotH;
  const ySl = (r) => top + plotH - r * plotH;

  [0, 0.5, 1].forEach((r) => {
    chart.appendChild(svg("line", { x1: left, x2: W - right, y1: ySl(r), y2: ySl(r), class: "sv-grid" }));
    chart.appendChild(svg("text", { x: W - right + 4, y: ySl(r) + 4, class: "sv-axis" }, Math.round(r * 100) + "%"));
  });
  chart.appendChild(svg("text", { x: left - 6, y: y(maxWaiting) + 4, class: "sv-axis sv-axis-left" }, maxWaiting));
  chart.appendChild(svg("text", { x: left - 6, y: y(0) + 4, class: "sv-axis sv-axis-left" }, "0"));

  let path = "";
  points.forEach((p, i) => {
    const x = left + i * step;
    if (p.waiting) {
      const bar = svg("rect", {
        x: x + 1,
        y: y(p.waiting),
        width: Math.max(1, step - 2),
        height: y(0) - y(p.waiting),
        class: "sv-bar",
      });
      bar.appendChild(svg("title", {}, p.at.slice(11, 16) + " — " + p.waiting + " waiting"));
      chart.appendChild(bar);
    }
    if (p.service_level !== null) {
      const cx = x + step / 2;
      const cy = ySl(p.service_level);
      path += (path ? " L" : "M") + cx.toFixed(1) + " " + cy.toFixed(1);
      const dot = svg("circle", { cx: cx, cy: cy, r: 3, class: "sv-dot" });
      dot.appendChild(svg("title", {}, p.at.slice(11, 16) + " — service level " + percent(p.service_level)));
      chart.appendChild(dot);
    }
    const at = new Date(Date.parse(p.at));
    if (at.getMinutes() === 0 && at.getHours() % 2 === 0) {
      chart.appendChild(
        svg("text", { x: x, y: H - 8, class: "sv-axis" }, at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }))
      );
    }
  });
  if (path) chart.appendChild(svg("path", { d: path, class: "sv-line" }));
}
