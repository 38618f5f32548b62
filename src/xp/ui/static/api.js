// Data sources. Every page talks to a "source" with the same methods:
//   HttpSource      -> the JSON API of `xp ui` (docs/ui.md, "The JSON API")
//   EmbeddedSource  -> the <script type="application/json" id="xp-data"> blob of a report
// createSource() picks the embedded one when the page carries the blob.

import { cell, num } from './format.js';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export function createSource(doc = document) {
  const el = doc.getElementById('xp-data');
  if (el) return new EmbeddedSource(JSON.parse(el.textContent));
  return new HttpSource('api/v1/');
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) { if (v.length) u.set(k, v.join(',')); } else u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

const enc = encodeURIComponent;
export const pathUrl = (p) => p.split('/').map(enc).join('/');

export class HttpSource {
  constructor(base) { this.base = base; this.embedded = false; }

  async get(path, params = {}, signal) {
    const res = await fetch(this.base + path + qs(params), { signal, headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new ApiError(res.status, body);
    return body;
  }

  meta() { return this.get('meta'); }
  /** {q, sort: [..], group, offset, limit} or {ids: [..]} */
  runs(p, signal) { return this.get('runs', p, signal); }
  run(id, signal) { return this.get('runs/' + enc(id), {}, signal); }
  metrics(ids, signal) { return this.get('metrics', { runs: ids }, signal); }
  /** {runs, metrics, points, x, xmin, xmax, after_step} */
  series(p, signal) { return this.get('series', p, signal); }
  points(p, signal) { return this.get('points', p, signal); }
  diff(a, b, signal) { return this.get('diff', { a, b }, signal); }
  history(p, signal) { return this.get('history', p, signal); }
  models(signal) { return this.get('models', {}, signal); }
  model(name, signal) { return this.get('models/' + pathUrl(name), {}, signal); }
  artifactUrl(id, path, download = false) {
    return this.base + 'runs/' + enc(id) + '/artifacts/' + pathUrl(path) + (download ? '?download=1' : '');
  }
  logUrl(id) { return this.base + 'runs/' + enc(id) + '/log'; }
  async text(url, maxBytes = 262144, signal) {
    const res = await fetch(url + (url.includes('?') ? '&' : '?') + 'head=' + maxBytes, { signal });
    if (!res.ok) throw new ApiError(res.status, null);
    return { text: await res.text(), truncated: res.headers.get('X-Truncated') === '1' };
  }
  /** Server-Sent Events from after event `since` (all new ones when null), or null. */
  events(since = null) {
    if (typeof EventSource === 'undefined') return null;
    return new EventSource(this.base + 'events' + (since ? '?since=' + encodeURIComponent(since) : ''));
  }
}

/** Answers the same calls from a report's embedded data (no network). */
export class EmbeddedSource {
  constructor(data) {
    this.data = data;
    this.embedded = true;
    this.rows = data.runs || [];
    this.byId = new Map(this.rows.map((r) => [r.run_id, r]));
  }

  async meta() {
    const cols = { attributes: [], params: new Set(), metrics: new Set(), tags: new Set() };
    for (const r of this.rows) for (const k of ['params', 'metrics', 'tags']) Object.keys(r[k] || {}).forEach((x) => cols[k].add(x));
    return {
      api: 1, project: this.data.title || 'report', runs: this.rows.length, branches: [], experiments: [],
      columns: { attributes: cols.attributes, params: [...cols.params].sort(), metrics: [...cols.metrics].sort(), tags: [...cols.tags].sort() },
      live: false,
    };
  }

  async runs(p = {}) {
    let rows = this.rows;
    if (p.ids && p.ids.length) rows = p.ids.map((i) => this.byId.get(i)).filter(Boolean);
    else if (p.q) throw new ApiError(400, { error: 'filtering is not available in a report', position: null });
    const off = p.offset || 0;
    const lim = p.limit || rows.length;
    return { total: rows.length, all: this.rows.length, offset: off, rows: rows.slice(off, off + lim), columns: null, varying: null };
  }

  async run(id) {
    const d = (this.data.details || {})[id];
    if (!d) throw new ApiError(404, { error: `run ${id} is not in this report` });
    return d;
  }

  async metrics(ids) {
    const want = new Set(ids);
    const names = new Map();
    for (const s of this.data.series || []) {
      if (!want.has(s.run_id)) continue;
      if (!names.has(s.metric)) names.set(s.metric, {});
      names.get(s.metric)[s.run_id] = s.count;
    }
    return { metrics: [...names.keys()].sort().map((name) => ({ name, runs: names.get(name) })) };
  }

  async series(p) {
    const runs = new Set(p.runs);
    const metrics = p.metrics && p.metrics.length ? new Set(p.metrics) : null;
    const x = p.x || 'step';
    const out = [];
    for (const s of this.data.series || []) {
      if (!runs.has(s.run_id) || (metrics && !metrics.has(s.metric))) continue;
      if (p.xmin === undefined && p.xmax === undefined) { out.push(s); continue; }
      const xs = x === 'time' ? s.time : s.step;
      const keep = [];
      for (let i = 0; i < xs.length; i++) {
        if ((p.xmin === undefined || xs[i] >= p.xmin) && (p.xmax === undefined || xs[i] <= p.xmax)) keep.push(i);
      }
      out.push({ ...s, step: keep.map((i) => s.step[i]), time: keep.map((i) => s.time[i]), value: keep.map((i) => s.value[i]) });
    }
    return { x, points: 0, series: out };
  }

  async points(p) {
    const rows = p.ids && p.ids.length ? p.ids.map((i) => this.byId.get(i)).filter(Boolean) : this.rows;
    const cols = {};
    for (const c of p.cols || []) cols[c] = rows.map((r) => { const v = cell(r, c); return v === undefined ? null : v; });
    return { total: rows.length, sampled: false, run_id: rows.map((r) => r.run_id), name: rows.map((r) => r.name), status: rows.map((r) => r.status), cols };
  }

  async diff(a, b) {
    const d = this.data.diff;
    if (d && d.a === a && d.b === b) return d;
    throw new ApiError(404, { error: 'this report holds no diff for these runs' });
  }

  async history() {
    if (this.data.history) return this.data.history;
    throw new ApiError(404, { error: 'this report holds no history' });
  }

  // a report holds runs, not the repository's registry tags
  async models() { throw new ApiError(404, { error: 'the model registry is not part of a report; run `xp ui` in the repository' }); }
  async model(name) { return this.models(name); }

  artifactUrl(id, path) {
    const d = (this.data.details || {})[id];
    const a = d && d.artifacts.find((x) => x.path === path);
    return (a && a.url) || null;
  }

  logUrl() { return null; }

  async text(url) {
    // embedded text artifacts are data:...;base64, URIs
    const m = /^data:[^,]*?(;base64)?,(.*)$/s.exec(url || '');
    if (!m) throw new ApiError(404, { error: 'not embedded' });
    const raw = m[1] ? atob(m[2]) : decodeURIComponent(m[2]);
    const bytes = Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
    return { text: new TextDecoder().decode(bytes), truncated: false };
  }

  events() { return null; }
}

export { num };
