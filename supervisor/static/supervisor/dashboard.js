// Supervisor dashboard: draws the figures the server sends on /ws/supervisor/, ticks waits
// locally from their start timestamps, and posts the two supervisor actions.
// All text goes in with textContent; no inline script (the page runs under a strict CSP).
(function () {
  "use strict";

  var root = document.getElementById("supervisor");
  if (!root) return;

  var STATUS_GLYPH = { available: "●", busy: "■", wrap_up: "◐", break: "‖", offline: "○" };
  var STATUS_LABEL = {
    available: "Available", busy: "On a call", wrap_up: "Wrap-up", break: "Not ready", offline: "Offline"
  };
  var STATUS_ORDER = ["available", "busy", "wrap_up", "break", "offline"];
  var REASON_LABEL = {
    busy_past_wait: "Agent still busy after the wait",
    not_held: "Agent busy; caller not held (avoids holding, in a rush)",
    offline_or_break: "Agent offline or not ready",
    declined: "Agent declined",
    timed_out: "Offer not answered in time",
    caller_hung_up: "Caller hung up first",
    other: "Other (e.g. moved)"
  };
  var SETTABLE = ["available", "break", "offline"];
  // The reasons a person may give for not ready (settings.NOT_READY_REASONS, less the system's).
  var NOT_READY_CHOICES = readJson("not-ready-reasons") || [];

  var clockOffsetMs = 0;   // server time minus this browser's time
  var queueSlugs = [];
  var queueCards = new Map();
  var agentRows = new Map();
  var lastFigures = null;

  function $(selector, scope) { return (scope || root).querySelector(selector); }

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  // A total of seconds in words: "45 s", "20 min", "1 h 10 min".
  function spoken(seconds) {
    if (seconds < 60) return seconds + " s";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + " min";
    return Math.floor(minutes / 60) + " h" + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function setText(node, text) {
    text = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  function percent(ratio) { return ratio === null || ratio === undefined ? "–" : Math.round(ratio * 100) + "%"; }

  function duration(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function serverNow() { return Date.now() + clockOffsetMs; }

  // ---- ticking: every element with data-since shows the time elapsed since that moment
  function tick() {
    var now = serverNow();
    root.querySelectorAll("[data-since]").forEach(function (node) {
      var since = node.getAttribute("data-since");
      setText(node, since ? duration(now - Date.parse(since)) : "–");
    });
    var clock = document.querySelector("[data-clock]");
    if (clock) setText(clock, new Date(now).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  }

  function setSince(node, iso) {
    if (iso) node.setAttribute("data-since", iso);
    else { node.setAttribute("data-since", ""); }
  }

  // ---- totals
  function drawTotals(totals) {
    setText($("[data-total=waiting]"), totals.waiting);
    setText($("[data-total=offered]"), totals.offered ? totals.offered + " ringing at an agent" : "none ringing");
    setSince($("[data-total=longest]"), totals.longest_waiting_since);
    $("[data-tile=waiting]").classList.toggle("sv-attention", totals.waiting > 0);
    var reunion = totals.reunion;
    setText($("[data-total=reunion-rate]"), percent(reunion.rate));
    setText($("[data-total=reunion-count]"), reunion.reunited + " of " + reunion.callers_with_last_agent + " returning callers");
    var today = totals.today;
    setText($("[data-total=service-level]"), percent(today.service_level));
    setText($("[data-total=service-level-detail]"), today.answered_within_target + " answered within target");
    setText($("[data-total=answered]"), today.answered);
    setText($("[data-total=abandoned]"), today.abandoned);
    setText($("[data-total=asa]"), today.average_speed_of_answer_seconds === null
      ? "no answers yet" : "average answer " + today.average_speed_of_answer_seconds + " s");
  }

  // ---- queue cards
  function queueCard(queue) {
    var card = el("article", "sv-queue");
    card.setAttribute("data-queue", queue.slug);
    var head = el("header", "sv-queue-head");
    head.appendChild(el("h2", "sv-queue-name", queue.name));
    head.appendChild(el("span", "sv-sub sv-queue-target"));
    card.appendChild(head);

    var now = el("div", "sv-queue-now");
    var waiting = el("div", "sv-stat sv-stat-waiting");
    waiting.appendChild(el("span", "sv-mid", "0")).setAttribute("data-field", "waiting");
    waiting.appendChild(el("span", "sv-label", "waiting"));
    var longest = el("div", "sv-stat");
    longest.appendChild(el("span", "sv-mid")).setAttribute("data-field", "longest");
    longest.appendChild(el("span", "sv-label", "longest wait"));
    var offered = el("div", "sv-stat");
    offered.appendChild(el("span", "sv-mid", "0")).setAttribute("data-field", "offered");
    offered.appendChild(el("span", "sv-label", "ringing"));
    now.appendChild(waiting); now.appendChild(longest); now.appendChild(offered);
    card.appendChild(now);

    var agents = el("ul", "sv-agent-counts");
    agents.setAttribute("aria-label", "Agents in this queue");
    STATUS_ORDER.forEach(function (status) {
      var item = el("li", "sv-count sv-status-" + status);
      item.appendChild(el("span", "sv-glyph", STATUS_GLYPH[status])).setAttribute("aria-hidden", "true");
      item.appendChild(el("span", "sv-count-n", "0")).setAttribute("data-count", status);
      item.appendChild(el("span", "sv-count-label", STATUS_LABEL[status]));
      agents.appendChild(item);
    });
    card.appendChild(agents);

    var day = el("dl", "sv-day");
    [["answered", "Answered"], ["abandoned", "Abandoned"], ["service_level", "Service level"],
     ["asa", "Avg answer"], ["reunion", "Own agent"]].forEach(function (pair) {
      var cell = el("div");
      cell.appendChild(el("dt", null, pair[1]));
      cell.appendChild(el("dd", null, "–")).setAttribute("data-day", pair[0]);
      day.appendChild(cell);
    });
    card.appendChild(day);

    var list = el("ol", "sv-waiting-list");
    list.setAttribute("aria-label", "Callers waiting in " + queue.name);
    card.appendChild(list);
    return { card: card, list: list, rows: new Map() };
  }

  function waitingRow(call) {
    var item = el("li", "sv-waiting");
    item.setAttribute("data-call", call.call_id);
    var wait = el("span", "sv-wait");
    setSince(wait, call.waiting_since);
    item.appendChild(wait);
    item.appendChild(el("span", "sv-waiting-note"));
    var form = el("form", "sv-move");
    var select = el("select");
    select.setAttribute("aria-label", "Move caller to queue");
    form.appendChild(select);
    form.appendChild(el("button", "sv-small", "Move"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!select.value) return;
      post(root.dataset.moveUrl.replace("{id}", encodeURIComponent(call.call_id)),
        { queue: select.value, reason: "moved from the dashboard" },
        "Caller moved to " + select.options[select.selectedIndex].textContent + ".");
    });
    item.appendChild(form);
    return item;
  }

  function fillMoveOptions(select, currentSlug) {
    var wanted = queueSlugs.filter(function (q) { return q.slug !== currentSlug; });
    var key = wanted.map(function (q) { return q.slug; }).join(",");
    if (select.getAttribute("data-options") === key) return;
    select.setAttribute("data-options", key);
    select.replaceChildren(el("option", null, "Move to…"));
    select.firstChild.value = "";
    wanted.forEach(function (q) {
      var option = el("option", null, q.name);
      option.value = q.slug;
      select.appendChild(option);
    });
  }

  function drawQueue(entry, queue) {
    var card = entry.card;
    setText($(".sv-queue-target", card), "target " + queue.service_level_seconds + " s");
    setText($("[data-field=waiting]", card), queue.waiting);
    setText($("[data-field=offered]", card), queue.offered);
    setSince($("[data-field=longest]", card), queue.longest_waiting_since);
    card.classList.toggle("sv-attention", queue.waiting > 0);
    STATUS_ORDER.forEach(function (status) {
      setText($("[data-count=" + status + "]", card), queue.agents[status] || 0);
    });
    var today = queue.today;
    setText($("[data-day=answered]", card), today.answered);
    setText($("[data-day=abandoned]", card), today.abandoned);
    setText($("[data-day=service_level]", card), percent(today.service_level));
    setText($("[data-day=asa]", card),
      today.average_speed_of_answer_seconds === null ? "–" : today.average_speed_of_answer_seconds + " s");
    setText($("[data-day=reunion]", card), percent(queue.reunion.rate));

    var seen = new Set();
    queue.waiting_calls.forEach(function (call, index) {
      seen.add(call.call_id);
      var row = entry.rows.get(call.call_id);
      if (!row) { row = waitingRow(call); entry.rows.set(call.call_id, row); }
      if (entry.list.children[index] !== row) entry.list.insertBefore(row, entry.list.children[index] || null);
      setSince($(".sv-wait", row), call.waiting_since);
      var note = call.state === "offered" ? "ringing at an agent"
        : call.held_for_last_agent ? "held for " + call.held_for_last_agent : "waiting";
      setText($(".sv-waiting-note", row), note);
      row.classList.toggle("sv-ringing", call.state === "offered");
      fillMoveOptions($("select", row), queue.slug);
    });
    entry.rows.forEach(function (row, callId) {
      if (!seen.has(callId)) { row.remove(); entry.rows.delete(callId); }
    });
  }

  function drawQueues(queues) {
    var container = $("[data-queues]");
    queueSlugs = queues.map(function (q) { return { slug: q.slug, name: q.name }; });
    var seen = new Set();
    queues.forEach(function (queue, index) {
      seen.add(queue.slug);
      var entry = queueCards.get(queue.slug);
      if (!entry) { entry = queueCard(queue); queueCards.set(queue.slug, entry); }
      if (container.children[index] !== entry.card) container.insertBefore(entry.card, container.children[index] || null);
      drawQueue(entry, queue);
    });
    queueCards.forEach(function (entry, slug) {
      if (!seen.has(slug)) { entry.card.remove(); queueCards.delete(slug); }
    });
  }

  // ---- reunion reasons
  function drawReasons(reunion) {
    var list = $("[data-reasons]");
    var missed = Object.keys(REASON_LABEL).reduce(function (sum, key) { return sum + reunion.not_reunited[key]; }, 0);
    list.replaceChildren();
    Object.keys(REASON_LABEL).forEach(function (key) {
      var count = reunion.not_reunited[key];
      var item = el("li", "sv-reason");
      item.setAttribute("data-reason", key);
      item.appendChild(el("span", "sv-reason-label", REASON_LABEL[key]));
      var bar = el("span", "sv-reason-bar");
      var fill = el("span", "sv-reason-fill");
      fill.style.width = (missed ? Math.round((count / missed) * 100) : 0) + "%";
      bar.appendChild(fill);
      item.appendChild(bar);
      item.appendChild(el("span", "sv-reason-n", count));
      list.appendChild(item);
    });
    setText($("[data-reunion-waiting]"), reunion.callers_with_last_agent
      ? reunion.reunited + " of " + reunion.callers_with_last_agent + " returning callers reached their own agent"
        + (reunion.still_waiting ? "; " + reunion.still_waiting + " still waiting" : "") + "."
      : "No returning callers yet today.");
  }

  // ---- chart (inline SVG)
  var SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawChart(series) {
    var chart = $("[data-chart]");
    var W = 720, H = 220, left = 34, right = 40, top = 10, bottom = 26;
    var points = series.points.slice(-48);  // the last twelve hours at most, so bars stay legible
    chart.replaceChildren();
    if (!points.length) return;
    var plotW = W - left - right, plotH = H - top - bottom;
    var maxWaiting = Math.max(4, Math.max.apply(null, points.map(function (p) { return p.waiting; })));
    var step = plotW / points.length;
    var y = function (v) { return top + plotH - (v / maxWaiting) * plotH; };
    var ySl = function (r) { return top + plotH - r * plotH; };

    [0, 0.5, 1].forEach(function (r) {
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: ySl(r), y2: ySl(r), class: "sv-grid" }));
      chart.appendChild(svg("text", { x: W - right + 4, y: ySl(r) + 4, class: "sv-axis" }, Math.round(r * 100) + "%"));
    });
    chart.appendChild(svg("text", { x: left - 6, y: y(maxWaiting) + 4, class: "sv-axis sv-axis-left" }, maxWaiting));
    chart.appendChild(svg("text", { x: left - 6, y: y(0) + 4, class: "sv-axis sv-axis-left" }, "0"));

    var path = "";
    points.forEach(function (p, i) {
      var x = left + i * step;
      if (p.waiting) {
        var bar = svg("rect", { x: x + 1, y: y(p.waiting), width: Math.max(1, step - 2), height: y(0) - y(p.waiting), class: "sv-bar" });
        bar.appendChild(svg("title", {}, p.at.slice(11, 16) + " — " + p.waiting + " waiting"));
        chart.appendChild(bar);
      }
      if (p.service_level !== null) {
        var cx = x + step / 2, cy = ySl(p.service_level);
        path += (path ? " L" : "M") + cx.toFixed(1) + " " + cy.toFixed(1);
        var dot = svg("circle", { cx: cx, cy: cy, r: 3, class: "sv-dot" });
        dot.appendChild(svg("title", {}, p.at.slice(11, 16) + " — service level " + percent(p.service_level)));
        chart.appendChild(dot);
      }
      var at = new Date(Date.parse(p.at));
      if (at.getMinutes() === 0 && at.getHours() % 2 === 0) {
        chart.appendChild(svg("text", { x: x, y: H - 8, class: "sv-axis" },
          at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
      }
    });
    if (path) chart.appendChild(svg("path", { d: path, class: "sv-line" }));
  }

  // ---- agents
  function agentRow(agent) {
    var tr = el("tr");
    tr.setAttribute("data-agent", agent.id);
    tr.appendChild(el("th", "sv-agent-name", agent.display_name)).setAttribute("scope", "row");
    var status = el("td", "sv-status");
    status.appendChild(el("span", "sv-glyph")).setAttribute("aria-hidden", "true");
    status.appendChild(el("span", "sv-status-label"));
    tr.appendChild(status);
    tr.appendChild(el("td", "sv-for"));
    tr.appendChild(el("td", "sv-not-ready-today sv-sub"));
    tr.appendChild(el("td", "sv-caller"));
    tr.appendChild(el("td", "sv-calls-today sv-num"));
    tr.appendChild(el("td", "sv-agent-queues sv-sub"));
    var actions = el("td", "sv-agent-action");
    var form = el("form", "sv-set-status");
    var select = el("select");
    select.setAttribute("aria-label", "Set " + agent.display_name + "'s status");
    // "break" comes once per not-ready reason: the option's value is "break:<reason>".
    SETTABLE.forEach(function (value) {
      var choices = value === "break" && NOT_READY_CHOICES.length
        ? NOT_READY_CHOICES.map(function (reason) { return [value + ":" + reason.code, STATUS_LABEL[value] + " — " + reason.label]; })
        : [[value, STATUS_LABEL[value]]];
      choices.forEach(function (choice) {
        var option = el("option", null, choice[1]);
        option.value = choice[0];
        select.appendChild(option);
      });
    });
    select.value = "offline";
    form.appendChild(select);
    form.appendChild(el("button", "sv-small", "Set"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var parts = select.value.split(":");
      var body = { status: parts[0], reason: "set from the dashboard" };
      if (parts[1]) body.not_ready_reason = parts[1];
      post(root.dataset.statusUrl.replace("{id}", agent.id), body,
        agent.display_name + " set to " + select.options[select.selectedIndex].textContent + ".");
    });
    actions.appendChild(form);
    tr.appendChild(actions);
    return tr;
  }

  function drawAgents(agents) {
    var body = $("[data-agents]");
    var seen = new Set();
    var counts = {};
    agents.forEach(function (agent, index) {
      seen.add(agent.id);
      counts[agent.status] = (counts[agent.status] || 0) + 1;
      var tr = agentRows.get(agent.id);
      if (!tr) { tr = agentRow(agent); agentRows.set(agent.id, tr); }
      if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
      tr.className = "sv-status-" + agent.status + (agent.ringing ? " sv-ringing" : "");
      setText($(".sv-glyph", tr), STATUS_GLYPH[agent.status] || "?");
      setText($(".sv-status-label", tr), agent.status_label + (agent.ringing ? " · ringing" : ""));
      setSince($(".sv-for", tr), agent.status_changed_at);
      setText($(".sv-not-ready-today", tr), notReadyInWords(agent.not_ready_today_seconds));
      setText($(".sv-caller", tr), agent.call ? agent.call.caller : "");
      setText($(".sv-calls-today", tr), agent.calls_today);
      setText($(".sv-agent-queues", tr), agent.queues.join(", "));
    });
    agentRows.forEach(function (tr, id) {
      if (!seen.has(id)) { tr.remove(); agentRows.delete(id); }
    });
    setText($("[data-agent-summary]"), STATUS_ORDER.map(function (s) {
      return (counts[s] || 0) + " " + STATUS_LABEL[s].toLowerCase();
    }).join(" · "));
  }

  function notReadyInWords(byReason) {
    return Object.keys(byReason || {}).map(function (reason) {
      return reasonLabel(reason) + " " + spoken(byReason[reason]);
    }).join(" · ");
  }

  function reasonLabel(code) {
    var known = NOT_READY_CHOICES.filter(function (reason) { return reason.code === code; })[0];
    if (known) return known.label;
    var words = code.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // ---- not ready today, per reason
  function drawNotReady(totals) {
    var list = $("[data-not-ready]");
    if (!list) return;
    list.replaceChildren();
    totals.forEach(function (row) {
      var item = el("li", "sv-not-ready-reason");
      item.setAttribute("data-not-ready-reason", row.reason);
      item.appendChild(el("span", "sv-reason-label", row.label));
      item.appendChild(el("span", "sv-reason-n", spoken(row.seconds)));
      item.appendChild(el("span", "sv-sub", row.agents_now ? row.agents_now + " now" : ""));
      list.appendChild(item);
    });
  }

  // ---- today's abandoned callers, to call back
  function clockTime(iso) {
    return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  }

  function drawAbandoned(abandoned) {
    var body = $("[data-abandoned]");
    if (!body) return;
    body.replaceChildren();
    setText($("[data-abandoned-summary]"), abandoned.length
      ? abandoned.filter(function (row) { return !row.called_back; }).length + " of " + abandoned.length + " not called back yet"
      : "None today.");
    abandoned.forEach(function (row) {
      var tr = el("tr");
      tr.setAttribute("data-abandoned-call", row.call_id);
      tr.appendChild(el("th", "sv-abandoned-caller", row.caller)).setAttribute("scope", "row");
      tr.appendChild(el("td", "sv-abandoned-number", row.number || ""));
      tr.appendChild(el("td", "sv-num", clockTime(row.hung_up_at)));
      tr.appendChild(el("td", "sv-num", spoken(row.waited_seconds)));
      tr.appendChild(el("td", null, row.last_agent ? row.last_agent.display_name : "–"));
      var action = el("td", "sv-called-back");
      if (row.called_back) {
        action.textContent = "Called back by " + row.called_back.by + " at " + clockTime(row.called_back.at);
      } else {
        var button = el("button", "sv-small", "Mark called back");
        button.type = "button";
        button.addEventListener("click", function () {
          button.disabled = true;
          post(root.dataset.calledBackUrl.replace("{id}", encodeURIComponent(row.call_id)), {},
            row.caller + " marked called back.");
        });
        action.appendChild(button);
      }
      tr.appendChild(action);
      body.appendChild(tr);
    });
  }

  // ---- the last week's reunion table (its own endpoint: it changes slowly)
  function reunionCells(tr, row) {
    [
      row.returning,
      percent(row.reunion_rate),
      row.waited_for + " (" + percent(row.waited_for_share) + ")",
      row.waited_for_reunited + " (" + percent(row.waited_for_reached_rate) + ")",
      row.sent_to_queue + " (" + percent(row.sent_to_queue_share) + ")",
      row.agent_unavailable + " (" + percent(row.agent_unavailable_share) + ")"
    ].forEach(function (text) { tr.appendChild(el("td", "sv-num", text)); });
  }

  function drawReunionTable(table) {
    if (!table) return;
    var queues = $("[data-reunion-queues]");
    var agents = $("[data-reunion-agents]");
    queues.replaceChildren();
    agents.replaceChildren();
    table.queues.forEach(function (row) {
      var tr = el("tr");
      tr.setAttribute("data-reunion-queue", row.slug || "");
      var head = el("th", null, row.name);
      head.setAttribute("scope", "row");
      head.appendChild(el("span", "sv-sub sv-window",
        " waits " + row.last_agent_wait_seconds + " s · " + row.hold_averse_wait_seconds + " s if averse to holding"));
      tr.appendChild(head);
      reunionCells(tr, row);
      queues.appendChild(tr);
    });
    table.agents.forEach(function (row) {
      var tr = el("tr");
      tr.setAttribute("data-reunion-agent", row.id);
      tr.appendChild(el("th", null, row.display_name)).setAttribute("scope", "row");
      reunionCells(tr, row);
      agents.appendChild(tr);
    });
    setText($("[data-reunion-empty]"), table.queues.length ? "" : "No returning callers in the last " + table.days + " days.");
  }

  function refreshReunionTable() {
    fetch(root.dataset.reunionUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(drawReunionTable)
      .catch(function () { /* the next refresh tries again */ });
  }

  function draw(figures) {
    lastFigures = figures;
    clockOffsetMs = Date.parse(figures.generated_at) - Date.now();
    drawTotals(figures.totals);
    drawQueues(figures.queues);
    drawReasons(figures.totals.reunion);
    drawChart(figures.series);
    drawAgents(figures.agents);
    drawNotReady(figures.totals.not_ready_today || []);
    drawAbandoned(figures.abandoned || []);
    root.setAttribute("data-frames", String(Number(root.getAttribute("data-frames") || 0) + 1));
    tick();
  }

  // ---- actions
  function notice(text, isError) {
    var node = $("[data-notice]");
    node.hidden = false;
    node.classList.toggle("sv-error", Boolean(isError));
    setText(node, text);
  }

  function post(url, body, success) {
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrfToken },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) notice(success, false);
        else notice(data.detail || "That did not work (" + response.status + ").", true);
      });
    }).catch(function () { notice("The server could not be reached.", true); });
  }

  // ---- socket, with reconnect
  var link = document.querySelector("[data-link-state]");
  var retryMs = 1000;
  function setLink(state, text) {
    if (!link) return;
    link.setAttribute("data-link-state", state);
    setText(link, text);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + root.dataset.socketPath);
    socket.addEventListener("open", function () { retryMs = 1000; setLink("live", "Live"); });
    socket.addEventListener("message", function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "snapshot" || message.type === "figures") draw(message);
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4403) { setLink("refused", "Not allowed"); return; }
      setLink("reconnecting", "Reconnecting…");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    });
  }

  var initial = document.getElementById("supervisor-figures");
  if (initial) draw(JSON.parse(initial.textContent));
  drawReunionTable(readJson("supervisor-reunion"));
  setInterval(tick, 1000);
  setInterval(refreshReunionTable, 60000);
  connect();
  window.rapportSupervisor = { figures: function () { return lastFigures; } };
})();
