// Omnicenter chat widget. Served by /widget/<key>.js, which wraps this file in a function and
// defines __OC_WIDGET__ (the channel's settings and strings) and __OC_WIDGET_CSS__ before it.
// Plain JS, no framework; everything lives in a shadow root so the host page's CSS cannot touch it.
// Protocol: docs/channels/webchat.md.
/* global __OC_WIDGET__, __OC_WIDGET_CSS__ */
var C = __OC_WIDGET__, T = C.t, doc = document;
var script = doc.currentScript;
var base = C.base;
try { if (script && script.src) base = new URL(script.src).origin; } catch (e) { /* keep the configured base */ }
var wsUrl = C.wsFixed ? C.ws : base.replace(/^http/, "ws") + "/ws/widget/" + C.key + "/";
var userId = script && script.dataset.userId, userHash = script && script.dataset.userHash;
var storeKey = "omnicenter-chat:" + C.key;

function load() { try { return JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (e) { return {}; } }
var state = load();
function save() { try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode */ } }
state.outbox = state.outbox || [];

function el(tag, attrs, children) {
  var node = doc.createElement(tag);
  for (var k in attrs || {}) {
    if (k === "text") node.textContent = attrs[k];
    else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
    else if (attrs[k] !== false && attrs[k] != null) node.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
  }
  (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? doc.createTextNode(c) : c); });
  return node;
}

// --- DOM -------------------------------------------------------------------------------------
var host = el("div", { id: "omnicenter-chat", "data-omnicenter-chat": C.key });
var root = host.attachShadow({ mode: "open" });
root.appendChild(el("style", { text: __OC_WIDGET_CSS__ + ":host{--oc:" + C.color + "}" }));
var panelId = "oc-panel";
var launcher = el("button", {
  type: "button", "class": "launcher " + C.position, "aria-label": T.open, "aria-expanded": "false", "aria-controls": panelId,
});
launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16v12H7l-3 3z"/></svg>';
var closeBtn = el("button", { type: "button", "aria-label": T.close, text: "×" });
var menuId = "oc-menu";
var menuBtn = el("button", { type: "button", "class": "menu-btn", "aria-label": T.menu, title: T.menu, "aria-haspopup": "menu",
  "aria-expanded": "false", "aria-controls": menuId, text: "⋯" });
var menu = el("div", { id: menuId, "class": "menu", role: "menu", "aria-label": T.menu, hidden: true });
var toolForm = el("form", { "class": "tool", hidden: true, novalidate: true });
var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-label": T.title });
var statusEl = el("div", { "class": "status", role: "status" });
var typingEl = el("div", { "class": "typing", "aria-live": "polite" });
var textarea = el("textarea", { rows: "1", maxlength: String(C.maxChars), placeholder: T.placeholder, "aria-label": T.placeholder });
var fileInput = el("input", { type: "file", "class": "sr", tabindex: "-1", "aria-hidden": "true", accept: "image/*,application/pdf,text/plain" });
var attachBtn = el("button", { type: "button", "class": "icon", "aria-label": T.attach, title: T.attach, text: "📎" });
var composer = el("form", { "class": "composer", "aria-label": T.title }, [
  el("div", { "class": "row" }, [attachBtn, textarea, el("button", { type: "submit", "class": "btn", text: T.send })]), fileInput,
]);
var prechat = el("form", { "class": "prechat", hidden: true });
var callbackForm = el("form", { "class": "callback", hidden: true });
var offlineChoices = el("div", { "class": "choices", hidden: true });
var panel = el("div", { id: panelId, "class": "panel " + C.position, role: "dialog", "aria-label": T.title, hidden: true }, [
  el("header", {}, [C.photo ? el("img", { src: C.photo, alt: "" }) : null, el("h2", { text: C.team || T.title }), menuBtn, closeBtn]),
  menu, statusEl, log, typingEl, prechat, callbackForm, toolForm, composer,
]);
root.appendChild(launcher);
root.appendChild(panel);

function field(name, label, type, required) {
  var input = el("input", { name: name, type: type, required: required, autocomplete: name === "name" ? "name" : name === "email" ? "email" : "tel" });
  return el("label", {}, [label + (required ? " *" : ""), input]);
}

// --- messages --------------------------------------------------------------------------------
var messages = {};  // id -> node
var seenNode = null;

function fmtTime(iso) { try { return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); } catch (e) { return ""; } }

function render(m, pending) {
  var node = messages[m.id] || (m.client_id && messages["c:" + m.client_id]);
  var fresh = !node;
  if (fresh) node = el("div", { "class": "msg " + m.from });
  node.textContent = "";
  if (m.text) node.appendChild(doc.createTextNode(m.text));
  (m.attachments || []).forEach(function (a) {
    var link = el("a", { href: a.url, target: "_blank", rel: "noopener" }, [a.type.indexOf("image/") === 0 ? el("img", { src: a.url, alt: a.name }) : a.name]);
    node.appendChild(el("div", {}, [link]));
  });
  var meta = (m.from === "agent" ? (m.author || T.team) : T.you) + (m.at ? " · " + fmtTime(m.at) : "");
  if (pending) meta += " · " + (pending === "failed" ? T.failed : T.sending);
  node.appendChild(el("span", { "class": "meta", text: meta }));
  node.classList.toggle("failed", pending === "failed");
  if (m.client_id) messages["c:" + m.client_id] = node;
  messages[m.id] = node;
  if (fresh) { log.appendChild(node); log.scrollTop = log.scrollHeight; }
  if (m.from === "agent") { typingEl.textContent = ""; acknowledge([m]); }
  if (m.from === "visitor" && !pending) {
    if (seenNode) seenNode.remove();
    seenNode = null;
  }
  if (!pending && m.id) { state.lastId = m.id; save(); }
  return node;
}

function system(text, extra) {
  var node = el("div", { "class": "msg system" }, [text]);
  if (extra) node.appendChild(extra);
  log.appendChild(node);
  log.scrollTop = log.scrollHeight;
  return node;
}

var unread = [];
function acknowledge(list) {
  var agent = list.filter(function (m) { return m.from === "agent" && m.status !== "read"; });
  var fresh = agent.filter(function (m) { return m.status !== "delivered"; }).map(function (m) { return m.id; });
  if (fresh.length) send({ type: "delivered", ids: fresh });
  unread = unread.concat(agent.map(function (m) { return m.id; }));
  markRead();
}
function markRead() {
  if (!unread.length || panel.hidden || doc.hidden) return;
  send({ type: "read", ids: unread });
  unread = [];
}

// --- socket ----------------------------------------------------------------------------------
var ws = null, attempt = 0, authed = false, ready = null, retriedAuth = false, historyLoaded = false;
var polling = false, everOpened = false;

function send(frame) {
  if (polling && authed) {
    post("send", { token: state.token, frame: frame }).then(function (r) { return r.json(); }).then(handle, function () { /* retried on the next poll's flush */ });
    return true;
  }
  if (ws && authed && ws.readyState === 1) { ws.send(JSON.stringify(frame)); return true; }
  return false;
}

function post(path, body) {
  return fetch(base + "/widget/" + C.key + "/" + path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), credentials: "omit",
  });
}

// Networks that block websockets: fetch the conversation every few seconds and send over HTTP.
function startPolling() {
  polling = true;
  var tick = function () {
    var after = historyLoaded ? state.lastId || "" : "";
    post("poll", { token: state.token, after: after }).then(function (r) {
      if (r.status === 401) return session(true);
      return r.json().then(function (f) {
        if (!authed) handle(f);
        else f.history.forEach(function (m) { render(m); });
      });
    }).catch(function () { statusEl.textContent = T.offline; }).then(function () {
      setTimeout(tick, doc.hidden ? 15000 : 4000);
    });
  };
  var starting = state.token ? Promise.resolve() : session(false);
  starting.then(tick, function () { setTimeout(startPolling, 5000); });
}

function session(fresh) {
  var body = { token: fresh ? "" : (state.token || "") };
  if (userId && userHash) { body.user_id = userId; body.user_hash = userHash; }
  return post("session", body).then(function (r) {
    if (!r.ok) throw new Error("session " + r.status);
    return r.json();
  }).then(function (data) {
    if (data.token !== state.token) { state.token = data.token; if (fresh) state.lastId = ""; save(); }
  });
}

function reconnectLater() {
  attempt += 1;
  var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random());
  setTimeout(connect, delay);
}

var sessionChecked = false;
function connect() {
  // Once per page: renews the token, and follows the site's sign-in (a signed-out user must not
  // stay in the signed-in user's conversation through local storage).
  var starting = sessionChecked && state.token ? Promise.resolve() : session(false);
  sessionChecked = true;
  starting.then(open, function () { statusEl.textContent = T.offline; reconnectLater(); });
}

function open() {
  authed = false;
  ws = new WebSocket(wsUrl);
  ws.onopen = function () { everOpened = true; ws.send(JSON.stringify({ type: "auth", token: state.token, after: historyLoaded ? state.lastId || "" : "" })); };
  ws.onmessage = function (ev) {
    var f;
    try { f = JSON.parse(ev.data); } catch (e) { return; }
    handle(f);
  };
  ws.onclose = function (ev) {
    authed = false;
    statusEl.textContent = T.offline;
    host.dataset.state = "offline";
    if (!everOpened && attempt >= 2) { startPolling(); return; }
    if (ev.code === 4401 && !retriedAuth) {
      // Expired or foreign token: start a new visitor session once, then back off as usual.
      retriedAuth = true;
      session(!userId).then(open, reconnectLater);
      return;
    }
    reconnectLater();
  };
}

function handle(f) {
  if (f.type === "ready") {
    authed = true; attempt = 0; retriedAuth = false; ready = f;
    statusEl.textContent = "";
    host.dataset.state = "live";
    if (!historyLoaded) log.insertBefore(system(f.greeting), log.firstChild);  // above anything sent meanwhile
    visitorInfo(f.visitor);
    historyLoaded = true;
    f.history.forEach(function (m) { render(m); });
    if (!f.open) showOffline(f.offline_message);
    else if (needsPrechat()) showPrechat(false);
    flush();
  } else if (f.type === "ack") {
    state.outbox = state.outbox.filter(function (o) { return o.id !== f.id; });
    delete state.profilePending;
    save();
    render(f.message);
  } else if (f.type === "message") {
    render(f.message);
  } else if (f.type === "typing") {
    typingEl.textContent = (C.team || T.team) + " " + T.typing;
    clearTimeout(handle.typingTimer);
    handle.typingTimer = setTimeout(function () { typingEl.textContent = ""; }, 5000);
  } else if (f.type === "seen") {
    if (!seenNode) seenNode = system(T.seen);
  } else if (f.type === "survey") {
    showSurvey(f);
  } else if (f.type === "survey_thanks") {
    system(T.thanks);
  } else if (f.type === "notice") {
    system(f.text);
  } else if (f.type === "transcript_queued" || f.type === "email_code_sent" || f.type === "email_verified") {
    toolAnswer(f);
  } else if (f.type === "error" && f.ref && f.ref === toolRef) {
    toolError(f.message);
  } else if (f.type === "error") {
    var node = f.ref && messages["c:" + f.ref];
    if (node) {
      var failed = state.outbox.filter(function (o) { return o.id === f.ref; })[0];
      state.outbox = state.outbox.filter(function (o) { return o.id !== f.ref; });
      save();
      node.classList.add("failed");
      node.querySelector(".meta").textContent = T.you + " · " + f.message;
      if (failed) offerRetry(node, failed);
    } else {
      statusEl.textContent = f.message;
    }
  }
}

// A refused message (rate limit, a lost connection) can be sent again, with the same id.
function offerRetry(node, frame) {
  node.setAttribute("role", "button");
  node.setAttribute("tabindex", "0");
  node.setAttribute("title", T.failed);
  var retry = function (ev) {
    if (ev.type === "keydown" && ev.key !== "Enter") return;
    node.removeEventListener("click", retry);
    node.removeEventListener("keydown", retry);
    node.removeAttribute("role");
    node.removeAttribute("tabindex");
    node.classList.remove("failed");
    node.querySelector(".meta").textContent = T.you + " · " + T.sending;
    state.outbox.push(frame);
    save();
    send(frame);
  };
  node.addEventListener("click", retry);
  node.addEventListener("keydown", retry);
}

function flush() { state.outbox.forEach(function (o) { send(o); }); }

// --- sending ---------------------------------------------------------------------------------
function newId() {
  var a = new Uint8Array(12);
  crypto.getRandomValues(a);
  return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
}

function queue(frame, preview) {
  state.outbox.push(frame);
  save();
  render({ id: "c:" + frame.id, client_id: frame.id, from: "visitor", text: preview.text, attachments: [] }, "sending");
  send(frame);
}

function sendMessage(text, files) {
  var frame = { type: "message", id: newId(), text: text, page: location.href.slice(0, 1000) };
  if (state.profilePending) frame.profile = state.profilePending;
  if (files) frame.attachments = files;
  queue(frame, { text: text || (files ? files[0].name : "") });
}

composer.addEventListener("submit", function (ev) {
  ev.preventDefault();
  var text = textarea.value.trim();
  if (!text) return;
  textarea.value = "";
  sendMessage(text);
  textarea.focus();
});
textarea.addEventListener("keydown", function (ev) {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); composer.requestSubmit(); }
});
var lastTyping = 0;
textarea.addEventListener("input", function () {
  var now = Date.now();
  if (now - lastTyping > 2000) { lastTyping = now; send({ type: "typing" }); }
});
attachBtn.addEventListener("click", function () { fileInput.click(); });
fileInput.addEventListener("change", function () {
  var file = fileInput.files[0];
  fileInput.value = "";
  if (!file) return;
  if (file.size > C.maxBytes) { statusEl.textContent = T.file_too_large; return; }
  var reader = new FileReader();
  reader.onload = function () {
    var data = String(reader.result).split(",")[1] || "";
    sendMessage(textarea.value.trim(), [{ name: file.name, type: file.type, data: data }]);
    textarea.value = "";
  };
  reader.readAsDataURL(file);
});

// --- pre-chat, offline, callback, survey -------------------------------------------------------
function needsPrechat() {
  if (state.prechatDone || Object.keys(messages).length) return false;
  return ["name", "email", "phone"].some(function (k) { return C.prechat[k] && C.prechat[k] !== "off"; });
}

function showPrechat(offline) {
  prechat.textContent = "";
  ["name", "email", "phone"].forEach(function (k) {
    var mode = C.prechat[k];
    if (offline && k !== "name") mode = "optional";  // one of email or phone, checked on submit
    if (mode && mode !== "off") prechat.appendChild(field(k, T[k], k === "email" ? "email" : k === "phone" ? "tel" : "text", mode === "required"));
  });
  prechat.appendChild(el("button", { type: "submit", "class": "btn", text: offline ? T.leave : T.start }));
  prechat.hidden = false;
  composer.hidden = true;
  var first = prechat.querySelector("input");
  if (first && !panel.hidden) first.focus();
}

prechat.addEventListener("submit", function (ev) {
  ev.preventDefault();
  var profile = {};
  Array.prototype.forEach.call(prechat.querySelectorAll("input"), function (i) { if (i.value.trim()) profile[i.name] = i.value.trim(); });
  if (ready && !ready.open && !profile.email && !profile.phone) {
    statusEl.textContent = T.required;
    (prechat.querySelector("input[name=email]") || prechat.querySelector("input")).focus();
    return;
  }
  state.profilePending = profile;
  if (profile.email) state.email = profile.email;
  state.prechatDone = true;
  save();
  prechat.hidden = true;
  composer.hidden = false;
  statusEl.textContent = "";
  textarea.focus();
});

function showOffline(text) {
  system(text, offlineChoices);
  offlineChoices.textContent = "";
  offlineChoices.hidden = false;
  offlineChoices.appendChild(el("button", { type: "button", "class": "btn ghost", text: T.leave, onclick: function () { showPrechat(true); } }));
  offlineChoices.appendChild(el("button", { type: "button", "class": "btn ghost", text: T.callback, onclick: showCallback }));
  if (!state.prechatDone) showPrechat(true);
}

function showCallback() {
  callbackForm.textContent = "";
  callbackForm.appendChild(field("name", T.name, "text", false));
  callbackForm.appendChild(field("phone", T.phone, "tel", true));
  callbackForm.appendChild(el("label", {}, [T.time, el("input", { name: "time", type: "text" })]));
  callbackForm.appendChild(el("button", { type: "submit", "class": "btn", text: T.request }));
  callbackForm.hidden = false;
  prechat.hidden = true;
  composer.hidden = true;
  callbackForm.querySelector("input").focus();
}

callbackForm.addEventListener("submit", function (ev) {
  ev.preventDefault();
  var v = function (n) { return callbackForm.querySelector("[name=" + n + "]").value.trim(); };
  var frame = { type: "callback", id: newId(), phone: v("phone"), time: v("time"), name: v("name") };
  state.outbox.push(frame);
  save();
  send(frame);
  callbackForm.hidden = true;
  composer.hidden = false;
  system(T.callback_done);
});

function showSurvey(f) {
  var row = el("div", { "class": "survey", role: "group", "aria-label": f.question });
  for (var i = f.scale[0]; i <= f.scale[1]; i++) {
    (function (n) {
      row.appendChild(el("button", { type: "button", "aria-label": T.rate + " " + n, text: String(n), onclick: function () {
        send({ type: "survey_answer", id: f.id, rating: n });
        row.remove();
      } }));
    })(i);
  }
  system(f.question, row);
}

// --- menu: transcript by email, confirming the email ------------------------------------------
var toolRef = "", toolMode = "", toolEmail = "";

function visitorInfo(v) {
  if (!v) return;
  if (v.email && (v.email_verified || !state.email)) state.email = v.email;
  state.emailVerified = !!v.email_verified && v.email === state.email;
  save();
}

function menuItems() { return Array.prototype.slice.call(menu.querySelectorAll("[role=menuitem]")); }

function openMenu() {
  menu.textContent = "";
  menu.appendChild(el("button", { type: "button", role: "menuitem", tabindex: "-1", text: T.transcript, onclick: function () { closeMenu(false); showTool("transcript"); } }));
  if (!state.emailVerified) {
    menu.appendChild(el("button", { type: "button", role: "menuitem", tabindex: "-1", text: T.verify, onclick: function () { closeMenu(false); showTool("verify"); } }));
  }
  menu.hidden = false;
  menuBtn.setAttribute("aria-expanded", "true");
  menuItems()[0].focus();
}

function closeMenu(focusButton) {
  if (menu.hidden) return;
  menu.hidden = true;
  menuBtn.setAttribute("aria-expanded", "false");
  if (focusButton) menuBtn.focus();
}

menuBtn.addEventListener("click", function () { if (menu.hidden) openMenu(); else closeMenu(true); });
menuBtn.addEventListener("keydown", function (ev) {
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") { ev.preventDefault(); openMenu(); }
});
menu.addEventListener("keydown", function (ev) {
  var items = menuItems(), i = items.indexOf(root.activeElement);
  if (ev.key === "ArrowDown") { ev.preventDefault(); items[(i + 1) % items.length].focus(); }
  else if (ev.key === "ArrowUp") { ev.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
  else if (ev.key === "Home") { ev.preventDefault(); items[0].focus(); }
  else if (ev.key === "End") { ev.preventDefault(); items[items.length - 1].focus(); }
  else if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); closeMenu(true); }
  else if (ev.key === "Tab") { closeMenu(false); }
});
menu.addEventListener("focusout", function (ev) { if (!menu.contains(ev.relatedTarget) && ev.relatedTarget !== menuBtn) closeMenu(false); });

function fmt(text, values) { return text.replace(/%\((\w+)\)s/g, function (_m, k) { return values[k] == null ? "" : values[k]; }); }

function toolField(name, label, type, value, extra) {
  var attrs = { name: name, type: type, required: true, value: value || "" };
  for (var k in extra || {}) attrs[k] = extra[k];
  return el("label", {}, [label, el("input", attrs)]);
}

// One small form under the log: the transcript's address, or the two steps of confirming an email.
function showTool(mode, email) {
  toolMode = mode;
  toolRef = "";
  toolForm.textContent = "";
  var heading = mode === "transcript" ? T.transcript : T.verify;
  toolForm.setAttribute("aria-label", heading);
  if (mode === "verify") toolForm.appendChild(el("p", { "class": "hint", text: T.verify_intro }));
  if (mode === "code") {
    toolForm.appendChild(el("p", { "class": "hint", text: fmt(T.code_sent, { email: email, minutes: toolForm.minutes || "" }) }));
    toolForm.appendChild(toolField("code", T.code, "text", "", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: "8", pattern: "[0-9 ]*" }));
  } else {
    toolForm.appendChild(toolField("email", T.email, "email", state.email || "", { autocomplete: "email", maxlength: "254" }));
  }
  toolForm.appendChild(el("p", { "class": "error", role: "alert" }));
  var buttons = el("div", { "class": "choices" }, [
    el("button", { type: "submit", "class": "btn", text: mode === "transcript" ? T.send : mode === "verify" ? T.send_code : T.confirm }),
    mode === "code" ? el("button", { type: "button", "class": "btn ghost", text: T.resend, onclick: function () { showTool("verify"); } }) : null,
    el("button", { type: "button", "class": "btn ghost", text: T.cancel, onclick: function () { hideTool(true); } }),
  ]);
  toolForm.appendChild(buttons);
  toolForm.hidden = false;
  composer.hidden = true;
  toolForm.querySelector("input").focus();
}

function hideTool(focusMenu) {
  toolForm.hidden = true;
  toolMode = "";
  toolRef = "";
  composer.hidden = false;
  if (focusMenu) menuBtn.focus(); else textarea.focus();
}

function toolError(message) {
  var box = toolForm.querySelector(".error");
  if (box) box.textContent = message;
  var input = toolForm.querySelector("input");
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  toolForm.querySelector("[type=submit]").disabled = false;
  toolRef = "";
}

toolForm.addEventListener("submit", function (ev) {
  ev.preventDefault();
  var input = toolForm.querySelector("input");
  var value = input.value.trim();
  if (!value) { toolError(T.required); return; }
  if (toolRef) return;  // waiting for the answer
  var frame = { id: newId() };
  if (toolMode === "transcript") {
    frame.type = "transcript"; frame.email = value;
    try { frame.tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { frame.tz = ""; }
  } else if (toolMode === "verify") {
    frame.type = "email_code"; frame.email = value;
  } else {
    frame.type = "email_confirm"; frame.email = toolEmail; frame.code = value;
  }
  toolRef = frame.id;
  toolForm.querySelector(".error").textContent = "";
  if (!send(frame)) { toolError(T.offline); return; }
  toolForm.querySelector("[type=submit]").disabled = true;
});

function toolAnswer(f) {
  if (f.id !== toolRef) return;
  toolRef = "";
  if (f.type === "transcript_queued") {
    state.email = f.email; save();
    hideTool(false);
    system(fmt(T.transcript_sent, { email: f.email }));
  } else if (f.type === "email_code_sent") {
    toolEmail = f.email;
    toolForm.minutes = f.minutes;
    showTool("code", f.email);
  } else {
    state.email = f.email; save();
    visitorInfo(f.visitor);
    hideTool(false);
    // The history may now reach back further (earlier chats of the same customer): redraw it in order.
    log.textContent = "";
    messages = {};
    seenNode = null;
    if (f.greeting) system(f.greeting);
    (f.history || []).forEach(function (m) { render(m); });
    system(fmt(T.verified, { email: f.email }));
  }
}

// --- open and close ----------------------------------------------------------------------------
function setOpen(isOpen, focus) {
  panel.hidden = !isOpen;
  launcher.setAttribute("aria-expanded", String(isOpen));
  launcher.setAttribute("aria-label", isOpen ? T.close : T.open);
  state.open = isOpen;
  save();
  if (isOpen) {
    markRead();
    if (focus) (prechat.hidden ? textarea : prechat.querySelector("input") || textarea).focus();
  } else if (focus) {
    launcher.focus();
  }
}
launcher.addEventListener("click", function () { setOpen(panel.hidden, true); });
closeBtn.addEventListener("click", function () { setOpen(false, true); });
panel.addEventListener("keydown", function (ev) {
  if (ev.key !== "Escape") return;
  if (!toolForm.hidden && toolForm.contains(root.activeElement)) hideTool(true);
  else setOpen(false, true);
});
doc.addEventListener("visibilitychange", markRead);

function start() {
  doc.body.appendChild(host);
  // A link from an emailed reply (…#omnicenter-chat) opens the conversation.
  if (location.hash === "#omnicenter-chat") state.open = true;
  if (state.open) setOpen(true, false);
  if (typeof WebSocket === "undefined") { startPolling(); return; }
  connect();
}
if (doc.body) start(); else doc.addEventListener("DOMContentLoaded", start);
