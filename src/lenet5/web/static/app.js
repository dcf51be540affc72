// Draw a digit, watch LeNet-5 answer. Talks only to this server's /api/predict and /api/model.
"use strict";

const PEN_WIDTH = 22;        // canvas pixels on a 280-pixel pad: about MNIST's 2-3 px stroke after scaling to 20x20
const PAPER = "#ffffff";
const INK = "#000000";
const THROTTLE_MS = 120;     // at most ~8 predictions a second while the pen moves
const DIGITS = 10;

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const result = document.getElementById("result");
const digitEl = document.getElementById("digit");
const confidenceEl = document.getElementById("confidence");
const statusEl = document.getElementById("status");
const inputImg = document.getElementById("input");
const mapsEl = document.getElementById("maps");
const bars = buildBars(document.getElementById("bars"));

// `version` counts changes to the pad; a response is shown only if no Clear happened since
// its request, and the result element records which version it shows (tests wait on it).
let version = 0;
let clearedAt = 0;
let hasInk = false;
let lastPoint = null;
let inFlight = false;
let wanted = null;           // what to send next: {version, body, contentType} or a function making it
let lastSent = -Infinity;
let timer = null;

function buildBars(list) {
  const rows = [];
  for (let d = 0; d < DIGITS; d++) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span>` +
      `<span class="value">–</span>`;
    list.appendChild(li);
    rows.push({ li, fill: li.querySelector(".fill"), value: li.querySelector(".value") });
  }
  return rows;
}

function clearPad() {
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  version += 1;
  clearedAt = version;
  pad.dataset.version = String(version);
  wanted = null;
  showEmpty();
}

function showEmpty() {
  result.classList.add("empty");
  result.classList.remove("stale");
  result.dataset.version = String(version);
  digitEl.textContent = "?";
  digitEl.dataset.digit = "";
  confidenceEl.textContent = "";
  for (const bar of bars) { bar.fill.style.width = "0%"; bar.value.textContent = "–"; bar.li.classList.remove("top"); }
  inputImg.removeAttribute("src");
  mapsEl.replaceChildren();
  setStatus("Draw one digit, 0 to 9, large and centred.");
}

function setStatus(text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", isError);
}

// ---- drawing: pointer events cover mouse, pen and touch alike ----

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return { x: (event.clientX - box.left) * pad.width / box.width, y: (event.clientY - box.top) * pad.height / box.height };
}

function strokeTo(point) {
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  ctx.lineWidth = PEN_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (lastPoint === null) {
    ctx.beginPath();
    ctx.arc(point.x, point.y, PEN_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.moveTo(lastPoint.x, lastPoint.y);
    ctx.lineTo(point.x, point.y);
    ctx.stroke();
  }
  lastPoint = point;
  hasInk = true;
  version += 1;
  pad.dataset.version = String(version);
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  lastPoint = null;
  strokeTo(padPoint(event));
  predictPad();
});

pad.addEventListener("pointermove", (event) => {
  if (lastPoint === null) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of (events.length ? events : [event])) strokeTo(padPoint(e));
  predictPad();
});

function endStroke() {
  if (lastPoint === null) return;
  lastPoint = null;
  predictPad();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", clearPad);

// ---- upload: the file goes to the API as is; the pad shows a preview to draw over ----

document.getElementById("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  clearPad();
  drawPreview(file);
  const form = new FormData();
  form.append("file", file, file.name);
  hasInk = true;
  version += 1;
  pad.dataset.version = String(version);
  wanted = { version, body: form, contentType: null };
  pump();
});

function drawPreview(file) {
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    const scale = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * scale, h = img.height * scale;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  img.onerror = () => URL.revokeObjectURL(url);
  img.src = url;
}

// ---- prediction: throttled, one request in flight, newest drawing wins ----

function predictPad() {
  if (!hasInk) return;
  wanted = { version, body: null, contentType: "image/png" };
  pump();
}

function pump() {
  if (inFlight || wanted === null) return;
  const wait = lastSent + THROTTLE_MS - performance.now();
  if (wait > 0) {
    if (timer === null) timer = setTimeout(() => { timer = null; pump(); }, wait);
    return;
  }
  const job = wanted;
  wanted = null;
  inFlight = true;
  lastSent = performance.now();
  send(job).finally(() => { inFlight = false; pump(); });
}

async function send(job) {
  let body = job.body;
  if (body === null) {
    job.version = version;  // toBlob copies the pad now, so the reply is for the pad as it is now
    body = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  }
  const headers = job.contentType ? { "Content-Type": job.contentType } : {};
  let reply, payload;
  try {
    reply = await fetch("/api/predict", { method: "POST", body, headers });
    payload = await reply.json();
  } catch (error) {
    if (job.version >= clearedAt) showError(job.version, "The server did not answer: is `lenet5 serve` still running?");
    return;
  }
  if (job.version < clearedAt) return;  // the pad was cleared while this was on its way
  if (reply.ok) showPrediction(job.version, payload, job.body !== null);
  else showError(job.version, payload.error || `request failed (${reply.status})`);
}

function showPrediction(forVersion, payload, uploaded) {
  result.classList.remove("empty", "stale");
  result.dataset.version = String(forVersion);
  digitEl.textContent = String(payload.digit);
  digitEl.dataset.digit = String(payload.digit);
  confidenceEl.textContent = `${(payload.probability * 100).toFixed(1)}% sure`;
  payload.probabilities.forEach((p, d) => {
    bars[d].fill.style.width = `${(p * 100).toFixed(1)}%`;
    bars[d].value.textContent = `${(p * 100).toFixed(1)}%`;
    bars[d].li.classList.toggle("top", d === payload.digit);
  });
  inputImg.src = payload.image;
  showMaps(payload.feature_maps);
  // Preprocessing notes explain what happened to an uploaded file; for the pad they are always the same.
  if (uploaded) setStatus(payload.notes.length ? `Uploaded image: ${payload.notes.join("; ")}` : "Uploaded image.");
  else setStatus("Keep drawing, or clear and try another digit.");
}

function showMaps(featureMaps) {
  // Reuse the <img> elements while drawing, so the maps update without flicker.
  while (mapsEl.children.length > featureMaps.maps.length) mapsEl.lastChild.remove();
  while (mapsEl.children.length < featureMaps.maps.length) {
    const i = mapsEl.children.length;
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = `${featureMaps.stage} feature map ${i + 1}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `filter ${i + 1}`;
    figure.append(img, caption);
    mapsEl.appendChild(figure);
  }
  featureMaps.maps.forEach((src, i) => { mapsEl.children[i].querySelector("img").src = src; });
}

function showError(forVersion, message) {
  result.classList.add("stale");
  result.dataset.version = String(forVersion);
  digitEl.dataset.digit = "";
  setStatus(message, true);
}

async function showModelInfo() {
  try {
    const info = await (await fetch("/api/model")).json();
    const parts = [`LeNet-5, ${info.parameters.toLocaleString("en")} parameters`,
      `${info.training.model.activation} / ${info.training.model.pool} pooling`];
    if (info.test_accuracy !== null) parts.push(`${(info.test_accuracy * 100).toFixed(2)}% on the MNIST test set`);
    document.getElementById("model-info").textContent = parts.join(" · ");
  } catch (error) {
    // the page still works without the model description
  }
}

clearPad();
showModelInfo();
