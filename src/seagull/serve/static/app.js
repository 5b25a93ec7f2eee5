// The seagull page: upload a photo, click a point or drag a box (-> /v1/segment, then /v1/assess
// on the returned mask), or map every automatic region (-> /v1/map). Plain DOM, no framework.
// Server text is inserted with textContent only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");

const state = {
  file: null,        // the chosen File, sent with every request
  photo: null,       // HTMLImageElement of it
  overlay: null,     // image drawn over the photo (mask outline or heatmap)
  rect: null,        // a box to outline, in photo pixels {x, y, w, h}
  drag: null,        // {x0, y0, x1, y1} while the mouse is down
  last: null,        // the last JSON answer, for download
  mapData: null,
};

function mode() { return document.querySelector('input[name="mode"]:checked').value; }

function setState(s, message) {
  document.body.dataset.state = s;
  if (message !== undefined) $("status").textContent = message;
}

async function api(path, form) {
  const res = await fetch(path, { method: "POST", body: form });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    let msg = body && body.detail !== undefined ? body.detail : res.statusText;
    if (typeof msg !== "string") msg = JSON.stringify(msg);
    throw new Error(`${res.status}: ${msg}`);
  }
  return body;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const im = new Image();
    im.onload = () => resolve(im);
    im.onerror = () => reject(new Error("the browser cannot show this file as an image"));
    im.src = src;
  });
}

function draw() {
  if (!state.photo) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(state.photo, 0, 0, canvas.width, canvas.height);
  if (state.overlay) ctx.drawImage(state.overlay, 0, 0, canvas.width, canvas.height);
  const lw = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 300));
  if (state.rect) {
    ctx.lineWidth = lw;
    ctx.strokeStyle = "#ffffff";
    ctx.setLineDash([]);
    ctx.strokeRect(state.rect.x, state.rect.y, state.rect.w, state.rect.h);
  }
  if (state.drag) {
    const d = state.drag;
    ctx.lineWidth = lw;
    ctx.strokeStyle = "#0a84c6";
    ctx.setLineDash([6 * lw, 3 * lw]);
    ctx.strokeRect(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
    ctx.setLineDash([]);
  }
}

// Mouse position in photo pixels (the canvas holds the photo at full resolution, CSS scales it).
function toPhoto(ev) {
  const r = canvas.getBoundingClientRect();
  const x = (ev.clientX - r.left) * canvas.width / r.width;
  const y = (ev.clientY - r.top) * canvas.height / r.height;
  return {
    x: Math.min(canvas.width - 1, Math.max(0, Math.round(x))),
    y: Math.min(canvas.height - 1, Math.max(0, Math.round(y))),
  };
}

async function choose(file) {
  if (!file) return;
  setState("busy", `Opening ${file.name}…`);
  try {
    const url = URL.createObjectURL(file);
    state.photo = await loadImage(url);
  } catch (e) {
    setState("error", e.message);
    return;
  }
  state.file = file;
  state.overlay = state.rect = state.last = state.mapData = null;
  canvas.width = state.photo.naturalWidth;
  canvas.height = state.photo.naturalHeight;
  $("result").hidden = $("map-result").hidden = true;
  $("download").disabled = true;
  $("map-run").disabled = false;
  draw();
  setState("ready", mode() === "map"
    ? "Press “Map every region”."
    : `${file.name}: ${canvas.width}×${canvas.height}. Click a point or drag a box on the photo.`);
}

function fmt(v) { return v === null || v === undefined ? "–" : v.toFixed(3); }

function levelColour(score, invert) {
  if (score === null || score === undefined) return "#5d6875";
  const s = invert ? 1 - score : score;
  const r = Math.round(255 * Math.min(1, 2 * (1 - s)));
  const g = Math.round(200 * Math.min(1, 2 * s));
  return `rgb(${r},${g},40)`;
}

function showRegion(roi, seg) {
  $("map-result").hidden = true;
  $("result").hidden = false;
  $("result-title").textContent = `Selected region (${seg.method})`;
  for (const key of ["quality", "importance"]) {
    $(key).textContent = fmt(roi[key]);
    const lvl = $(`${key}-level`);
    lvl.textContent = roi[`${key}_level`] || "–";
    lvl.style.background = levelColour(roi[key], key === "importance");
    $(`${key}-bar`).style.width = `${Math.round(100 * (roi[key] || 0))}%`;
  }
  const body = $("distortions").querySelector("tbody");
  body.replaceChildren();
  const rows = [...roi.distortions].sort((a, b) => b.confidence - a.confidence);
  for (const d of rows) {
    const tr = document.createElement("tr");
    if (d.present) tr.className = "present";
    for (const text of [d.type, d.present ? "yes" : "no", d.confidence.toFixed(2),
                        `${d.severity_level} (${d.severity.toFixed(2)})`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  const pct = (100 * roi.area / (canvas.width * canvas.height)).toFixed(1);
  $("region-meta").textContent = `box ${roi.bbox.join(", ")} (x, y, w, h) · ${roi.area} px (${pct} % of the photo)`;
}

async function segmentAndAssess(prompt) {
  setState("busy", "Segmenting…");
  state.rect = prompt.box ? { x: prompt.box[0], y: prompt.box[1], w: prompt.box[2], h: prompt.box[3] } : null;
  state.overlay = null;
  draw();
  try {
    const f = new FormData();
    f.append("image", state.file);
    if (prompt.point) f.append("point", prompt.point.join(","));
    else f.append("box", prompt.box.join(","));
    const seg = await api("/v1/segment", f);
    state.overlay = await loadImage(`data:image/png;base64,${seg.outline_png}`);
    draw();
    setState("busy", "Assessing the region…");
    const g = new FormData();
    g.append("image", state.file);
    g.append("rois", JSON.stringify([{ name: "selection", rle: seg.rle }]));
    const res = await api("/v1/assess", g);
    const roi = res.rois[0];
    state.last = { ...res, prompt: seg.prompt, segmentation: { method: seg.method, rle: seg.rle } };
    showRegion(roi, seg);
    $("download").disabled = false;
    setState("done", `Region quality ${roi.quality_level} (${fmt(roi.quality)}), importance ${roi.importance_level}.`);
  } catch (e) {
    setState("error", e.message);
  }
}

async function runMap() {
  if (!state.file) return;
  setState("busy", "Finding and assessing every region…");
  state.rect = null;
  try {
    const f = new FormData();
    f.append("image", state.file);
    f.append("by", $("map-by").value);
    const res = await api("/v1/map", f);
    state.mapData = res;
    state.last = res;
    state.overlay = res.rois.length ? await loadImage(`data:image/png;base64,${res.heatmap_png}`) : null;
    draw();
    showWorst(res);
    $("download").disabled = false;
    setState("done", res.rois.length
      ? `${res.rois.length} regions, coloured by ${res.by}.`
      : "No regions were found in this photo.");
  } catch (e) {
    setState("error", e.message);
  }
}

function showWorst(res) {
  // The heatmap colours importance inverted (red = important), as `seagull map` does.
  const imp = res.by === "importance";
  $("legend-low").textContent = imp ? "important" : "poor";
  $("legend-high").textContent = imp ? "unimportant" : "good";
  $("result").hidden = true;
  $("map-result").hidden = false;
  const list = $("worst");
  list.replaceChildren();
  const byName = Object.fromEntries(res.rois.map((r) => [r.name, r]));
  for (const name of res.worst) {
    const r = byName[name];
    const li = document.createElement("li");
    li.textContent = `${name}: quality ${r.quality_level} (${fmt(r.quality)}), importance ${r.importance_level} (${fmt(r.importance)})`;
    li.addEventListener("click", () => {
      for (const el of list.children) el.classList.remove("active");
      li.classList.add("active");
      const s = res.scale;  // the map works on a copy; scale its boxes back to the photo
      state.rect = { x: r.bbox[0] / s, y: r.bbox[1] / s, w: r.bbox[2] / s, h: r.bbox[3] / s };
      draw();
    });
    list.appendChild(li);
  }
}

function download() {
  if (!state.last) return;
  const blob = new Blob([JSON.stringify(state.last, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  const stem = (state.file ? state.file.name.replace(/\.[^.]*$/, "") : "seagull");
  a.download = `${stem}-${mode()}.json`;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// ---------------------------------------------------------------- events

canvas.addEventListener("mousedown", (ev) => {
  if (!state.file || mode() !== "region" || document.body.dataset.state === "busy") return;
  const p = toPhoto(ev);
  state.drag = { x0: p.x, y0: p.y, x1: p.x, y1: p.y };
});
// In the map view, the region under the pointer (by its box; of overlapping boxes the one whose
// centre is nearest, i.e. the tile the pointer is most inside) and its numbers.
function regionAt(res, p) {
  const x = p.x * res.scale, y = p.y * res.scale;
  let best = null, bestD = Infinity;
  for (const r of res.rois) {
    const [bx, by, bw, bh] = r.bbox;
    if (x < bx || y < by || x >= bx + bw || y >= by + bh) continue;
    const d = Math.hypot(x - (bx + bw / 2), y - (by + bh / 2));
    if (d < bestD) { best = r; bestD = d; }
  }
  return best;
}

canvas.addEventListener("mousemove", (ev) => {
  if (!state.drag && mode() === "map" && state.mapData) {
    const r = regionAt(state.mapData, toPhoto(ev));
    if (r) $("hover").textContent =
      `${r.name}: quality ${r.quality_level} (${fmt(r.quality)}), importance ${r.importance_level} (${fmt(r.importance)})`;
  }
  if (!state.drag) return;
  const p = toPhoto(ev);
  state.drag.x1 = p.x;
  state.drag.y1 = p.y;
  draw();
});
window.addEventListener("mouseup", (ev) => {
  if (!state.drag) return;
  const d = state.drag;
  state.drag = null;
  const p = toPhoto(ev);
  d.x1 = p.x;
  d.y1 = p.y;
  const w = Math.abs(d.x1 - d.x0), h = Math.abs(d.y1 - d.y0);
  // A few screen pixels of movement still count as a click.
  const r = canvas.getBoundingClientRect();
  const slop = 4 * canvas.width / r.width;
  if (w <= slop && h <= slop) segmentAndAssess({ point: [d.x0, d.y0] });
  else segmentAndAssess({ box: [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(1, w), Math.max(1, h)] });
});

$("file").addEventListener("change", (ev) => choose(ev.target.files[0]));
$("map-run").addEventListener("click", runMap);
$("download").addEventListener("click", download);
for (const r of document.querySelectorAll('input[name="mode"]')) {
  r.addEventListener("change", () => {
    const map = mode() === "map";
    $("map-controls").hidden = !map;
    state.overlay = state.rect = null;
    if (map && state.mapData) {
      loadImage(`data:image/png;base64,${state.mapData.heatmap_png}`).then((im) => { state.overlay = im; draw(); });
      showWorst(state.mapData);
    } else {
      $("map-result").hidden = true;
    }
    draw();
    if (state.file) setState("ready", map ? "Press “Map every region”." : "Click a point or drag a box on the photo.");
  });
}

fetch("/v1/models").then((r) => r.json()).then((m) => {
  const md = m.models[0];
  $("model-info").textContent =
    `Model: ${md.id} (${(md.parameters / 1e6).toFixed(1)} M parameters, ${md.device}) · prompts: ${m.segmenter}`;
}).catch(() => { $("model-info").textContent = "model information unavailable"; });
