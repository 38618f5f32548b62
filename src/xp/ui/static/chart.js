// One metric chart: the step series of several runs overlaid, on uPlot.
// x axis: step | time (wall clock) | relative (seconds since the run started);
// EMA smoothing as TensorBoard does it (debiased); log y; drag to zoom (the page may then
// fetch that range at full resolution); double-click to reset; hover shows every run's value.

import uPlot from './vendor/uPlot.esm.js';
import { h, clear, append, cssVar } from './dom.js';
import { num, fmtNumber, fmtAxis, fmtDuration, fmtTimeMs } from './format.js';
import { withAlpha } from './colors.js';

/** TensorBoard's smoothing: debiased exponential moving average; non-finite points pass through. */
export function ema(ys, weight) {
  const out = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined || !Number.isFinite(v)) { out[i] = v; continue; }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = weight === 1 ? last : last / (1 - Math.pow(weight, n));
  }
  return out;
}

function xsOf(s, mode) {
  if (mode === 'step') return s.step;
  if (mode === 'time') return s.time.map((t) => t / 1000);
  return s.time.map((t) => (t - s.start) / 1000);
}

/** Union of the x values of all series (sorted), and each series' y aligned on it:
 *  undefined where a series has no point (uPlot draws across), null where the value is NaN/inf (a gap). */
export function align(list, mode, logY, field = 'value') {
  const per = list.map((s) => {
    let xs = xsOf(s, mode);
    let ys = s[field].map((v) => { const x = num(v); return Number.isFinite(x) && (!logY || x > 0) ? x : null; });
    // the server sorts by x; live appends may not be: sort defensively
    for (let i = 1; i < xs.length; i++) {
      if (xs[i] < xs[i - 1]) {
        const idx = xs.map((_, k) => k).sort((a, b) => xs[a] - xs[b] || a - b);
        xs = idx.map((k) => xs[k]); ys = idx.map((k) => ys[k]);
        break;
      }
    }
    return { xs, ys };
  });
  let all = [];
  for (const p of per) all = all.concat(p.xs);
  all.sort((a, b) => a - b);
  const x = [];
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) x.push(all[i]);
  const ys = per.map((p) => {
    const out = new Array(x.length);
    let j = 0;
    for (let i = 0; i < p.xs.length; i++) {
      while (x[j] < p.xs[i]) j++;
      out[j] = p.ys[i];
    }
    return out;
  });
  return { x, ys };
}

export class MetricChart {
  constructor(root, { metric, xMode = 'step', smoothing = 0, logY = false, height = 240, onZoom = null, onPick = null }) {
    this.metric = metric;
    this.opts = { xMode, smoothing, logY };
    this.height = height;
    this.onZoom = onZoom;
    this.onPick = onPick;
    this.list = [];
    this.hidden = new Set();
    this.zoom = null;
    this.badge = h('span', { class: 'chart-badge muted' });
    this.reset = h('button', { class: 'btn tiny', type: 'button', hidden: true, title: 'reset zoom (or double-click the chart)' }, 'reset zoom');
    this.reset.addEventListener('click', () => this.resetZoom());
    this.plotEl = h('div', { class: 'chart-plot' });
    this.tip = h('div', { class: 'chart-tip', hidden: true });
    this.el = h('div', { class: 'chart-card' },
      h('div', { class: 'chart-head' }, h('span', { class: 'chart-title' }, metric), this.badge, h('span', { class: 'grow' }), this.reset),
      h('div', { class: 'chart-body' }, this.plotEl, this.tip));
    this.el.style.minHeight = height + 48 + 'px'; // reserve the space before data arrives
    root.append(this.el);
    this.ro = new ResizeObserver(() => {
      const w = this.plotEl.clientWidth;
      if (this.u && w && w !== this.u.width) this.u.setSize({ width: w, height: this.height });
    });
    this.ro.observe(this.plotEl);
  }

  destroy() { this.ro.disconnect(); if (this.u) this.u.destroy(); this.el.remove(); }

  /** list: [{id, label, color, step[], time[], value[], start, count, downsampled}] */
  setSeries(list, keepZoom = false) {
    this.list = list;
    const total = list.reduce((s, x) => s + (x.count || x.value.length), 0);
    const shown = list.reduce((s, x) => s + x.value.length, 0);
    const ds = list.some((x) => x.downsampled);
    this.badge.textContent = ds ? `${shown.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} points (min/max kept)` : '';
    this.build(keepZoom);
  }

  setOptions(o) { Object.assign(this.opts, o); this.zoom = null; this.build(false); }
  setHidden(ids) { this.hidden = new Set(ids); this.build(true); }

  resetZoom() {
    this.zoom = null;
    this.reset.hidden = true;
    if (this.onZoom) this.onZoom(null);
    if (this.u) this.build(false);
  }

  data() {
    const { xMode, smoothing, logY } = this.opts;
    const vis = this.list.filter((s) => !this.hidden.has(s.id));
    const { x, ys } = align(vis, xMode, logY);
    // The server smooths a downsampled series over all its points (smoothed[]); a series
    // that arrived whole is smoothed here, on the same points, by the same formula.
    const server = smoothing > 0 && vis.some((s) => s.smoothed && s.smoothedWith === smoothing)
      ? align(vis.map((s) => ({ ...s, smoothed: s.smoothed && s.smoothedWith === smoothing ? s.smoothed : s.value })), xMode, logY, 'smoothed').ys
      : null;
    const data = [x];
    const series = [{}];
    vis.forEach((s, i) => {
      if (smoothing > 0) {
        data.push(ys[i]);
        series.push({ label: s.label, stroke: withAlpha(s.color, 0.28), width: 1, _run: s, _raw: true });
        data.push(server && s.smoothed && s.smoothedWith === smoothing ? server[i] : ema(ys[i], smoothing));
        series.push({ label: s.label, stroke: s.color, width: 1.75, _run: s });
      } else {
        data.push(ys[i]);
        series.push({ label: s.label, stroke: s.color, width: 1.5, _run: s });
      }
    });
    return { data, series };
  }

  build(keepZoom) {
    const { data, series } = this.data();
    const { xMode, logY } = this.opts;
    if (this.u) { this.u.destroy(); this.u = null; }
    clear(this.plotEl);
    const fg = cssVar('--muted') || '#666';
    const grid = cssVar('--grid') || 'rgba(128,128,128,0.15)';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '11px system-ui, sans-serif' };
    const xValues = xMode === 'relative' ? (u, splits) => splits.map((v) => fmtDuration(v)) : xMode === 'step' ? (u, splits) => splits.map((v) => (v == null ? '' : fmtAxis(v))) : undefined;
    const self = this;
    const opts = {
      width: this.plotEl.clientWidth || 600,
      height: this.height,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: true }, focus: { prox: 24 }, points: { size: 6 } },
      focus: { alpha: 0.35 },
      scales: { x: { time: xMode === 'time' }, y: logY ? { distr: 3, log: 10 } : { auto: true } },
      axes: [{ ...axis, values: xValues }, { ...axis, size: 56, values: (u, splits) => splits.map((v) => (v == null ? '' : fmtAxis(v, 3))) }],
      series: series.map((s, i) => (i === 0 ? {} : { label: s.label, stroke: s.stroke, width: s.width, spanGaps: false, points: { show: false } })),
      hooks: {
        setCursor: [(u) => self.tooltip(u)],
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const min = u.posToVal(u.select.left, 'x');
          const max = u.posToVal(u.select.left + u.select.width, 'x');
          self.zoom = { min, max };
          self.reset.hidden = false;
          if (self.onZoom) self.onZoom(self.zoomInStepsOrMs(min, max));
        }],
      },
    };
    this.series = series;
    // one point series (metrics logged once) need their points drawn
    opts.series.forEach((s, i) => { if (i && data[i].filter((v) => v != null).length < 3) s.points = { show: true, size: 7 }; });
    this.u = new uPlot(opts, data, this.plotEl);
    this.u.over.addEventListener('dblclick', () => this.resetZoom());
    this.u.over.addEventListener('click', () => {
      const r = this.focusRun;
      if (r && this.onPick) this.onPick(r.id);
    });
    this.u.over.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    // a range the user zoomed to survives new data; the automatic range grows with it
    const z = this.zoom;
    if (keepZoom && z && Number.isFinite(z.min)) this.u.setScale('x', z);
  }

  /** The zoom range in API units (steps, or epoch ms for time/relative) for re-fetching. */
  zoomInStepsOrMs(min, max) {
    const mode = this.opts.xMode;
    if (mode === 'step') return { x: 'step', xmin: Math.floor(min), xmax: Math.ceil(max) };
    if (mode === 'time') return { x: 'time', xmin: Math.floor(min * 1000), xmax: Math.ceil(max * 1000) };
    return { x: 'time', relative: true, min, max };
  }

  tooltip(u) {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.cursor.left < 0) { this.tip.hidden = true; this.focusRun = null; return; }
    const rows = [];
    let xv = u.data[0][idx];
    for (let i = 1; i < this.series.length; i++) {
      const s = this.series[i];
      if (s._raw) continue;
      const j = u.cursor.idxs ? u.cursor.idxs[i] : idx;
      if (j === null || j === undefined) continue;
      const v = u.data[i][j];
      if (v === undefined) continue;
      rows.push({ s, v, x: u.data[0][j], raw: this.opts.smoothing > 0 ? u.data[i - 1][j] : null, i });
    }
    if (!rows.length) { this.tip.hidden = true; return; }
    rows.sort((a, b) => (b.v ?? -Infinity) - (a.v ?? -Infinity));
    // the focused series (nearest to the pointer) is what a click opens
    let best = null;
    let bestD = Infinity;
    const top = u.cursor.top;
    for (const r of rows) {
      if (r.v === null) continue;
      const d = Math.abs(u.valToPos(r.v, 'y') - top);
      if (d < bestD) { bestD = d; best = r; }
    }
    this.focusRun = best && bestD < 30 ? best.s._run : null;
    const mode = this.opts.xMode;
    const fx = (v) => (mode === 'step' ? 'step ' + fmtNumber(v, 8) : mode === 'time' ? fmtTimeMs(v * 1000) : fmtDuration(v));
    append(clear(this.tip), [h('div', { class: 'tip-x' }, fx(xv)),
      rows.slice(0, 12).map((r) => h('div', { class: ['tip-row', this.focusRun === r.s._run && 'focus'] },
        h('span', { class: 'dot', style: { background: r.s._run.color } }),
        h('span', { class: 'tip-name' }, r.s._run.label),
        h('span', { class: 'tip-val mono' }, r.v === null ? 'nan/inf' : fmtNumber(r.v, 6)),
        r.raw !== null && r.raw !== undefined ? h('span', { class: 'tip-raw mono muted' }, fmtNumber(r.raw, 5)) : null)),
      rows.length > 12 ? h('div', { class: 'muted' }, `+${rows.length - 12} more`) : null]);
    this.tip.hidden = false;
    const bw = this.plotEl.clientWidth;
    const left = u.cursor.left + u.bbox.left / devicePixelRatio;
    this.tip.style.left = (left > bw / 2 ? left - this.tip.offsetWidth - 16 : left + 16) + 'px';
    this.tip.style.top = Math.max(0, u.cursor.top - 10) + 'px';
  }
}
