// The agent console: one WebSocket (docs/sockets.md), a few JSON requests, no framework.
// Every piece of data reaches the page through textContent; nothing is parsed as HTML.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("console-config").textContent);
  var me = config.agent;

  var model = {
    agent: {
      id: me.id,
      display_name: me.display_name,
      status: me.status,
      not_ready_reason: me.not_ready_reason,
      status_label: me.status_label,
    },
    offer: null,
    call: null,
    waiting: [], // callers held for this agent while they are busy: {call_id, caller_name, waiting_since, wait_until}
    ringing: null, // a call ringing on the agent's phone, routed by the phone system itself
    olderNotes: {}, // customer id -> {notes: [...], loading: bool}
    noteDirty: false,
    pending: null, // "accept" | "decline" while waiting for the server's answer
  };

  var STATUS_LABELS = {
    available: "Available",
    busy: "On a call",
    wrap_up: "Wrap-up",
    break: "Not ready",
    offline: "Offline",
  };
  var REASONS = {
    last_agent: "You were their last agent",
    last_agent_busy_waited: "They waited for you, their last agent",
    waiting_last_agent_freed: "They waited for you, their last agent",
    last_agent_unavailable: "Their last agent is away",
    last_agent_declined: "Their last agent could not take it",
    last_agent_wait_expired: "Their last agent is still busy",
    offer_timed_out: "Passed on: not answered in time",
    offer_declined: "Passed on by a colleague",
    longest_idle: "Next in the queue",
    waiting_fifo: "Longest-waiting caller",
    moved_by_supervisor: "Moved here by a supervisor",
  };
  var OUTCOMES = {
    declined: "You declined the call; it went back to the queue.",
    timed_out: "The call was not answered in time and went back to the queue.",
    withdrawn: "The call stopped ringing (the caller hung up or a colleague took it).",
  };

  // ---- small helpers -------------------------------------------------------------------------

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function $$(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  // Builds an element; strings become text nodes, never markup.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      appendChild(node, arguments[i]);
    }
    return node;
  }

  function appendChild(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) {
        appendChild(node, c);
      });
      return;
    }
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }

  function parseDate(iso) {
    if (!iso) return null;
    var date = new Date(iso);
    return isNaN(date.getTime()) ? null : date;
  }

  function formatDay(iso) {
    var date = parseDate(iso);
    if (!date) return "";
    var options = { day: "numeric", month: "short" };
    if (date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
    return date.toLocaleDateString("en-GB", options);
  }

  function firstName(name) {
    return (name || "").trim().split(/\s+/)[0] || "an agent";
  }

  function provenance(pref) {
    if (!pref || !pref.source || pref.source === "unknown") return "not recorded yet";
    var when = formatDay(pref.set_at);
    var who = pref.source === "caller" ? "said by the caller" : "inferred by " + firstName(pref.set_by);
    return when ? who + ", " + when : who;
  }

  function api(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": config.csrf_token,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.text().then(function (raw) {
        var data = null;
        try {
          data = raw ? JSON.parse(raw) : null;
        } catch (error) {
          data = null;
        }
        if (!response.ok) throw new Error(describeError(data, response.status));
        return data;
      });
    });
  }

  function describeError(data, status) {
    if (data && data.errors) {
      var parts = Object.keys(data.errors).map(function (field) {
        return field + ": " + [].concat(data.errors[field]).join(" ");
      });
      return parts.join("; ");
    }
    if (data && data.detail) return String(data.detail);
    return "The server answered " + status + ".";
  }

  function notice(text) {
    var box = $("[data-notice]");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function announce(offer, action) {
    var caller = offer.caller || {};
    var who = caller.customer ? caller.customer.name : caller.kind === "shared" ? "shared number" : "new caller";
    $("[data-announce]").textContent = "Incoming call: " + who + ". " + (action || "Press A to accept.");
  }

  // ---- the socket ----------------------------------------------------------------------------

  var missedCallNoticeShown = false;
  var socket = null;
  var attempt = 0;

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + config.socket_path);
    setLinkState("connecting");
    socket.addEventListener("message", function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(message);
    });
    socket.addEventListener("close", function (event) {
      socket = null;
      if (event.code === 4403) {
        setLinkState("refused");
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    // Exponential backoff with jitter, so a restarted server is not hit by every screen at once.
    var delay = Math.min(10000, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() * 0.5);
    attempt += 1;
    setLinkState("reconnecting");
    setTimeout(connect, delay);
  }

  function setLinkState(state) {
    var node = $("[data-link-state]");
    node.setAttribute("data-link-state", state);
    node.textContent = {
      connecting: "Connecting…",
      live: "Live",
      reconnecting: "Reconnecting…",
      refused: "Signed out — reload the page",
    }[state];
  }

  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      notice("Not connected — reconnecting, try again in a moment.");
      return false;
    }
    socket.send(JSON.stringify(message));
    return true;
  }

  // ---- messages from the server --------------------------------------------------------------

  function handle(message) {
    switch (message.type) {
      case "state":
        attempt = 0;
        setLinkState("live");
        model.agent = message.agent;
        model.offer = message.offer || null;
        if (message.call) model.call = message.call;
        else if (!model.noteDirty) model.call = null;
        model.waiting = message.waiting_callers || [];
        model.pending = null;
        break;
      case "offer":
        dropWaiting(message.call_id);
        model.offer = message;
        model.pending = null;
        notice("");
        announce(message);
        break;
      case "offer_ended":
        if (model.offer && model.offer.offer_id === message.offer_id) {
          if (message.outcome === "accepted") takeCall(model.offer);
          model.offer = null;
          model.pending = null;
          if (!missedCallNoticeShown) notice(OUTCOMES[message.outcome] || "");
        }
        break;
      case "call":
        onCall(message);
        break;
      case "caller_waiting":
        dropWaiting(message.call_id);
        model.waiting.push(message);
        break;
      case "caller_waiting_ended":
        dropWaiting(message.call_id);
        break;
      case "ringing":
        model.ringing = message;
        announce(message, "Answer your phone.");
        break;
      case "ringing_ended":
        if (model.ringing && model.ringing.call_id === message.call_id) model.ringing = null;
        break;
      case "status":
        model.agent.status = message.status;
        model.agent.status_changed_at = message.status_changed_at;
        model.agent.not_ready_reason = message.not_ready_reason || "";
        model.agent.status_label = message.status_label;
        // With no call left to the agent, the call panel goes, unless a note is still unsaved.
        if (isIdleStatus(message.status) && model.call && !model.noteDirty) model.call = null;
        missedCallNoticeShown = message.reason === "offer_timed_out";
        if (missedCallNoticeShown) {
          notice("You missed a call, so you are now Not ready. Choose Available when you are back.");
        } else if (message.reason === "wrap_up_limit") {
          notice("Wrap-up time ran out, so you are available again.");
        } else if (message.status === "available") {
          notice("");
        }
        break;
      case "error":
        model.pending = null;
        notice(message.message || "Something went wrong.");
        break;
      default:
        return;
    }
    render();
  }

  function onCall(message) {
    var previous = model.call && model.call.call_id === message.call_id ? model.call : {};
    var merged = Object.assign({}, previous, message);
    if (!message.caller && previous.caller) merged.caller = previous.caller;
    // A message written before the agent chose who is calling (it crossed the choice on the
    // way) must not take the chosen customer off the card: once chosen, the call's messages
    // name that customer.
    if (previous.chosenCustomerId && message.customer_id == null) {
      merged.caller = previous.caller;
      merged.customer_id = previous.customer_id;
    }
    if (model.call && model.call.call_id !== message.call_id) resetNoteForm();
    model.call = merged;
    if (model.offer && model.offer.call_id === message.call_id) model.offer = null;
    if (model.ringing && model.ringing.call_id === message.call_id) model.ringing = null;
    model.pending = null;
    notice("");
  }

  function dropWaiting(callId) {
    model.waiting = model.waiting.filter(function (line) {
      return line.call_id !== callId;
    });
  }

  // Accepted: the card stays while the telephony system connects the caller.
  function takeCall(offer) {
    if (model.call && model.call.call_id !== offer.call_id) resetNoteForm();
    model.call = {
      type: "call",
      call_id: offer.call_id,
      state: "connecting",
      queue: offer.queue,
      connected_at: null,
      customer_id: offer.caller && offer.caller.customer ? offer.caller.customer.id : null,
      chosenCustomerId: offer.chosenCustomerId || null,
      caller: offer.caller,
      hold_rule: offer.hold_rule,
    };
  }

  function isIdleStatus(status) {
    return status === "available" || status === "break" || status === "offline";
  }

  function isTalking(call) {
    return ["wrap_up", "ended", "abandoned"].indexOf(call.state) === -1;
  }

  // ---- rendering -----------------------------------------------------------------------------

  function render() {
    renderStatus();
    renderWaiting();
    renderStage();
    renderSide();
  }

  // A caller held for this busy agent: a quiet line, not an offer, so they can wrap up.
  function renderWaiting() {
    var list = $("[data-waiting-lines]");
    list.replaceChildren.apply(
      list,
      model.waiting.map(function (line) {
        return el(
          "li",
          { class: "waiting-line", "data-waiting-call": line.call_id },
          el("span", { class: "waiting-name", text: line.caller_name || "A caller" }),
          " is waiting for you ",
          el("span", { class: "waiting-secs", "data-waiting-since": line.waiting_since })
        );
      })
    );
    list.hidden = !model.waiting.length;
    tickWaiting();
  }

  function tickWaiting() {
    // The server ends each line; one whose wait is long over (a lost message) goes anyway.
    var stale = model.waiting.filter(function (line) {
      var until = parseDate(line.wait_until);
      return until && Date.now() - until.getTime() > 10000;
    });
    if (stale.length) {
      stale.forEach(function (line) {
        dropWaiting(line.call_id);
      });
      renderWaiting();
      return;
    }
    $$("[data-waiting-since]").forEach(function (node) {
      var since = parseDate(node.getAttribute("data-waiting-since"));
      var seconds = since ? Math.max(0, Math.floor((Date.now() - since.getTime()) / 1000)) : 0;
      node.textContent = "(" + seconds + " s)";
    });
  }

  function renderStatus() {
    var status = model.agent.status;
    $$("[data-set-status]").forEach(function (button) {
      button.setAttribute("aria-checked", String(button.getAttribute("data-set-status") === status));
    });
    var label = $("[data-status-label]");
    label.textContent = model.agent.status_label || STATUS_LABELS[status] || status || "";
    label.setAttribute("data-status", status || "");
    var reason = $("[data-not-ready-reason]");
    if (status === "break" && model.agent.not_ready_reason && reason.value !== model.agent.not_ready_reason) {
      reason.value = model.agent.not_ready_reason;
    }
    document.title = (model.offer || model.ringing ? "Incoming call · " : "") + "Console · Rapport";
  }

  function renderStage() {
    var card = $("[data-card]");
    var idle = $("[data-idle]");
    // A call ringing on the phone shows unless the agent is talking on another.
    var ringing = model.ringing && !(model.call && isTalking(model.call)) ? model.ringing : null;
    var source = model.offer || ringing || model.call;
    if (!source) {
      card.hidden = true;
      card.replaceChildren();
      idle.hidden = false;
      $("[data-idle-title]").textContent = idleTitle();
      return;
    }
    idle.hidden = true;
    card.hidden = false;
    card.setAttribute("data-mode", model.offer ? "offer" : source === ringing ? "ringing" : "call");
    card.setAttribute("data-call-id", source.call_id || "");
    card.replaceChildren.apply(card, callerCard(source, !!model.offer, source === ringing));
    tickRing();
  }

  function idleTitle() {
    var status = model.agent.status;
    if (status === "available") return "Waiting for the next caller";
    if (status === "break") return "Not ready — no calls are offered to you";
    if (status === "offline") return "Offline — choose Available to take calls";
    if (status === "wrap_up") return "Wrap-up";
    return STATUS_LABELS[status] || "Connecting…";
  }

  function callerCard(source, ringing, onPhone) {
    var caller = source.caller || { kind: "unknown", number: "", customer: null, candidates: [] };
    var customer = caller.customer;
    var parts = [onPhone ? phoneRingingHead(source) : cardHead(source, ringing)];
    var hold = source.hold_rule;
    if (hold && hold.text) {
      parts.push(el("p", { class: "hold-why", "data-hold-rule": hold.rule || "", text: hold.text }));
    }
    parts.push(whoIsCalling(source, caller));
    if (customer) {
      if (customer.history_hidden || customer.consent === "closed") {
        parts.push(
          el(
            "p",
            { class: "banner closed", "data-consent-closed": true, role: "note" },
            el("strong", { text: "Consent closed — no history shown." }),
            " Serve this call; do not bring up earlier purchases or notes."
          )
        );
      }
      parts.push(preferences(customer), trustLine(customer, source));
      if (!customer.history_hidden && !isThisCall(customer.last_agent, source)) {
        parts.push(lastAgentLine(customer));
      }
      parts.push(notesSection(customer));
    } else if (caller.kind === "unknown") {
      parts.push(
        el(
          "p",
          { class: "banner neutral" },
          "No customer has this number. Ask their name; your note will start their record."
        )
      );
    }
    if (ringing) parts.push(offerActions(source));
    return parts;
  }

  function cardHead(source, ringing) {
    var queue = source.queue ? source.queue.name : "";
    var label = ringing ? "Incoming call" : callStateLabel(source.state);
    var head = el(
      "header",
      { class: "card-head" },
      el("span", { class: "tag " + (ringing ? "tag-ring" : "tag-call"), text: label }),
      queue ? el("span", { class: "queue", text: queue }) : null,
      ringing && REASONS[source.reason] ? el("span", { class: "reason", text: REASONS[source.reason] }) : null
    );
    if (ringing) {
      head.append(
        el(
          "span",
          { class: "ring", "aria-label": "Time left to answer" },
          el("span", { class: "ring-track" }, el("span", { class: "ring-bar", "data-ring-bar": true })),
          el("span", { class: "ring-secs", "data-ring-secs": true })
        )
      );
    } else if (source.connected_at) {
      head.append(el("span", { class: "since", text: "since " + formatTime(source.connected_at) }));
    }
    return head;
  }

  // Rung by the phone system: there is nothing to accept here; the agent answers the phone.
  function phoneRingingHead(source) {
    var queue = source.queue ? source.queue.name : "";
    return el(
      "header",
      { class: "card-head" },
      el("span", { class: "tag tag-ring", text: "Ringing on your phone" }),
      queue ? el("span", { class: "queue", text: queue }) : null,
      el("span", { class: "reason", text: "Answer on your phone" })
    );
  }

  function callStateLabel(state) {
    return (
      {
        connecting: "Connecting…",
        offered: "Connecting…",
        queued: "Connecting…",
        connected: "On call",
        held: "On hold",
        transferred: "Transferred",
        wrap_up: "Wrap-up",
        ended: "Wrap-up",
        abandoned: "Caller hung up",
      }[state] || "On call"
    );
  }

  function formatTime(iso) {
    var date = parseDate(iso);
    return date ? date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) : "";
  }

  function whoIsCalling(source, caller) {
    var box = el("div", { class: "who-calls" });
    if (caller.customer) {
      box.append(el("h1", { class: "caller-name", "data-caller-name": true, text: caller.customer.name }));
    } else if (caller.kind === "shared") {
      box.append(el("h1", { class: "caller-name ask", text: "Who am I speaking with?" }));
    } else {
      box.append(el("h1", { class: "caller-name", "data-caller-name": true, text: "New caller" }));
    }
    box.append(el("p", { class: "number", text: caller.number || "Number withheld" }));
    if (!caller.customer && caller.kind === "shared") {
      box.append(
        el("p", { class: "muted small", text: "Several customers share this number. Ask, then choose:" })
      );
      var list = el("ul", { class: "candidates", "data-candidates": true });
      (caller.candidates || []).forEach(function (candidate) {
        list.append(
          el(
            "li",
            {},
            el("button", {
              type: "button",
              "data-candidate": candidate.id,
              text: candidate.name,
              onclick: function () {
                resolveCaller(source, candidate.id);
              },
            })
          )
        );
      });
      box.append(list);
    }
    return box;
  }

  var PACE = {
    brisk: ["In a rush — skip the chit-chat", "brisk"],
    unhurried: ["Unhurried — happy to talk", "calm"],
    unknown: ["Ask: in a hurry today?", "ask"],
  };
  var HOLD = {
    fine: ["Fine to put on hold", "calm"],
    avoid: ["Avoid holding — offer a call back", "brisk"],
    unknown: ["Ask before putting on hold", "ask"],
  };
  var CHANNEL = {
    text: ["Prefers text — offer a text follow-up", "calm"],
    email: ["Prefers email — offer an email follow-up", "calm"],
    phone: ["Prefers phone", "calm"],
    unknown: ["Ask: text or email for follow-up?", "ask"],
  };

  function preferences(customer) {
    var prefs = customer.preferences || {};
    var closed = customer.history_hidden || customer.consent === "closed";
    var row = el("div", { class: "prefs" });
    row.append(prefCell("Pace", "pace", prefs.pace, PACE));
    if (!closed || (prefs.hold_tolerance && prefs.hold_tolerance.value !== "unknown")) {
      row.append(prefCell("Hold", "hold_tolerance", prefs.hold_tolerance, HOLD));
    }
    if (!closed || (prefs.preferred_channel && prefs.preferred_channel.value !== "unknown")) {
      row.append(prefCell("Channel", "preferred_channel", prefs.preferred_channel, CHANNEL));
    }
    return row;
  }

  function prefCell(label, name, pref, table) {
    var value = (pref && pref.value) || "unknown";
    var entry = table[value] || [value, "calm"];
    return el(
      "div",
      { class: "pref pref-" + entry[1], "data-pref": name, "data-value": value },
      el("span", { class: "pref-label", text: label }),
      el("span", { class: "pref-value", text: entry[0] }),
      el("span", { class: "pref-source", text: value === "unknown" ? "not known yet" : provenance(pref) })
    );
  }

  function trustLine(customer, source) {
    var trust = customer.trust || {};
    var consent = trust.consent || customer.consent || "closed";
    var items = [];
    items.push(
      {
        closed: chip("bad", "✕", "Consent closed", "consent"),
        conditional: chip("warn", "◐", "Consent conditional", "consent"),
        open: chip("good", "✓", "Consent open", "consent"),
      }[consent] || chip("neutral", "?", "Consent " + consent, "consent")
    );
    var verified = trust.identity_verified || source.identity_verified;
    items.push(
      verified
        ? chip("good", "✓", "ID verified on this call", "identity")
        : chip("warn", "!", "ID not verified yet", "identity")
    );
    var survey = {
      agree: chip("good", "✓", "Trusts us (survey)", "survey"),
      neutral: chip("neutral", "–", "Survey: neutral", "survey"),
      disagree: chip("bad", "✕", "Doubts we have their interest at heart", "survey"),
    }[trust.survey_trust];
    if (survey) items.push(survey);
    else if (!customer.history_hidden) items.push(chip("neutral", "?", "No trust survey", "survey"));
    var tenure = tenureText(trust.customer_since);
    if (tenure) items.push(chip("neutral", "", tenure, "tenure"));
    var returns = {
      rarely: "Rarely returns",
      sometimes: "Sometimes returns",
      often: "Often returns",
    }[trust.return_behaviour];
    if (returns) items.push(chip("neutral", "", returns, "returns"));
    var line = el("p", { class: "trust", "data-trust": true, "aria-label": "Trust signals" });
    items.forEach(function (item, index) {
      if (index) line.append(el("span", { class: "sep", "aria-hidden": "true", text: "·" }));
      line.append(item);
    });
    return line;
  }

  function chip(tone, icon, text, name) {
    return el(
      "span",
      { class: "chip tone-" + tone, "data-trust-item": name },
      icon ? el("span", { class: "icon", "aria-hidden": "true", text: icon }) : null,
      text
    );
  }

  function tenureText(since) {
    var date = parseDate(since);
    if (!date) return "";
    var years = (Date.now() - date.getTime()) / (365.25 * 24 * 3600 * 1000);
    if (years < 1) return "Customer since " + formatDay(since);
    return "Customer " + Math.floor(years) + (Math.floor(years) === 1 ? " year" : " years");
  }

  // Once connected, the caller's "last call" is this one: not worth a line.
  function isThisCall(lastAgent, source) {
    var spoke = lastAgent && parseDate(lastAgent.last_spoke_at);
    var connected = parseDate(source.connected_at);
    return !!(spoke && connected && spoke.getTime() >= connected.getTime() - 1000);
  }

  function lastAgentLine(customer) {
    var last = customer.last_agent;
    if (!last) return el("p", { class: "last-agent muted", text: "First call with the team." });
    var when = formatDay(last.last_spoke_at);
    if (last.id === me.id) {
      return el(
        "p",
        { class: "last-agent mine", "data-last-agent": true },
        el("strong", { text: "You spoke with them" }),
        when ? " on " + when + "." : "."
      );
    }
    return el("p", {
      class: "last-agent",
      "data-last-agent": true,
      text: "Last spoke with " + last.display_name + (when ? " on " + when : "") + ".",
    });
  }

  function notesSection(customer) {
    var older = model.olderNotes[customer.id] || { notes: [], loading: false };
    var notes = (customer.notes || []).concat(older.notes);
    var remaining = Math.max(0, (customer.more_notes || 0) - older.notes.length);
    var closed = customer.history_hidden || customer.consent === "closed";
    var section = el(
      "section",
      { class: "notes", "aria-label": "Notes from earlier calls" },
      el("h2", { text: closed ? "Open matters" : "Earlier calls" })
    );
    if (!notes.length) {
      section.append(
        el("p", { class: "muted small", text: closed ? "No open matters." : "No notes yet." })
      );
    } else {
      var list = el("ol", { class: "note-list", "data-notes": true });
      notes.forEach(function (note) {
        list.append(noteItem(note));
      });
      section.append(list);
    }
    if (remaining > 0) {
      section.append(
        el("button", {
          type: "button",
          class: "link more",
          "data-more-notes": true,
          disabled: older.loading,
          text: older.loading ? "Loading…" : remaining + " more",
          onclick: function () {
            loadOlderNotes(customer);
          },
        })
      );
    }
    return section;
  }

  function noteItem(note) {
    var context = note.context || {};
    var fields = [
      ["Occasion", note.occasion || context.occasion],
      ["Intent", note.intent || context.intent],
      ["For", note.shopping_for || context.shopping_for],
      ["Sizes", note.sizes || context.sizes],
    ].filter(function (pair) {
      return pair[1];
    });
    var item = el(
      "li",
      { class: "note-item", "data-note-id": note.id },
      el(
        "div",
        { class: "note-meta" },
        el("time", { datetime: note.created_at, text: formatDay(note.created_at) }),
        " · ",
        el("span", { class: "author", text: note.author || "Unknown agent" }),
        note.open_matter ? el("span", { class: "badge", text: "Open matter" }) : null
      )
    );
    if (fields.length) {
      var dl = el("dl", { class: "note-context" });
      fields.forEach(function (pair) {
        dl.append(el("div", {}, el("dt", { text: pair[0] }), el("dd", { text: pair[1] })));
      });
      item.append(dl);
    }
    if (note.text) item.append(el("p", { class: "note-text", text: note.text }));
    return item;
  }

  function offerActions(offer) {
    var waiting = model.pending !== null;
    return el(
      "footer",
      { class: "actions" },
      el(
        "button",
        {
          type: "button",
          class: "primary accept",
          "data-accept": true,
          disabled: waiting,
          onclick: accept,
        },
        model.pending === "accept" ? "Connecting…" : "Accept",
        el("kbd", { text: "A" })
      ),
      el(
        "button",
        { type: "button", class: "secondary", "data-decline": true, disabled: waiting, onclick: decline },
        "Decline",
        el("kbd", { text: "D" })
      )
    );
  }

  function renderSide() {
    var form = $("[data-note-form]");
    var call = model.call;
    form.hidden = !call;
    $("[data-wrapup]").hidden = model.agent.status !== "wrap_up";
    if (!call) return;
    var customer = call.caller && call.caller.customer;
    var forLine = $("[data-note-for]");
    if (customer) {
      forLine.textContent = "Saved on this call for " + customer.name + ".";
    } else if (call.caller && call.caller.kind === "shared") {
      forLine.textContent = "Choose who you are speaking with (left) before saving.";
    } else if (!forLine.contains($("[data-new-caller-name]"))) {
      // Put in once and then left alone: moving it on every redraw would take the focus (and
      // the rest of the name) from an agent still typing it.
      forLine.replaceChildren("New caller: ", newCallerNameInput());
    }
    var said = $("[data-said]");
    said.disabled = !customer;
    if (customer) {
      var prefs = customer.preferences || {};
      $$("[data-said-field]", said).forEach(function (button) {
        var field = button.getAttribute("data-said-field");
        var current = field === "consent" ? { value: customer.consent } : prefs[field];
        var pressed = !!current && current.value === button.getAttribute("data-said-value");
        button.setAttribute("aria-pressed", String(pressed));
      });
    }
  }

  function newCallerNameInput() {
    return el("input", {
      name: "new_caller_name",
      "data-new-caller-name": true,
      placeholder: "their name, to start a record",
      class: "inline-input",
    });
  }

  // ---- ring timer ----------------------------------------------------------------------------

  function tickRing() {
    var bar = $("[data-ring-bar]");
    var secs = $("[data-ring-secs]");
    if (!model.offer || !bar) return;
    var expires = parseDate(model.offer.expires_at);
    var total = (model.offer.timeout_seconds || 15) * 1000;
    var left = expires ? Math.max(0, Math.min(total, expires.getTime() - Date.now())) : 0;
    bar.style.transform = "scaleX(" + (left / total).toFixed(3) + ")";
    bar.setAttribute("data-urgent", String(left < 5000));
    secs.textContent = Math.ceil(left / 1000) + " s";
  }

  setInterval(tickRing, 250);
  setInterval(tickWaiting, 1000);

  // ---- actions -------------------------------------------------------------------------------

  function accept() {
    if (!model.offer || model.pending) return;
    if (send({ type: "accept", offer_id: model.offer.offer_id })) {
      model.pending = "accept";
      render();
    }
  }

  function decline() {
    if (!model.offer || model.pending) return;
    if (send({ type: "decline", offer_id: model.offer.offer_id })) {
      model.pending = "decline";
      render();
    }
  }

  function ready() {
    if (model.agent.status !== "wrap_up" && !(model.call && !isTalking(model.call))) return;
    var saving = model.noteDirty ? saveNote() : Promise.resolve(true);
    saving.then(function (saved) {
      if (!saved) return;
      if (send({ type: "ready" })) {
        model.call = null;
        resetNoteForm();
        render();
      }
    });
  }

  function setStatus(status) {
    var message = { type: "set_status", status: status };
    // The reason picked next to "Not ready"; "missed call" is the system's, never offered.
    if (status === "break") message.not_ready_reason = $("[data-not-ready-reason]").value;
    send(message);
  }

  function resolveCaller(source, customerId) {
    api("POST", config.calls_url + encodeURIComponent(source.call_id) + "/caller/", {
      customer_id: customerId,
    })
      .then(function (data) {
        [model.offer, model.call].forEach(function (item) {
          if (item && item.call_id === source.call_id) {
            item.caller = data.caller;
            item.customer_id = customerId;
            item.chosenCustomerId = customerId;
          }
        });
        notice("");
        render();
      })
      .catch(function (error) {
        notice("Could not set the caller: " + error.message);
      });
  }

  function loadOlderNotes(customer) {
    var older = model.olderNotes[customer.id] || { notes: [], loading: false };
    if (older.loading) return;
    older.loading = true;
    model.olderNotes[customer.id] = older;
    render();
    var shown = (customer.notes || []).concat(older.notes);
    var oldest = shown.length ? shown[shown.length - 1].id : null;
    var url = config.customers_url + customer.id + "/notes/?limit=10" + (oldest ? "&before=" + oldest : "");
    api("GET", url)
      .then(function (data) {
        var known = {};
        shown.forEach(function (note) {
          known[note.id] = true;
        });
        (data.notes || []).forEach(function (note) {
          if (!known[note.id]) older.notes.push(note);
        });
        customer.more_notes = older.notes.length + (data.more_notes || 0);
      })
      .catch(function (error) {
        notice("Could not load older notes: " + error.message);
      })
      .then(function () {
        older.loading = false;
        render();
      });
  }

  function currentCustomer() {
    return model.call && model.call.caller && model.call.caller.customer;
  }

  function noteFromForm(form) {
    var data = new FormData(form);
    var field = function (name) {
      return String(data.get(name) || "").trim();
    };
    return {
      text: field("text"),
      call_id: model.call.call_id,
      context: {
        occasion: field("occasion"),
        intent: field("intent"),
        shopping_for: field("shopping_for"),
        sizes: field("sizes"),
      },
      open_matter: data.get("open_matter") === "on",
    };
  }

  function isEmptyNote(note) {
    var context = note.context;
    return !note.text && !context.occasion && !context.intent && !context.shopping_for && !context.sizes;
  }

  // Resolves to true when there is nothing left to save.
  function saveNote() {
    var form = $("[data-note-form]");
    var state = $("[data-note-state]");
    if (!model.call) return Promise.resolve(true);
    var note = noteFromForm(form);
    if (isEmptyNote(note)) {
      model.noteDirty = false;
      return Promise.resolve(true);
    }
    state.textContent = "Saving…";
    return ensureCustomer()
      .then(function (customer) {
        if (!customer) throw new Error("choose who you are speaking with first");
        return api("POST", config.customers_url + customer.id + "/notes/", note);
      })
      .then(function () {
        resetNoteForm();
        if (isIdleStatus(model.agent.status)) {
          model.call = null;
          render();
        }
        state.textContent = "Saved at " + formatTime(new Date().toISOString()) + " — the next agent sees it.";
        return true;
      })
      .catch(function (error) {
        state.textContent = "Not saved: " + error.message;
        return false;
      });
  }

  // An unknown caller gets a customer record from the name the agent typed.
  function ensureCustomer() {
    var customer = currentCustomer();
    if (customer) return Promise.resolve(customer);
    var caller = model.call.caller || {};
    var nameInput = $("[data-new-caller-name]");
    var name = nameInput ? nameInput.value.trim() : "";
    if (caller.kind === "shared" || !name) return Promise.resolve(null);
    var callId = model.call.call_id;
    return api("POST", config.customers_url, {
      name: name,
      phones: caller.number ? [caller.number] : [],
    }).then(function (created) {
      return api("POST", config.calls_url + encodeURIComponent(callId) + "/caller/", {
        customer_id: created.id,
      }).then(function (data) {
        if (model.call && model.call.call_id === callId) {
          model.call.caller = data.caller;
          model.call.customer_id = created.id;
          model.call.chosenCustomerId = created.id;
        }
        render();
        return data.caller.customer;
      });
    });
  }

  function resetNoteForm() {
    var form = $("[data-note-form]");
    form.reset();
    model.noteDirty = false;
    $("[data-note-state]").textContent = "";
    $("[data-said-state]").textContent = "";
  }

  function recordSaid(field, value) {
    var customer = currentCustomer();
    var state = $("[data-said-state]");
    if (!customer) return;
    var body = { source: "caller" };
    if (field === "hold_tolerance") body.hold_ok = value === "fine";
    else body[field] = value;
    state.textContent = "Saving…";
    api("PATCH", config.customers_url + customer.id + "/", body)
      .then(function () {
        var now = new Date().toISOString();
        if (field === "consent") {
          customer.consent = value;
          customer.trust = Object.assign({}, customer.trust, { consent: value });
        } else {
          customer.preferences = customer.preferences || {};
          customer.preferences[field] = { value: value, source: "caller", set_by: me.display_name, set_at: now };
        }
        state.textContent = "Recorded: said by the caller.";
        render();
      })
      .catch(function (error) {
        state.textContent = "Not recorded: " + error.message;
      });
  }

  // ---- wiring --------------------------------------------------------------------------------

  $$("[data-set-status]").forEach(function (button) {
    button.addEventListener("click", function () {
      setStatus(button.getAttribute("data-set-status"));
    });
  });
  $("[data-not-ready-reason]").addEventListener("change", function () {
    if (model.agent.status === "break") setStatus("break");
  });
  $("[data-ready]").addEventListener("click", ready);
  $$("[data-said-field]").forEach(function (button) {
    button.addEventListener("click", function () {
      recordSaid(button.getAttribute("data-said-field"), button.getAttribute("data-said-value"));
    });
  });
  var noteForm = $("[data-note-form]");
  noteForm.addEventListener("submit", function (event) {
    event.preventDefault();
    saveNote();
  });
  noteForm.addEventListener("input", function (event) {
    if (event.target.name !== "new_caller_name") model.noteDirty = true;
  });

  var SHORTCUTS = {
    KeyA: accept,
    KeyD: decline,
    KeyR: ready,
    KeyN: function () {
      var text = $("[data-note-text]");
      if (!$("[data-note-form]").hidden) text.focus();
    },
  };

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var inField = target.closest && target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "Escape" && inField) {
      target.blur();
      return;
    }
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && target.closest("[data-note-form]")) {
      event.preventDefault();
      saveNote();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.repeat) return;
    if (inField && !event.altKey) return;
    var action = SHORTCUTS[event.code];
    if (!action) return;
    event.preventDefault();
    action();
  });

  render();
  connect();
})();
