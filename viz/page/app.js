// The conc monitor page. It polls snapshot.json and redraws. Every string
// that comes from the program (pipeline, stage and watched names, errors)
// reaches the page only through textContent or setAttribute, never through
// HTML parsing, so a name such as <img src=x onerror=...> shows as text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 500;
const BOX_W = 172, BOX_H = 112, GAP = 66, PAD_X = 8, PAD_TOP = 26, PAD_BOTTOM = 10;

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs || {}) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtInt(n) {
  return Math.round(n).toLocaleString("en-US");
}

function fmtRate(r) {
  if (r >= 100) return fmtInt(r);
  if (r >= 10) return r.toFixed(1);
  return r.toFixed(2);
}

function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function pct(f) {
  return Math.round(100 * f) + "%";
}

// drawNode returns the SVG group of one pipeline node at x.
function drawNode(n, x, y) {
  const g = svg("g", {
    class: "node", transform: `translate(${x},${y})`,
    "data-id": n.id, "data-kind": n.kind, "data-in": n.in, "data-out": n.out,
    "data-bottleneck": n.bottleneck ? "true" : "false", "data-stalled": n.stalled ? "true" : "false",
  });
  let tip = n.name + " (" + n.kind + ")";
  for (const st of n.stages) {
    tip += `\n  ${st.name} [${st.kind}]: in ${fmtInt(st.in)}, out ${fmtInt(st.out)}`;
    if (st.dropped > 0) tip += `, dropped ${fmtInt(st.dropped)}`;
    if (st.errors > 0) tip += `, errors ${fmtInt(st.errors)}`;
  }
  g.appendChild(svg("title", {}, tip));
  let cls = "box";
  if (!n.timed) cls += " untimed";
  else cls += " " + n.backpressure;
  if (n.bottleneck) cls += " bn";
  if (n.stalled) cls += " stalled";
  g.appendChild(svg("rect", { class: cls, width: BOX_W, height: BOX_H, rx: 8 }));

  // A long name is squeezed to fit the box, up to 40 characters, and
  // clipped beyond; the tooltip has it whole.
  const name = svg("text", { class: "name", x: 10, y: 20 });
  name.textContent = clip(n.name, 40);
  if (name.textContent.length * 7.6 > BOX_W - 20) {
    name.setAttribute("textLength", BOX_W - 20);
    name.setAttribute("lengthAdjust", "spacingAndGlyphs");
  }
  g.appendChild(name);

  let kind = n.kind;
  if (n.timed) kind += ` · ${n.busy_workers}/${n.workers} busy`;
  else kind += " · fused";
  if (n.kind === "stage" && n.stages.length > 1) kind += ` · ${n.stages.length} fused`;
  g.appendChild(svg("text", { class: "kind", x: 10, y: 37 }, kind));

  const rate = svg("text", { class: "rate", x: 10, y: 60 });
  rate.appendChild(svg("tspan", {}, fmtRate(n.kind === "sink" ? n.in_per_s : n.out_per_s)));
  rate.appendChild(svg("tspan", { class: "unit", dx: 4 }, "items/s"));
  g.appendChild(rate);

  let counts;
  if (n.kind === "source") counts = `out ${fmtInt(n.out)}`;
  else if (n.kind === "sink") counts = `in ${fmtInt(n.in)}`;
  else counts = `in ${fmtInt(n.in)} · out ${fmtInt(n.out)}`;
  if (n.capacity > 0) counts += ` · chan ${n.queued}/${n.capacity}`;
  g.appendChild(svg("text", { class: "small counts", x: 10, y: 78 }, counts));

  const bad = n.errors > 0 || n.stalled;
  let line = `errors ${fmtInt(n.errors)}`;
  if (n.dropped > 0) line += ` · dropped ${fmtInt(n.dropped)}`;
  if (n.stalled) line = `stalled ${Math.round(n.stalled_for_s)}s on ${n.waits_on}`;
  g.appendChild(svg("text", { class: "small" + (bad ? " bad" : ""), x: 10, y: 94 }, line));

  if (n.timed) {
    const bw = BOX_W - 20, r = n.recent;
    let bx = 10;
    for (const [part, f] of [["busy", r.busy], ["bp", r.backpressured], ["idle", r.idle]]) {
      const w = Math.max(0, bw * f);
      if (w > 0) g.appendChild(svg("rect", { class: part, x: bx, y: 101, width: w, height: 5 }));
      bx += w;
    }
    g.appendChild(svg("title", {}, `busy ${pct(r.busy)} · backpressured ${pct(r.backpressured)} · idle ${pct(r.idle)}`));
  }

  const badge = n.bottleneck ? ["BOTTLENECK", "badge"] : n.stalled ? ["STALLED", "badge stall"] : null;
  if (badge) {
    g.appendChild(svg("rect", { class: badge[1], x: BOX_W / 2 - 46, y: -11, width: 92, height: 18, rx: 9 }));
    g.appendChild(svg("text", { class: "badge-text", x: BOX_W / 2, y: 2 }, badge[0]));
  }
  return g;
}

// drawEdge draws the hand-off between two boxes: an arrow, and for a
// buffer a gauge of how full it is.
function drawEdge(e, x0, x1, y) {
  const g = svg("g", { class: "edge-group", "data-kind": e.kind });
  g.appendChild(svg("line", { class: "edge" + (e.kind === "fused" ? " fused" : ""), x1: x0, y1: y, x2: x1 - 7, y2: y }));
  g.appendChild(svg("path", { class: "arrow", d: `M${x1} ${y} l-8 -4.5 v9 z` }));
  const mid = (x0 + x1) / 2;
  if (e.kind === "fused") {
    g.appendChild(svg("text", { class: "elabel", x: mid, y: y - 8 }, "fused"));
    return g;
  }
  const gw = 46, f = e.capacity > 0 ? Math.min(1, e.queued / e.capacity) : 0;
  g.appendChild(svg("rect", { class: "gauge", x: mid - gw / 2, y: y - 19, width: gw, height: 9, rx: 2 }));
  if (f > 0) {
    g.appendChild(svg("rect", { class: "gauge-fill" + (f >= 0.9 ? " full" : ""), x: mid - gw / 2, y: y - 19, width: gw * f, height: 9, rx: 2 }));
  }
  g.appendChild(svg("text", { class: "elabel", x: mid, y: y + 16 }, e.capacity > 0 ? `${e.queued}/${e.capacity}` : "unbuffered"));
  g.appendChild(svg("title", {}, `${e.kind}: ${e.queued} of ${e.capacity} items waiting`));
  return g;
}

function drawPipeline(p) {
  const card = el("div", { class: "card pipeline", "data-name": p.name });
  card.appendChild(el("h2", {}, p.name));
  const sub = el("div", { class: "sub" });
  let state = p.running ? "running" : "finished";
  sub.appendChild(document.createTextNode(`run #${p.run} · ${state} · ${p.elapsed_s.toFixed(1)}s`));
  const bn = p.nodes.find((n) => n.id === p.bottleneck);
  if (bn) sub.appendChild(document.createTextNode(` · bottleneck: ${bn.name}`));
  if (p.error) sub.appendChild(el("span", { class: "err" }, ` · ${p.error}`));
  card.appendChild(sub);

  const width = PAD_X * 2 + p.nodes.length * BOX_W + (p.nodes.length - 1) * GAP;
  const height = PAD_TOP + BOX_H + PAD_BOTTOM;
  const s = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  s.appendChild(svg("title", {}, `pipeline ${p.name}`));
  p.edges.forEach((e, i) => {
    const x0 = PAD_X + i * (BOX_W + GAP) + BOX_W;
    s.appendChild(drawEdge(e, x0, x0 + GAP, PAD_TOP + BOX_H / 2));
  });
  p.nodes.forEach((n, i) => s.appendChild(drawNode(n, PAD_X + i * (BOX_W + GAP), PAD_TOP)));
  const wrap = el("div", { class: "graph" });
  wrap.appendChild(s);
  card.appendChild(wrap);
  return card;
}

function panel(title, items, fill) {
  const card = el("div", { class: "card panel" });
  card.appendChild(el("h3", {}, title));
  for (const it of items) {
    const div = el("div", { class: "item" });
    fill(div, it);
    card.appendChild(div);
  }
  return card;
}

function dl(rows) {
  const d = el("dl");
  for (const [k, v] of rows) {
    d.appendChild(el("dt", {}, k));
    d.appendChild(el("dd", {}, String(v)));
  }
  return d;
}

function head(div, name, pill, pillClass) {
  const h = el("div", { class: "iname" }, name);
  if (pill) h.appendChild(el("span", { class: "pill " + pillClass }, pill));
  div.appendChild(h);
}

function drawPanels(s) {
  const out = [];
  if (s.pools.length) out.push(panel("Pools", s.pools, (d, p) => {
    head(d, p.name, p.stalled ? `stalled on ${p.waits_on}` : "", "stalled");
    d.appendChild(dl([["queued", `${p.queued}/${p.queue_size}`], ["running", p.running],
      ["done", fmtInt(p.completed + p.failed + p.panicked)], ["failed", fmtInt(p.failed + p.panicked)],
      ["done/s", fmtRate(p.done_per_s)]]));
  }));
  if (s.breakers.length) out.push(panel("Breakers", s.breakers, (d, b) => {
    head(d, b.name, b.state, b.state);
    d.appendChild(dl([["trips", b.trips], ["failures", fmtInt(b.failures)], ["rejected", fmtInt(b.rejected)],
      ["rejected/s", fmtRate(b.rejected_per_s)]]));
    if (b.transitions.length) {
      const tl = el("div", { class: "timeline" });
      for (const t of b.transitions) {
        tl.appendChild(el("span", { class: t.to, title: `${new Date(t.time).toLocaleTimeString()} ${t.from} → ${t.to}` }));
      }
      d.appendChild(tl);
      d.appendChild(el("div", { class: "tl-note" }, `last ${b.transitions.length} transitions, oldest first`));
    }
  }));
  if (s.limiters.length) out.push(panel("Limiters", s.limiters, (d, l) => {
    head(d, l.name);
    d.appendChild(dl([["limit/s", l.limit_per_s < 0 ? "∞" : fmtRate(l.limit_per_s)], ["burst", l.burst], ["tokens", l.tokens.toFixed(1)],
      ["allowed/s", fmtRate(l.allowed_per_s)], ["denied/s", fmtRate(l.denied_per_s)],
      ["allowed", fmtInt(l.allowed)], ["denied", fmtInt(l.denied)]]));
  }));
  if (s.keyed_limiters.length) out.push(panel("Keyed limiters", s.keyed_limiters, (d, k) => {
    head(d, k.name);
    d.appendChild(dl([["keys", k.keys], ["allowed/s", fmtRate(k.allowed_per_s)], ["denied/s", fmtRate(k.denied_per_s)],
      ["allowed", fmtInt(k.allowed)], ["denied", fmtInt(k.denied)]]));
  }));
  if (s.brokers.length) out.push(panel("Brokers", s.brokers, (d, b) => {
    head(d, b.name, b.stalled ? "subscriber stalled" : "", "stalled");
    const rows = [["subscribers", b.subscribers], ["buffered", b.buffered], ["published/s", fmtRate(b.published_per_s)],
      ["dropped", fmtInt(b.dropped)], ["dropped/s", fmtRate(b.dropped_per_s)]];
    if (b.slowest) rows.push(["slowest", `${b.slowest.pattern} (${b.slowest.policy}): ${fmtInt(b.slowest.buffered)} waiting`]);
    d.appendChild(dl(rows));
  }));
  if (s.fan_ins.length) out.push(panel("Fan-ins", s.fan_ins, (d, f) => {
    head(d, f.name);
    d.appendChild(dl([["inputs open", `${f.open}/${f.inputs}`], ["forwarded/s", fmtRate(f.forwarded_per_s)], ["dropped", fmtInt(f.dropped)]]));
  }));
  return out;
}

function render(s) {
  const pipes = document.getElementById("pipelines");
  const nodes = s.pipelines.map(drawPipeline);
  if (!nodes.length) nodes.push(el("div", { class: "card empty" }, "No monitored pipeline has run yet."));
  pipes.replaceChildren(...nodes);
  document.getElementById("panels").replaceChildren(...drawPanels(s));
}

function setStatus(text, cls) {
  const st = document.getElementById("status");
  st.textContent = text;
  st.className = "status " + cls;
}

async function poll() {
  const q = new URLSearchParams(location.search).get("pipeline");
  const url = "snapshot.json" + (q === null ? "" : "?pipeline=" + encodeURIComponent(q));
  try {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}: ${(await r.text()).trim()}`);
    const s = await r.json();
    render(s);
    setStatus("live · " + new Date(s.time).toLocaleTimeString(), "live");
  } catch (err) {
    setStatus("disconnected: " + err.message, "down");
  }
  setTimeout(poll, POLL_MS);
}

poll();
