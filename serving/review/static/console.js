// Counterpoint moderator console: plain JS, no build step. It speaks to the same /v1 API as any client, with the
// API key kept in sessionStorage (gone when the tab closes). Evidence offsets from the API count Unicode code
// points, so texts are sliced with Array.from(), never with UTF-16 string indices (emojis would shift the spans).
"use strict";

const LABELS = ["extremist", "counter_narrative", "neutral"];
const NAMES = { extremist: "extremist", counter_narrative: "counter-narrative", neutral: "neutral" };
const RTL_CHAR = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]/;
const STRONG_CHAR = /[A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]/;
const $ = (id) => document.getElementById(id);
const state = { info: null, item: null, busy: false, decided: 0 };

// -- API -----------------------------------------------------------------------------------------------------
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const key = sessionStorage.getItem("cp-key");
  if (key) headers["Authorization"] = "Bearer " + key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error((data.error && data.error.message) || res.status + " " + res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

// -- text direction and evidence -----------------------------------------------------------------------------
function direction(text, language) {
  if (language === "ur") return "rtl";
  const first = Array.from(text).find((c) => STRONG_CHAR.test(c));  // first strong character, as dir=auto does
  return first && RTL_CHAR.test(first) ? "rtl" : "ltr";
}

function renderPost(text, evidence, language) {
  const el = document.createElement("p");
  el.className = "post";
  const dir = direction(text, language);
  el.dir = dir;
  if (dir === "rtl") el.lang = "ur";
  const cps = Array.from(text);
  const spans = (evidence || []).slice().sort((a, b) => a.start - b.start);
  const top = Math.max(0.05, ...spans.map((s) => s.weight));
  let at = 0;
  for (const s of spans) {
    if (s.start < at || s.end > cps.length) continue;  // overlapping or out of range: never scramble the text
    el.append(cps.slice(at, s.start).join(""));
    const mark = document.createElement("mark");
    mark.className = "ev ev-" + s.label;
    mark.dataset.start = s.start;
    mark.dataset.label = s.label;
    mark.dataset.weight = s.weight;
    mark.style.setProperty("--a", (0.15 + 0.55 * Math.min(1, s.weight / top)).toFixed(2));
    mark.title = NAMES[s.label] + " evidence: log-odds −" + s.weight.toFixed(2) + " without this word";
    mark.textContent = cps.slice(s.start, s.end).join("");
    el.append(mark);
    at = s.end;
  }
  el.append(cps.slice(at).join(""));
  return el;
}

function profileOf(name) {
  const info = state.info;
  if (!info) return null;
  return info.profiles[name || $("profile").value || info.default_profile] || null;
}

function renderScores(result, profileName) {
  const box = document.createElement("div");
  box.className = "scores";
  const prof = profileOf(profileName);
  const thresholds = result.thresholds || (prof && prof.thresholds) || {};
  const band = result.review_band !== undefined ? result.review_band : prof && prof.review_band;
  for (const label of LABELS) {
    const p = result.scores[label];
    const name = document.createElement("span");
    name.textContent = NAMES[label];
    const bar = document.createElement("div");
    bar.className = "bar " + label;
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", NAMES[label] + " " + p.toFixed(3));
    const fill = document.createElement("span");
    fill.style.width = (100 * p).toFixed(1) + "%";
    bar.append(fill);
    if (label === "extremist" && band) {
      const b = document.createElement("i");
      b.className = "band";
      b.style.left = (100 * band[0]) + "%";
      b.style.width = (100 * (band[1] - band[0])) + "%";
      b.title = "review band [" + band[0] + ", " + band[1] + ")";
      bar.append(b);
    }
    if (label === "extremist" && thresholds.extremist !== undefined) {
      const t = document.createElement("i");
      t.className = "thr";
      t.style.left = (100 * thresholds.extremist) + "%";
      t.title = "flag threshold " + thresholds.extremist;
      bar.append(t);
    }
    const value = document.createElement("span");
    value.textContent = p.toFixed(3);
    box.append(name, bar, value);
  }
  return box;
}

function badge(text, cls) {
  const b = document.createElement("span");
  b.className = "badge " + cls;
  b.textContent = text;
  return b;
}

function renderResult(text, result, profileName) {
  const card = document.createElement("article");
  card.className = "card result";
  card.dataset.label = result.label;
  card.append(renderPost(text, result.evidence, result.language));
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.append(badge(NAMES[result.label], result.label));
  if (result.flagged) meta.append(badge("flagged", "flag"));
  if (result.review) meta.append(badge("review band", "review"));
  const lang = document.createElement("span");
  lang.className = "muted";
  lang.textContent = "language: " + result.language;
  meta.append(lang);
  card.append(meta, renderScores(result, profileName));
  return card;
}

// -- classify pane --------------------------------------------------------------------------------------------
function postsFromBox() {
  return $("posts").value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
}

async function classify() {
  const texts = postsFromBox();
  if (!texts.length) return;
  const status = $("classify-status");
  status.textContent = "classifying…";
  status.className = "muted";
  const profile = $("profile").value || undefined;
  try {
    const out = $("results");
    out.replaceChildren();
    const limit = (state.info && state.info.limits.max_texts_per_request) || 16;
    const step = Math.min(limit, 8);  // explain costs a model call per word: small requests
    for (let i = 0; i < texts.length; i += step) {
      const chunk = texts.slice(i, i + step);
      const data = await api("POST", "/v1/classify", { texts: chunk, explain: true, profile });
      data.results.forEach((r, j) => out.append(renderResult(chunk[j], r, profile)));
    }
    status.textContent = texts.length + " classified";
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  }
}

async function enqueue() {
  const texts = postsFromBox();
  if (!texts.length) return;
  const status = $("classify-status");
  try {
    const data = await api("POST", "/v1/review/items", { texts, profile: $("profile").value || undefined });
    status.textContent = data.items.length + " sent to the review queue";
    status.className = "done";
    refreshStats();
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  }
}

async function upload(ev) {
  const file = ev.target.files[0];
  if (!file) return;
  const raw = await file.text();
  let posts;
  if (file.name.endsWith(".jsonl")) {
    posts = raw.split(/\r?\n/).filter(Boolean).map((line) => {
      try { return JSON.parse(line).text || ""; } catch (_) { return ""; }
    });
  } else {
    posts = raw.split(/\r?\n/);
  }
  $("posts").value = posts.map((s) => s.replace(/\s*\n\s*/g, " ").trim()).filter(Boolean).join("\n");
}

// -- review queue --------------------------------------------------------------------------------------------
function moderator() {
  return $("moderator").value.trim();
}

function setQueueStatus(text, cls) {
  $("queue-status").textContent = text;
  $("queue-status").className = cls || "muted";
}

async function refreshStats() {
  try {
    const s = await api("GET", "/v1/review/stats");
    $("queue-stats").textContent = "· open " + s.open + " · disputed " + s.disputed + " · appealed " + s.appealed +
      " · decided " + s.decided;
  } catch (_) { /* stats are a nicety */ }
}

async function next() {
  if (state.busy) return;
  if (!moderator()) {
    setQueueStatus("Enter your name in the Moderator field first.", "error");
    $("moderator").focus();
    return;
  }
  state.busy = true;
  const box = $("queue-item");
  try {
    const data = await api("GET", "/v1/review/next?limit=1&moderator=" + encodeURIComponent(moderator()));
    state.item = data.items[0] || null;
    if (!state.item) {
      box.className = "card empty";
      box.textContent = "The queue is empty.";
      setQueueStatus("Nothing to review. Decided this session: " + state.decided);
      return;
    }
    const item = state.item;
    let evidence = [];
    if (item.text_available) {
      try {
        const ex = await api("POST", "/v1/classify", { texts: [item.text], explain: true, profile: item.profile });
        evidence = ex.results[0].evidence || [];
      } catch (_) { /* evidence is optional; the decision is not */ }
    }
    box.className = "card queued";
    box.dataset.item = item.id;
    box.replaceChildren();
    box.append(item.text_available ? renderPost(item.text, evidence, item.language)
      : Object.assign(document.createElement("p"), { className: "post muted",
        textContent: "Text not stored (COUNTERPOINT_STORE_TEXTS is off). Source id: " + (item.source_id || item.id) }));
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.append(badge("model: " + NAMES[item.label], item.label));
    if (item.flagged) meta.append(badge("flagged", "flag"));
    if (item.review) meta.append(badge("review band", "review"));
    if (item.status !== "open") meta.append(badge(item.status, "review"));
    const info = document.createElement("span");
    info.className = "muted";
    info.textContent = "model " + item.model.version + " · profile " + item.profile + " · " + item.language;
    meta.append(info);
    box.append(meta, renderScores(item, item.profile));
    const past = item.events.filter((e) => e.kind !== "skip");
    if (past.length) {
      const ul = document.createElement("ul");
      ul.className = "trail";
      for (const e of past) {
        const li = document.createElement("li");
        li.textContent = e.kind.replace("_", " ") + (e.label ? ": " + NAMES[e.label] : "") +
          (e.reason ? " — " + e.reason : "") + " (" + e.moderator + ")";
        ul.append(li);
      }
      box.append(ul);
    }
    setQueueStatus("a accept · 1/2/3 correct · r reason · s skip");
    box.focus();
  } catch (e) {
    setQueueStatus(e.message, "error");
  } finally {
    state.busy = false;
  }
}

async function decide(label) {
  const item = state.item;
  if (!item || state.busy) return;
  state.busy = true;
  const reason = $("reason").value.trim() || undefined;
  try {
    const out = await api("POST", "/v1/review/items/" + item.id + "/decisions",
      { label: label || item.label, reason, moderator: moderator() });
    state.decided += 1;
    document.body.dataset.decided = state.decided;
    state.item = null;
    $("queue-item").className = "card loading";  // keys wait until the next post is on screen
    $("reason").value = "";
    setQueueStatus("Decided " + NAMES[out.label] + " (" + out.status + "). Decided this session: " + state.decided,
      "done");
  } catch (e) {
    setQueueStatus(e.message, "error");
    state.busy = false;
    return;
  }
  state.busy = false;
  refreshStats();
  await next();
}

async function skip() {
  const item = state.item;
  if (!item || state.busy) return;
  try {
    await api("POST", "/v1/review/items/" + item.id + "/skip", { moderator: moderator() });
  } catch (e) {
    setQueueStatus(e.message, "error");
  }
  state.item = null;
  $("queue-item").className = "card loading";
  await next();
}

function onKey(ev) {
  const target = ev.target;
  if (target && target.id === "reason" && (ev.key === "Enter" || ev.key === "Escape")) {
    ev.preventDefault();
    $("queue-item").focus();
    return;
  }
  if (target && target.id === "posts" && ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
    ev.preventDefault();
    classify();
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;  // typing, not commanding
  const actions = {
    n: () => next(), a: () => decide(null), s: () => skip(),
    "1": () => decide("extremist"), "2": () => decide("counter_narrative"), "3": () => decide("neutral"),
    r: () => $("reason").focus(),
  };
  const action = actions[ev.key.toLowerCase()];
  if (action) {
    ev.preventDefault();
    action();
  }
}

// -- start ---------------------------------------------------------------------------------------------------
async function loadInfo() {
  try {
    state.info = await api("GET", "/v1/info");
    const select = $("profile");
    select.replaceChildren();
    for (const name of Object.keys(state.info.profiles)) {
      const opt = document.createElement("option");
      opt.value = name;
      opt.textContent = name;
      opt.selected = name === state.info.default_profile;
      select.append(opt);
    }
    $("model").textContent = state.info.model.name + " " + state.info.model.version + " · " + state.info.model.backend;
    $("model").className = "muted";
    refreshStats();
  } catch (e) {
    $("model").textContent = e.status === 401 ? "enter an API key" : e.message;
    $("model").className = "error";
  }
}

function init() {
  const key = $("api-key"), mod = $("moderator");
  key.value = sessionStorage.getItem("cp-key") || "";
  mod.value = sessionStorage.getItem("cp-moderator") || "";
  key.addEventListener("change", () => { sessionStorage.setItem("cp-key", key.value.trim()); loadInfo(); });
  mod.addEventListener("change", () => sessionStorage.setItem("cp-moderator", mod.value.trim()));
  $("classify").addEventListener("click", classify);
  $("enqueue").addEventListener("click", enqueue);
  $("upload").addEventListener("change", upload);
  document.addEventListener("keydown", onKey);
  document.body.dataset.ready = "1";
  loadInfo();
}

init();
