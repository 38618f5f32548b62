// Scatter plot of any two columns on a canvas. Highlighted runs in their colours on top,
// the others small and muted; hover shows the run; click opens it.

import { h, cssVar } from './dom.js';
import { fmtValue } from './format.js';
import { makeScale, setupCanvas, truncate } from './scales.js';

const PAD = { top: 14, bottom: 40, left: 64, right: 16 };

export class Scatter {
  constructor(root, { height = 340, onPick = null } = {}) {
    this.height = height;
    this.onPick = onPick;
    this.canvas = h('canvas', { role: 'img', 'aria-label': 'scatter plot' });
    this.tip = h('div', { class: 'canvas-tip', hidden: true });
    this.el = h('div', { class: 'canvas-box' }, this.canvas, this.tip);
    root.append(this.el);
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.el);
    this.canvas.addEventListener('pointermove', (e) => this.hover(e));
    this.canvas.addEventListener('pointerleave', () => { this.tip.hidden = true; });
    this.canvas.addEventListener('click', () => { if (this.hit !== null && this.hit !== undefined && this.onPick) this.onPick(this.data.ids[this.hit]); });
  }

  destroy() { this.ro.disconnect(); this.el.remove(); }

  /** data: {ids, names, x: {name, values}, y: {name, values}, highlight: Map(id -> colour), logX, logY} */
  setData(data) {
    this.data = data;
    this.sx = makeScale(data.x.values, { log: data.logX, pad: 0.04 });
    this.sy = makeScale(data.y.values, { log: data.logY, pad: 0.04 });
    this.draw();
  }

  px(k, w) {
    const { x, y } = this.data;
    let p = this.sx.pos(x.values[k]);
    let q = this.sy.pos(y.values[k]);
    // categorical axes: jitter deterministically so stacked points stay visible
    if (this.sx.kind === 'cat') p += (((k * 2654435761) >>> 0) % 1000 / 1000 - 0.5) * 0.03;
    if (this.sy.kind === 'cat') q += (((k * 40503) >>> 0) % 1000 / 1000 - 0.5) * 0.03;
    return [PAD.left + p * (w - PAD.left - PAD.right), PAD.top + (1 - q) * (this.height - PAD.top - PAD.bottom)];
  }

  draw() {
    if (!this.data) return;
    const w = this.el.clientWidth || 600;
    this.w = w;
    const g = setupCanvas(this.canvas, w, this.height);
    const fg = cssVar('--fg') || '#222';
    const muted = cssVar('--muted') || '#777';
    const grid = cssVar('--grid') || 'rgba(0,0,0,.08)';
    g.clearRect(0, 0, w, this.height);
    const H = this.height;
    g.font = '10px system-ui, sans-serif';
    g.strokeStyle = grid;
    g.fillStyle = muted;
    g.textAlign = 'center';
    for (const t of this.sx.ticks) {
      const x = PAD.left + t.p * (w - PAD.left - PAD.right);
      g.beginPath(); g.moveTo(x, PAD.top); g.lineTo(x, H - PAD.bottom); g.stroke();
      g.fillText(truncate(g, t.label, 80), x, H - PAD.bottom + 14);
    }
    g.textAlign = 'right';
    for (const t of this.sy.ticks) {
      const y = PAD.top + (1 - t.p) * (H - PAD.top - PAD.bottom);
      g.beginPath(); g.moveTo(PAD.left, y); g.lineTo(w - PAD.right, y); g.stroke();
      g.fillText(truncate(g, t.label, PAD.left - 8), PAD.left - 6, y + 3);
    }
    g.fillStyle = fg;
    g.font = '600 11px system-ui, sans-serif';
    g.textAlign = 'center';
    g.fillText(this.data.x.name, PAD.left + (w - PAD.left - PAD.right) / 2, H - 6);
    g.save(); g.translate(12, PAD.top + (H - PAD.top - PAD.bottom) / 2); g.rotate(-Math.PI / 2); g.fillText(this.data.y.name, 0, 0); g.restore();
    const { ids, highlight } = this.data;
    this.pts = new Float32Array(ids.length * 2);
    g.fillStyle = ids.length > 2000 ? 'rgba(120,130,150,0.35)' : 'rgba(120,130,150,0.6)';
    const r = ids.length > 2000 ? 1.5 : 2.5;
    for (let k = 0; k < ids.length; k++) {
      const [x, y] = this.px(k, w);
      this.pts[2 * k] = x; this.pts[2 * k + 1] = y;
      if (!Number.isFinite(x) || !Number.isFinite(y) || highlight.has(ids[k])) continue;
      g.fillRect(x - r, y - r, 2 * r, 2 * r);
    }
    for (let k = 0; k < ids.length; k++) {
      const c = highlight.get(ids[k]);
      if (!c) continue;
      const x = this.pts[2 * k];
      const y = this.pts[2 * k + 1];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      g.beginPath(); g.arc(x, y, 5, 0, Math.PI * 2);
      g.fillStyle = c; g.fill();
      g.lineWidth = 1.5; g.strokeStyle = cssVar('--panel') || '#fff'; g.stroke();
    }
  }

  hover(e) {
    if (!this.pts) return;
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    let best = null;
    let bd = 64;
    for (let k = 0; k < this.data.ids.length; k++) {
      const dx = this.pts[2 * k] - mx;
      const dy = this.pts[2 * k + 1] - my;
      const d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = k; }
    }
    this.hit = best;
    this.canvas.style.cursor = best === null ? 'default' : 'pointer';
    if (best === null) { this.tip.hidden = true; return; }
    const { names, x, y } = this.data;
    this.tip.textContent = `${names[best]} · ${x.name} = ${fmtValue(x.values[best] ?? undefined)} · ${y.name} = ${fmtValue(y.values[best] ?? undefined)}`;
    this.tip.hidden = false;
    this.tip.style.left = Math.min(mx + 12, this.w - this.tip.offsetWidth - 4) + 'px';
    this.tip.style.top = (my + 12) + 'px';
  }
}
