// Run colours, the same on every page of a session, in charts, tables and reports.
// The runs being looked at (the selection, the runs of a chart or a report) take colours from a
// palette of well-separated hues, each run keeping its slot until it leaves; any other run gets
// a colour derived from its id. Slots live in sessionStorage, so reloading keeps them.

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#17becf',
  '#e377c2', '#8c564b', '#a5a80f', '#393b79', '#637939', '#7f7f7f'];

const slots = new Map();
try {
  for (const [id, s] of JSON.parse(sessionStorage.getItem('xp.colors') || '[]')) slots.set(id, s);
} catch (e) { /* no storage (file://, private mode): colours still work for this page */ }

function save() {
  try { sessionStorage.setItem('xp.colors', JSON.stringify([...slots])); } catch (e) { /* ignore */ }
}

/** Give the ids that have none the first free palette slots (ids in order). */
export function assignColors(ids) {
  let changed = false;
  for (const id of ids) {
    if (slots.has(id)) continue;
    const used = new Set(slots.values());
    let s = 0;
    while (used.has(s)) s++;
    if (s >= PALETTE.length) break;
    slots.set(id, s);
    changed = true;
  }
  if (changed) save();
}

/** Exactly these runs hold slots, in this order (a report); ``persist`` false keeps the
 *  session's own colours untouched. */
export function setColors(ids, persist = true) {
  slots.clear();
  ids.slice(0, PALETTE.length).forEach((id, i) => slots.set(id, i));
  if (persist) save();
}

/** Free the slots of runs no longer looked at. */
export function releaseColors(ids) {
  let changed = false;
  for (const id of ids) changed = slots.delete(id) || changed;
  if (changed) save();
}

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix32) so ids that share a time prefix still spread out
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hslToHex(hue, s, l) {
  const a = s * Math.min(l, 1 - l);
  const f = (n) => {
    const k = (n + hue / 30) % 12;
    const c = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(c * 255).toString(16).padStart(2, '0');
  };
  return '#' + f(0) + f(8) + f(4);
}

const cache = new Map();

/** '#rrggbb' for a run: its palette slot, else a colour derived from its id. */
export function runColor(id) {
  const s = slots.get(id);
  if (s !== undefined) return PALETTE[s];
  let c = cache.get(id);
  if (c) return c;
  const h = fnv1a(String(id));
  // hue from the hash, skipping 45-80 degrees (yellows turn olive/muddy at this lightness)
  let hue = ((h % 3600) / 10) * (325 / 360);
  if (hue >= 45) hue += 35;
  const light = [0.46, 0.56, 0.38][(h >>> 12) % 3];
  const sat = [0.75, 0.62][(h >>> 16) % 2];
  const l = hue >= 80 && hue < 170 ? light - 0.08 : light;
  c = hslToHex(hue, sat, l);
  cache.set(id, c);
  return c;
}

export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function withAlpha(hex, a) {
  const [r, g, b] = hexToRgb(hex);
  return `rgba(${r},${g},${b},${a})`;
}

/** Sequential colour scale (viridis-like) for t in [0, 1]. */
// stops end at a darker yellow than viridis so the top of the scale stays visible on white
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [70, 180, 90], [200, 180, 20]];
export function scaleColor(t, alpha = 1) {
  if (!Number.isFinite(t)) return `rgba(150,150,150,${alpha})`;
  const x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * f));
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}
