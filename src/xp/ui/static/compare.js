// Side-by-side comparison table (runs as columns, keys as rows); rows whose values differ
// are highlighted, the best metric value is bold. Used by the Compare page and reports.

import { h } from './dom.js';
import { fmtCell, cell, valueKey, num } from './format.js';
import { runColor } from './colors.js';
import { href } from './router.js';

const LOWER_BETTER = /loss|err|rmse|mse|mae|mape|perplexity|ppl|cost|wer|cer|latency|distance|regret/i;
export const lowerIsBetter = (metric) => LOWER_BETTER.test(metric);

const ATTRS = ['status', 'experiment', 'created', 'duration', 'branch', 'baseline', 'user', 'run_id'];

export function compareRows(rows) {
  const keys = (kind) => [...new Set(rows.flatMap((r) => Object.keys(r[kind] || {})))].sort().map((k) => kind + '.' + k);
  return [['attributes', ATTRS], ['params', keys('params')], ['metrics', keys('metrics')], ['tags', keys('tags')]];
}

// times differ in every pair of runs to the millisecond: they differ when what is shown does
const SHOWN = new Set(['created', 'duration']);

export function differs(rows, col) {
  const s = new Set(rows.map((r) => (SHOWN.has(col) ? fmtCell(r, col) : valueKey(cell(r, col)))));
  return s.size > 1;
}

/** -> element; opts.onlyDiff hides equal rows; opts.links adds links to the run pages. */
export function compareTable(rows, { onlyDiff = false, links = true } = {}) {
  const head = h('tr', {}, h('th', {}, ''), rows.map((r) => h('th', { title: r.name },
    h('span', { class: 'cmp-head' }, h('span', { class: 'dot', style: { background: runColor(r.run_id) } }),
      links ? h('a', { href: href('run', [r.run_id]) }, r.name) : h('span', {}, r.name)))));
  const body = h('tbody');
  let shown = 0;
  for (const [section, cols] of compareRows(rows)) {
    const visible = cols.filter((c) => !onlyDiff || differs(rows, c) || c === 'run_id');
    if (!visible.length) continue;
    body.append(h('tr', { class: 'sect' }, h('th', { colspan: String(rows.length + 1) }, section)));
    for (const col of visible) {
      const d = rows.length > 1 && differs(rows, col);
      let best = null;
      if (section === 'metrics' && d) {
        const vals = rows.map((r) => num(cell(r, col))).filter(Number.isFinite);
        if (vals.length) best = lowerIsBetter(col) ? Math.min(...vals) : Math.max(...vals);
      }
      body.append(h('tr', { class: d ? 'diff' : null },
        h('th', { title: col }, section === 'attributes' ? col : col.slice(section.length + 1)),
        rows.map((r) => {
          const t = fmtCell(r, col);
          return h('td', { title: t, class: best !== null && num(cell(r, col)) === best ? 'best' : null }, t);
        })));
      shown++;
    }
  }
  if (!shown) body.append(h('tr', {}, h('td', { colspan: String(rows.length + 1), class: 'muted' }, 'Nothing differs.')));
  return h('div', { class: 'cmp-wrap' }, h('table', { class: 'cmp' }, h('thead', {}, head), body));
}
