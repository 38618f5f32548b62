// Shared client state: the selected runs (ordered), a cache of rows by id, and a tiny
// pub/sub so the table, the selection bar and the pages stay in step. Selected runs hold a
// palette colour (colors.js) for as long as they stay selected.

import { assignColors, releaseColors } from './colors.js';

const listeners = new Set();
const rows = new Map();
let selection = [];

try { selection = JSON.parse(sessionStorage.getItem('xp.selection') || '[]'); } catch (e) { selection = []; }
assignColors(selection);

function changed(before) {
  releaseColors(before.filter((id) => !selection.includes(id)));
  assignColors(selection);
  try { sessionStorage.setItem('xp.selection', JSON.stringify(selection)); } catch (e) { /* private mode */ }
  for (const fn of listeners) fn(selection);
}

export const state = {
  get selection() { return selection; },
  isSelected: (id) => selection.includes(id),
  toggle(id, on = !selection.includes(id)) {
    const before = selection;
    if (on && !selection.includes(id)) selection = [...selection, id];
    else if (!on) selection = selection.filter((x) => x !== id);
    changed(before);
  },
  setSelection(ids) { const before = selection; selection = [...new Set(ids)]; changed(before); },
  clear() { const before = selection; selection = []; changed(before); },
  subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  remember(list) { for (const r of list) rows.set(r.run_id, r); },
  row: (id) => rows.get(id),
  label: (id) => { const r = rows.get(id); return r ? r.name : id; },
};
