// Axis scales for the canvas charts (scatter, parallel coordinates).
import { num, fmtNumber, fmtValue } from './format.js';

export function niceTicks(min, max, count = 5) {
  if (!(max > min)) return [min];
  const span = max - min;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
  const err = (count * step0) / span;
  const step = step0 * (err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1);
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** values (API values) -> {kind, pos(v) in [0,1] or NaN, ticks: [{p, label}]} */
export function makeScale(values, { log = false, pad = 0 } = {}) {
  const present = values.filter((v) => v !== null && v !== undefined);
  const numeric = present.length > 0 && present.every((v) => typeof v === 'number' || v === 'inf' || v === '-inf');
  if (numeric) {
    const xs = present.map(num).filter(Number.isFinite);
    let min = Math.min(...xs);
    let max = Math.max(...xs);
    const useLog = log && min > 0;
    if (!xs.length) { min = 0; max = 1; }
    if (min === max) { min -= 0.5; max += 0.5; }
    if (pad && !useLog) { const d = (max - min) * pad; min -= d; max += d; }
    if (useLog) {
      const lmin = Math.log10(min);
      const lmax = Math.log10(max) === lmin ? lmin + 1 : Math.log10(max);
      const ticks = [];
      for (let e = Math.ceil(lmin); e <= Math.floor(lmax); e++) ticks.push({ p: (e - lmin) / (lmax - lmin), label: fmtNumber(Math.pow(10, e), 3) });
      return { kind: 'log', pos: (v) => { const x = num(v); return x > 0 ? (Math.log10(x) - lmin) / (lmax - lmin) : NaN; }, inv: (p) => Math.pow(10, lmin + p * (lmax - lmin)), ticks, min, max };
    }
    return {
      kind: 'num', min, max,
      pos: (v) => { const x = num(v); return Number.isFinite(x) ? (x - min) / (max - min) : NaN; },
      inv: (p) => min + p * (max - min),
      ticks: niceTicks(min, max, 5).map((v) => ({ p: (v - min) / (max - min), label: fmtNumber(v, 4) })),
    };
  }
  const cats = [...new Set(present.map((v) => fmtValue(v)))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const idx = new Map(cats.map((c, i) => [c, i]));
  const p = (i) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  const raw = new Map();
  for (const v of present) if (!raw.has(fmtValue(v))) raw.set(fmtValue(v), v);
  return {
    kind: 'cat',
    /** the values (as logged) whose position is within [lo, hi] */
    within: (lo, hi) => cats.filter((c) => p(idx.get(c)) >= lo && p(idx.get(c)) <= hi).map((c) => raw.get(c)),
    pos: (v) => (v === null || v === undefined ? NaN : p(idx.get(fmtValue(v)))),
    ticks: (cats.length <= 24 ? cats : cats.filter((_, i) => i % Math.ceil(cats.length / 24) === 0)).map((c) => ({ p: p(idx.get(c)), label: c })),
  };
}

export function setupCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.height = height + 'px';
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  return g;
}

export function truncate(g, text, max) {
  let t = String(text);
  if (g.measureText(t).width <= max) return t;
  while (t.length > 1 && g.measureText(t + '…').width > max) t = t.slice(0, -1);
  return t + '…';
}
