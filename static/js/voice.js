// Browser calling for agents (Twilio Voice JS SDK, vendored in static/vendor/).
//
// Asks the server for an access token (/app/voice/token/). Without a voice channel set up for
// browser calling the answer is 404 and nothing else happens (the SDK is not even loaded).
// Otherwise the SDK is loaded, the device registers as `agent-<id>` and incoming calls show the
// caller, a link to their profile when they are a known customer, and Accept / Decline.
// Elements with data-call-number="+48..." call that number when clicked (click-to-call), and
// data-take-queue="<team id>" takes the next caller waiting in that team's queue.
// No inline scripts or handlers: the pages' Content-Security-Policy forbids them.

const script = document.currentScript || document.querySelector("script[data-voice-token-url]");
const tokenUrl = script.dataset.voiceTokenUrl;
const sdkUrl = script.dataset.voiceSdkUrl;
const label = (name) => script.dataset[name] || "";

const phone = document.createElement("section");
phone.id = "oc-phone";
phone.className = "phone";
phone.dataset.state = "starting";
phone.setAttribute("aria-live", "polite");
phone.hidden = true;

function show(state, text) {
  phone.dataset.state = state;
  phone.querySelector(".phone-status").textContent = text || "";
}

function button(text, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  return b;
}

async function fetchToken() {
  const response = await fetch(tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) return null;
  return response.json();
}

function loadSdk() {
  return new Promise((resolve, reject) => {
    if (window.Twilio && window.Twilio.Device) return resolve(window.Twilio);
    const tag = document.createElement("script");
    tag.src = sdkUrl;
    tag.onload = () => resolve(window.Twilio);
    tag.onerror = () => reject(new Error("the voice SDK did not load"));
    document.head.appendChild(tag);
  });
}

function ringing(call) {
  const box = phone.querySelector(".phone-call");
  box.replaceChildren();
  const caller = document.createElement("span");
  const params = call.customParameters || new Map();
  caller.textContent = params.get("caller") || call.parameters.From || "";
  box.appendChild(caller);
  const customerUrl = params.get("customer_url");
  if (customerUrl && customerUrl.startsWith("/")) {
    const link = document.createElement("a");
    link.href = customerUrl;
    link.textContent = label("labelProfile");
    box.appendChild(link);
  }
  const accept = button(label("labelAccept"), "primary");
  const decline = button(label("labelDecline"), "danger");
  accept.addEventListener("click", () => {
    call.accept();
    show("in-call", label("labelInCall"));
    // The screen pop: open the caller's profile with their open tickets.
    if (customerUrl && customerUrl.startsWith("/")) window.open(customerUrl, "_blank", "noopener");
  });
  decline.addEventListener("click", () => call.reject());
  box.append(accept, decline);
  const done = () => { box.replaceChildren(); show("ready", label("labelReady")); };
  call.on("disconnect", done);
  call.on("cancel", done);
  call.on("reject", done);
  show("ringing", label("labelIncoming"));
}

async function start() {
  const first = await fetchToken();
  if (!first) return;
  phone.hidden = false;
  const status = document.createElement("span");
  status.className = "phone-status";
  const callBox = document.createElement("div");
  callBox.className = "phone-call";
  const queues = document.createElement("div");
  queues.className = "phone-queues";
  for (const queue of first.queues || []) {
    const take = button(`${label("labelTakeQueue")} ${queue.name}`, "take-queue");
    take.dataset.takeQueue = String(queue.team);
    queues.appendChild(take);
  }
  phone.append(status, callBox, queues);
  document.body.appendChild(phone);
  phone.dataset.identity = first.identity;
  show("loading", label("labelStarting"));
  let Twilio;
  try {
    Twilio = await loadSdk();
  } catch (error) {
    show("error", String(error.message || error));
    return;
  }
  const device = new Twilio.Device(first.token, { closeProtection: true, codecPreferences: ["opus", "pcmu"] });
  window.ocVoiceDevice = device;
  phone.dataset.sdkVersion = Twilio.Device.version || "";
  device.on("registered", () => show("ready", label("labelReady")));
  device.on("error", (error) => show("error", error.message || String(error)));
  device.on("incoming", ringing);
  device.on("tokenWillExpire", async () => {
    const next = await fetchToken();
    if (next) device.updateToken(next.token);
  });
  document.addEventListener("click", async (event) => {
    const target = event.target.closest("[data-call-number], [data-take-queue]");
    if (!target) return;
    event.preventDefault();
    const params = { To: target.dataset.callNumber || `queue:${target.dataset.takeQueue}` };
    if (target.dataset.ticket) params.ticket = target.dataset.ticket;
    const call = await device.connect({ params });
    show("in-call", label("labelInCall"));
    call.on("disconnect", () => show("ready", label("labelReady")));
  });
  show("registering", label("labelStarting"));
  device.register().catch((error) => show("error", error.message || String(error)));
}

start();
