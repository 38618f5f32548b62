// Parallel coordinates on a canvas: one vertical axis per column (params, then the target
// metric last), one polyline per run. Lines are coloured by the last axis (viridis); the
// highlighted (selected) runs are drawn on top in their own colours. Drag on an axis to
// brush a range; runs outside any brush are greyed out.

import { h, cssVar } from './dom.js';
import { scaleColor } from './colors.js';
import { makeScale, setupCanvas, truncate } from './scales.js';
import { quoteColumn } from './format.js';

/** A value as a literal of the filter language; null for what it cannot say. */
function literal(v) {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : null;
  if (v === 'inf' || v === '-inf') return v;
  if (typeof v === 'string') return "'" + v.replace(/'/g, "''") + "'";
  return null;
}

/** A brush edge, rounded outwards to 6 significant digits so edge runs stay inside. */
function edge(x, dir) {
  if (!Number.isFinite(x) || x === 0) return String(x);
  const mag = Math.pow(10, Math.floor(Math.log10(Math.abs(x))) - 5);
  return String(+((dir < 0 ? Math.floor(x / mag) : Math.ceil(x / mag)) * mag).toPrecision(6));
}

const PAD = { top: 40, bottom: 20, left: 56, right: 60 };

export class ParCoords {
  constructor(root, { height = 340, onBrush = null } = {}) {
    this.height = height;
    this.onBrush = onBrush;
    this.canvas = h('canvas', { class: 'pc-canvas', role: 'img', 'aria-label': 'parallel coordinates' });
    this.el = h('div', { class: 'canvas-box' }, this.canvas);
    root.append(this.el);
    this.brushes = new Map(); // axis index -> [p0, p1] in [0,1]
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.el);
    this.canvas.addEventListener('pointerdown', (e) => this.brushStart(e));
  }

  destroy() { this.ro.disconnect(); this.el.remove(); }

  /** data: {ids, axes: [{name, values}], highlight: Map(id -> colour)} */
  setData(data) {
    this.data = data;
    this.scales = data.axes.map((a) => makeScale(a.values, { log: /(^|\.)(lr|learning_rate|weight_decay)$/.test(a.name) }));
    this.brushes.clear();
    this.draw();
  }

  axisX(i, w) {
    const n = this.data.axes.length;
    return PAD.left + (n === 1 ? 0 : (i * (w - PAD.left - PAD.right)) / (n - 1));
  }

  y(p) { return PAD.top + (1 - p) * (this.height - PAD.top - PAD.bottom); }

  inBrush(k) {
    for (const [ai, [a, b]] of this.brushes) {
      const p = this.scales[ai].pos(this.data.axes[ai].values[k]);
      if (!(p >= Math.min(a, b) && p <= Math.max(a, b))) return false;
    }
    return true;
  }

  draw() {
    if (!this.data) return;
    const w = this.el.clientWidth || 800;
    const g = setupCanvas(this.canvas, w, this.height);
    const fg = cssVar('--fg') || '#222';
    const muted = cssVar('--muted') || '#777';
    g.clearRect(0, 0, w, this.height);
    const { ids, axes, highlight } = this.data;
    const last = this.scales.length - 1;
    const n = ids.length;
    const xs = axes.map((_, i) => this.axisX(i, w));
    const ps = axes.map((a, i) => a.values.map((v) => this.scales[i].pos(v)));
    const line = (k) => {
      g.beginPath();
      let pen = false;
      for (let i = 0; i < axes.length; i++) {
        const p = ps[i][k];
        if (!Number.isFinite(p)) { pen = false; continue; }
        if (pen) g.lineTo(xs[i], this.y(p)); else g.moveTo(xs[i], this.y(p));
        pen = true;
      }
      g.stroke();
    };
    const brushed = this.brushes.size > 0;
    let inCount = 0;
    const alpha = Math.max(0.08, Math.min(0.75, 10 / Math.sqrt(n + 1)));
    g.lineWidth = 1;
    // 1. runs outside brushes, grey
    if (brushed) {
      g.strokeStyle = 'rgba(140,140,150,0.10)';
      for (let k = 0; k < n; k++) if (!highlight.has(ids[k]) && !this.inBrush(k)) line(k);
    }
    // 2. the rest, coloured by the last axis
    for (let k = 0; k < n; k++) {
      if (highlight.has(ids[k])) continue;
      if (brushed && !this.inBrush(k)) continue;
      inCount++;
      g.strokeStyle = scaleColor(ps[last][k], alpha);
      line(k);
    }
    // 3. highlighted runs on top
    g.lineWidth = 2.5;
    for (let k = 0; k < n; k++) {
      const c = highlight.get(ids[k]);
      if (!c) continue;
      if (!brushed || this.inBrush(k)) inCount++;
      g.strokeStyle = c;
      line(k);
    }
    this.inCount = inCount;
    // axes
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    axes.forEach((a, i) => {
      const x = xs[i];
      g.strokeStyle = muted;
      g.beginPath(); g.moveTo(x, this.y(0)); g.lineTo(x, this.y(1)); g.stroke();
      g.fillStyle = fg;
      g.textAlign = i === 0 ? 'left' : i === last ? 'right' : 'center';
      g.font = '600 11px system-ui, sans-serif';
      // short names (the key without params./metrics.), staggered on two rows when crowded
      const space = axes.length > 1 ? (w - PAD.left - PAD.right) / (axes.length - 1) : w;
      const crowded = space < 110;
      const label = truncate(g, a.name.replace(/^(params|metrics|tags)\./, ''), crowded ? space * 1.8 : Math.max(40, space - 8));
      g.fillText(label, i === 0 ? x - 10 : i === last ? x + 10 : x, crowded && i % 2 ? 24 : 12);
      g.font = '10px system-ui, sans-serif';
      g.fillStyle = muted;
      g.textAlign = 'right';
      for (const t of this.scales[i].ticks) {
        const y = this.y(t.p);
        g.fillText(truncate(g, t.label, 70), x - 5, y + 3);
        g.beginPath(); g.moveTo(x - 3, y); g.lineTo(x, y); g.stroke();
      }
      const b = this.brushes.get(i);
      if (b) {
        g.fillStyle = 'rgba(47,111,236,0.18)';
        g.strokeStyle = 'rgba(47,111,236,0.8)';
        const y0 = this.y(Math.max(b[0], b[1]));
        const y1 = this.y(Math.min(b[0], b[1]));
        g.fillRect(x - 7, y0, 14, y1 - y0);
        g.strokeRect(x - 7, y0, 14, y1 - y0);
      }
    });
    if (this.onBrush) this.onBrush(brushed ? inCount : null, n);
  }

  brushStart(e) {
    if (!this.data) return;
    const r = this.canvas.getBoundingClientRect();
    const w = r.width;
    const x = e.clientX - r.left;
    const ai = this.data.axes.findIndex((_, i) => Math.abs(this.axisX(i, w) - x) < 14);
    if (ai < 0) return;
    const toP = (cy) => Math.max(0, Math.min(1, 1 - (cy - r.top - PAD.top) / (this.height - PAD.top - PAD.bottom)));
    const p0 = toP(e.clientY);
    this.canvas.setPointerCapture(e.pointerId);
    let moved = false;
    const move = (ev) => { moved = true; this.brushes.set(ai, [p0, toP(ev.clientY)]); this.draw(); };
    const up = () => {
      this.canvas.removeEventListener('pointermove', move);
      this.canvas.removeEventListener('pointerup', up);
      if (!moved) { this.brushes.delete(ai); this.draw(); } // a click clears that axis' brush
    };
    this.canvas.addEventListener('pointermove', move);
    this.canvas.addEventListener('pointerup', up);
  }

  /** The brushes as a filter of the `xp show` language ('' without brushes), so the runs
   *  table (and the terminal) can show exactly the runs inside them. */
  brushFilter() {
    if (!this.data) return '';
    const parts = [];
    for (const [ai, [a, b]] of this.brushes) {
      const name = quoteColumn(this.data.axes[ai].name);
      const sc = this.scales[ai];
      const lo = Math.min(a, b);
      const hi = Math.max(a, b);
      if (sc.kind === 'cat') {
        const vals = sc.within(lo, hi).map(literal).filter((x) => x !== null);
        parts.push(vals.length ? `${name} in (${vals.join(', ')})` : `${name} is null and ${name} is not null`);
      } else {
        parts.push(`${name} >= ${edge(sc.inv(lo), -1)} and ${name} <= ${edge(sc.inv(hi), 1)}`);
      }
    }
    return parts.join(' and ');
  }

  /** ids of the runs inside all brushes */
  brushedIds() {
    if (!this.data) return [];
    return this.data.ids.filter((_, k) => this.inBrush(k));
  }
}
