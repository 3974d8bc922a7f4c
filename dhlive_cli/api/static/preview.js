// dhlive preview page: one WebRTC connection to the chosen session (offer/answer over HTTP,
// WHEP-style), the session's figures from /v1/sessions/NAME/status once a second, and buttons
// that feed the session (audio file, microphone over WebRTC) or interrupt it.
// Served by the API itself: same origin, no CDN, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem("dhlive-token") || "",
  session: null,
  pc: null,
  location: null,   // URL of our viewer resource on the server (DELETE hangs up)
  mic: null,        // MediaStream of the microphone while talking
  status: {},       // last /status answer, as shown
  received: {},     // last getStats figures, as shown
};
window.dhlivePreview = state;  // for tests and the curious: the figures the page shows

// A token can be handed over in the fragment (#token=...), which the browser never sends anywhere.
(function tokenFromFragment() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    state.token = decodeURIComponent(m[1]);
    sessionStorage.setItem("dhlive-token", state.token);
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  return fetch(path, Object.assign({}, opts, { headers, cache: "no-store" })).then((r) => {
    if (r.status === 401) { $("auth").hidden = false; }
    return r;
  });
}

function note(text) { $("note").textContent = text || ""; }
function setConn(text, cls) { const c = $("conn"); c.textContent = text; c.className = "pill " + (cls || ""); }
function base() { return "/v1/sessions/" + encodeURIComponent(state.session); }

async function loadSessions() {
  const r = await api("/v1/sessions");
  if (!r.ok) { note("cannot list sessions: " + r.status); return; }
  const body = await r.json();
  const sel = $("session");
  const names = body.sessions;
  const keep = state.session;
  sel.replaceChildren(...names.map((n) => new Option(n, n)));
  const wanted = new URLSearchParams(location.search).get("session");
  const pick = [keep, wanted].find((n) => n && names.includes(n)) || names[0];
  if (pick) { sel.value = pick; if (pick !== state.session) connect(pick); }
  else note("no session is running");
}

function waitForIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
    });
  });
}

async function hangUp() {
  const pc = state.pc, loc = state.location;
  state.pc = null; state.location = null;
  if (pc) pc.close();
  if (loc) { try { await api(loc, { method: "DELETE", keepalive: true }); } catch (e) { /* gone already */ } }
}

async function connect(name) {
  await hangUp();
  state.session = name;
  setConn("connecting", "");
  const pc = new RTCPeerConnection();
  state.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  if (state.mic) pc.addTransceiver(state.mic.getAudioTracks()[0], { direction: "sendrecv" });
  else pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  $("avatar").srcObject = stream;
  pc.ontrack = (ev) => {
    // a preview is live: ask for the smallest playout delay the network allows (the default
    // favours smoothness and lets the audio jitter buffer, which the video waits for, grow)
    if ("jitterBufferTarget" in ev.receiver) ev.receiver.jitterBufferTarget = 0;
    stream.addTrack(ev.track);
  };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    setConn(s, s === "connected" ? "ok" : (s === "failed" || s === "closed") ? "bad" : "");
    // the server restarted or the network dropped: try again while this is still our connection
    if (s === "failed") setTimeout(() => { if (state.pc === pc) connect(state.session); }, 3000);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc, 3000);  // one request carries every candidate (no trickle)
  const r = await api(base() + "/webrtc", {
    method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
  });
  if (state.pc !== pc) return;  // another session was chosen meanwhile
  if (r.status !== 201) {
    let why = r.status + "";
    try { why = (await r.json()).error; } catch (e) { /* not JSON */ }
    setConn("refused", "bad"); note(why); pc.close(); state.pc = null;
    return;
  }
  state.location = r.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
}

function show(dl, values, format) {
  for (const dd of $(dl).querySelectorAll("dd[data-key]")) {
    const v = values[dd.dataset.key];
    dd.textContent = v === undefined || v === null ? "-" : format(dd.dataset.key, v);
  }
}

async function pollStatus() {
  if (!state.session) return;
  const r = await api(base() + "/status");
  if (!r.ok) return;
  state.status = await r.json();
  show("status", state.status, (k, v) =>
    k === "fps" ? v.toFixed(2) : k === "queued_speech_s" ? v.toFixed(1) + " s" : String(v));
}

let lastVideo = null;
async function pollStats() {
  const pc = state.pc;
  if (!pc) return;
  const report = await pc.getStats();
  const got = {};
  report.forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") {
      got.framesDecoded = s.framesDecoded || 0;
      const c = s.codecId && report.get(s.codecId);
      got.codec = c ? c.mimeType.replace("video/", "") : "-";
      const now = s.timestamp;
      if (lastVideo && now > lastVideo.t) got.fps = ((got.framesDecoded - lastVideo.n) * 1000 / (now - lastVideo.t));
      lastVideo = { t: now, n: got.framesDecoded };
    } else if (s.kind === "audio") {
      got.audioLevel = s.audioLevel || 0;
      got.totalAudioEnergy = s.totalAudioEnergy || 0;
    }
  });
  state.received = got;
  show("received", got, (k, v) => k === "fps" ? v.toFixed(1) : k === "audioLevel" ? v.toFixed(3) : String(v));
}

async function sendFile(file) {
  if (!file || !state.session) return;
  note("sending " + file.name + " ...");
  const r = await api(base() + "/speak", {
    method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file,
  });
  let body = {};
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  note(r.ok ? "queued " + file.name : "refused: " + (body.error || r.status));
}

async function toggleMic() {
  const b = $("mic");
  if (state.mic) {
    state.mic.getTracks().forEach((t) => t.stop());
    state.mic = null;
    b.classList.remove("on"); b.textContent = "Talk (microphone)";
  } else {
    try {
      state.mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (e) { note("microphone: " + e.message); return; }
    b.classList.add("on"); b.textContent = "Stop talking";
  }
  if (state.session) connect(state.session);  // renegotiate with (or without) the microphone
}

async function interrupt() {
  if (!state.session) return;
  const r = await api(base() + "/interrupt", { method: "POST" });
  note(r.ok ? "interrupted" : "interrupt refused: " + r.status);
}

window.addEventListener("DOMContentLoaded", () => {
  $("session").addEventListener("change", (e) => connect(e.target.value));
  $("file").addEventListener("change", (e) => { sendFile(e.target.files[0]); e.target.value = ""; });
  $("mic").addEventListener("click", toggleMic);
  $("interrupt").addEventListener("click", interrupt);
  $("auth").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("dhlive-token", state.token);
    $("auth").hidden = true;
    loadSessions();
  });
  loadSessions();
  setInterval(pollStatus, 1000);
  setInterval(pollStats, 1000);
  setInterval(() => { if (!state.pc) loadSessions(); }, 5000);
});
window.addEventListener("pagehide", () => {
  if (state.location) fetch(state.location, { method: "DELETE", keepalive: true,
    headers: state.token ? { Authorization: "Bearer " + state.token } : {} });
});
