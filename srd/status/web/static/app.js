// srd's status page: polls /api/status and /api/jobs and redraws. Every name shown comes from whoever
// wrote into the inbox, so text is only ever set with textContent, never parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
let actions = "off";
let recentKey = "";
let errorsKey = "";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  if (value < 10) return value.toFixed(1) + " s";
  if (value < 120) return Math.round(value) + " s";
  if (value < 7200) return Math.round(value / 60) + " min";
  return (value / 3600).toFixed(1) + " h";
}

function ago(epoch) {
  if (!epoch) return "";
  return seconds(Math.max(0, Date.now() / 1000 - epoch)) + " ago";
}

function agoIso(text) {
  const parsed = Date.parse(text);
  return Number.isNaN(parsed) ? String(text || "") : ago(parsed / 1000);
}

// Reasons often start with the file's name, which is shown beside them already.
function withoutName(reason, name) {
  const text = String(reason || "");
  const prefix = String(name) + ": ";
  return text.startsWith(prefix) ? text.slice(prefix.length) : text;
}

function size(pair) {
  return Array.isArray(pair) ? pair[0] + "\u00d7" + pair[1] : "";
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function renderStatus(s) {
  actions = s.actions || "off";
  const pill = $("state");
  pill.textContent = s.alive ? s.state : (s.state === "stopped" ? "stopped" : "not running");
  pill.className = "pill " + (s.alive ? s.state : "down");
  $("model").textContent = s.model || "\u2014";
  // Several workers (one per device) report themselves in `workers`; one worker has `device` only.
  const devices = (s.workers || []).map((w) => (w && (w.device || w.name)) || "").filter(Boolean);
  const device = devices.length ? devices.join(", ") : s.device;
  $("device").textContent = device ? "on " + device : "";
  $("updated").textContent = s.age !== null && s.age !== undefined ? "updated " + seconds(s.age) + " ago" : "";
  $("version-daemon").textContent = s.version ? "daemon " + s.version : "";
  const queue = s.queue || {};
  $("n-waiting").textContent = queue.waiting ?? 0;
  $("n-settling").textContent = queue.settling ?? 0;
  $("n-in-flight").textContent = (s.in_flight || []).length;
  $("n-done").textContent = s.done ?? 0;
  $("n-failed").textContent = s.failed ?? 0;
  const problem = $("problem");
  let text = s.problem || "";
  if (!text && !s.alive) text = "srd is not running (last state: " + s.state + ").";
  if (!s.alive && (s.left_in_work || []).length) {
    text += " Left in work/ for the next start: " + s.left_in_work.map((j) => j.input).join(", ");
  }
  problem.textContent = text;
  problem.hidden = !text;
  renderInFlight(s.in_flight || []);
}

function renderInFlight(jobs) {
  const box = $("in-flight");
  box.replaceChildren();
  if (!jobs.length) {
    box.append(el("p", "empty", "Nothing running. Drop images into the inbox."));
    return;
  }
  for (const job of jobs) {
    const card = el("div", "job");
    card.dataset.jobId = job.job_id;
    card.append(el("div", "name", job.input));
    const bar = el("div", "bar");
    const fill = el("div");
    bar.append(fill);
    const parts = [];
    const p = job.progress;
    if (job.fraction !== null && job.fraction !== undefined) {
      fill.style.width = (job.fraction * 100).toFixed(1) + "%";
      parts.push(Math.round(job.fraction * 100) + "%");
      if (p && p.total) parts.push(p.done + " / " + p.total + " " + (p.unit || ""));
    } else {
      bar.classList.add("indeterminate");
    }
    parts.push("running " + seconds(job.elapsed));
    if (job.eta !== null && job.eta !== undefined) parts.push("about " + seconds(job.eta) + " left");
    card.append(bar, el("div", "detail", parts.join(" \u00b7 ")));
    box.append(card);
  }
}

function renderRecent(jobs) {
  const key = jobs.map((j) => j.job_id + Object.keys(j.thumbnails || {}).join("")).join(",");
  const box = $("recent");
  if (key === recentKey) {
    for (const node of box.querySelectorAll("[data-finished]")) node.querySelector(".when").textContent = ago(Number(node.dataset.finished));
    return;
  }
  recentKey = key;
  box.replaceChildren();
  if (!jobs.length) {
    box.append(el("p", "empty", "No finished jobs yet."));
    return;
  }
  for (const job of jobs) {
    const card = el("div", "card " + job.outcome);
    card.dataset.jobId = job.job_id;
    card.dataset.finished = job.finished_at;
    const thumbs = job.thumbnails || {};
    if (thumbs.before && thumbs.after) {
      const pair = el("button", "pair");
      pair.type = "button";
      pair.title = "compare before and after";
      const before = el("img", "before");
      before.src = thumbs.before;
      before.alt = "before";
      const after = el("img", "after");
      after.src = thumbs.after;
      after.alt = "after";
      pair.append(before, after);
      pair.addEventListener("click", () => openViewer(job));
      card.append(pair);
    } else {
      const missing = el("div", "pair missing", job.outcome === "done" ? "no preview" : "\u2715");
      card.append(missing);
    }
    const body = el("div", "body");
    body.append(el("div", "name", job.input));
    if (job.outcome === "done") {
      const parts = [size(job.input_size) + " \u2192 " + size(job.output_size), seconds(job.seconds), bytes(job.output_bytes)];
      body.append(el("div", "detail", parts.filter(Boolean).join(" \u00b7 ")));
    } else {
      body.append(el("div", "reason", withoutName(job.reason || job.error_type || "failed", job.input)));
    }
    const where = [job.host, job.device].filter(Boolean).join(" ");  // host: a Celery worker host
    body.append(el("div", "detail when", ago(job.finished_at) + (where ? " \u00b7 on " + where : "")));
    card.append(body);
    box.append(card);
  }
}

function renderErrors(errors) {
  const key = errors.map((e) => e.job_id + ":" + e.failed_at).join(",") + actions;
  if (key === errorsKey) return;
  errorsKey = key;
  const body = document.querySelector("#errors tbody");
  body.replaceChildren();
  $("errors").hidden = !errors.length;
  $("token-box").hidden = actions !== "token" || !errors.length;
  $("no-errors").hidden = errors.length > 0;
  for (const error of errors) {
    const row = el("tr");
    row.dataset.jobId = error.job_id || "";
    const reason = withoutName(error.reason, error.input);
    row.append(el("td", "name", error.input), el("td", "reason", reason), el("td", "when", agoIso(error.failed_at)));
    const cell = el("td");
    if (actions !== "off" && error.job_id) {
      const button = el("button", "retry", "Retry");
      button.type = "button";
      button.addEventListener("click", () => retry(error.job_id, button, cell));
      cell.append(button);
    }
    row.append(cell);
    body.append(row);
  }
}

async function retry(jobId, button, cell) {
  button.disabled = true;
  const headers = { "X-CSRF-Token": csrf };
  if (actions === "token") headers.Authorization = "Bearer " + $("token").value;
  try {
    const response = await fetch("/api/errors/" + encodeURIComponent(jobId) + "/retry", { method: "POST", headers });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    cell.replaceChildren(el("span", "muted retried", "back in the inbox as " + answer.retried));
    errorsKey = "";
  } catch (err) {
    button.disabled = false;
    button.title = String(err.message || err);
    cell.append(el("div", "reason", String(err.message || err)));
  }
}

function setSplit(percent) {
  $("cmp-clip").style.clipPath = "inset(0 0 0 " + percent + "%)";
  $("cmp-line").style.left = percent + "%";
}

function openViewer(job) {
  $("viewer-title").textContent = job.input;
  $("cmp-before").src = job.thumbnails.before;
  $("cmp-after").src = job.thumbnails.after;
  $("viewer-info").textContent = size(job.input_size) + " \u2192 " + size(job.output_size) + " \u00b7 " + seconds(job.seconds);
  if (Array.isArray(job.output_size)) $("compare").style.aspectRatio = job.output_size[0] + " / " + job.output_size[1];
  $("cmp-slider").value = 50;
  setSplit(50);
  $("viewer").hidden = false;
}

$("cmp-slider").addEventListener("input", (event) => setSplit(event.target.value));
$("viewer-close").addEventListener("click", () => { $("viewer").hidden = true; });
$("viewer").addEventListener("click", (event) => { if (event.target === $("viewer")) $("viewer").hidden = true; });
document.addEventListener("keydown", (event) => { if (event.key === "Escape") $("viewer").hidden = true; });

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

async function refresh() {
  try {
    const [status, jobs] = await Promise.all([getJson("/api/status"), getJson("/api/jobs")]);
    renderStatus(status);
    renderRecent(jobs.recent || []);
    renderErrors(jobs.errors || []);
    document.body.dataset.refreshed = String(Date.now());
  } catch (err) {
    const pill = $("state");
    pill.textContent = "unreachable";
    pill.className = "pill down";
  }
  setTimeout(refresh, REFRESH_MS);
}

refresh();
