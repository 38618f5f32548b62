// Compare page: side-by-side table, parallel coordinates (params -> metric), scatter of any
// two columns, and the code diff between two runs.

import { h, clear, select, append } from './dom.js';
import { runColor, assignColors } from './colors.js';
import { state } from './state.js';
import { href, setParams, navigate } from './router.js';
import { compareTable } from './compare.js';
import { ParCoords } from './parcoords.js';
import { Scatter } from './scatter.js';
import { renderDiff } from './diffview.js';

export function mountCompare(root, ctx, route) {
  const p = route.params;
  let ids = (p.get('runs') || '').split(',').filter(Boolean);
  if (!ids.length) ids = state.selection;
  assignColors(ids);
  const page = h('div', { class: 'page scroll' });
  clear(root).append(page);
  if (!ids.length) {
    page.append(h('div', { class: 'empty-state' }, h('p', {}, 'Select two or more runs to compare.'), h('a', { class: 'btn primary', href: href('runs') }, 'Select runs')));
    return { unmount() {} };
  }
  let alive = true;
  const parts = [];
  const lastQ = sessionStorage.getItem('xp.q') || '';

  (async () => {
    const res = await ctx.source.runs({ ids });
    if (!alive) return;
    const rows = res.rows;
    state.remember(rows);
    const highlight = new Map(rows.map((r) => [r.run_id, runColor(r.run_id)]));

    // -- side by side
    const onlyDiff = h('input', { type: 'checkbox', checked: p.get('all') !== '1' });
    const tableBox = h('div');
    const drawTable = () => { clear(tableBox).append(compareTable(rows, { onlyDiff: onlyDiff.checked })); setParams({ all: onlyDiff.checked ? '' : '1' }); };
    onlyDiff.addEventListener('change', drawTable);
    page.append(h('div', { class: 'card' },
      h('div', { class: 'section-bar' }, h('h2', {}, `Comparing ${rows.length} runs`), h('span', { class: 'grow' }),
        h('label', { class: 'ctl' }, onlyDiff, ' only rows that differ'),
        h('a', { class: 'btn', href: href('charts', [], { runs: ids }) }, 'Charts')),
      tableBox));
    drawTable();

    // -- parallel coordinates + scatter over a scope of runs
    const meta = ctx.meta || await ctx.source.meta();
    const cols = [...meta.columns.params.map((k) => 'params.' + k), ...meta.columns.metrics.map((k) => 'metrics.' + k), 'duration', 'created'];
    const metrics = meta.columns.metrics.map((k) => 'metrics.' + k);
    const params = meta.columns.params.map((k) => 'params.' + k).filter((c) => !/(^|\.)seed$/.test(c));
    let target = p.get('target') || (metrics.includes('metrics.acc') ? 'metrics.acc' : metrics[0]);
    let scope = ctx.source.embedded ? 'selected' : p.get('scope') || 'all';
    let sx = p.get('sx') || params[0];
    let sy = p.get('sy') || target;

    const pcBox = h('div');
    const pcNote = h('span', { class: 'muted' });
    const scopeSel = () => select([['all', lastQ ? 'runs matching the filter' : 'all runs'], ['selected', 'selected runs only']], scope, (v) => { scope = v; setParams({ scope: v }); loadPoints(); });
    const brushSel = h('button', { class: 'btn tiny', type: 'button', hidden: true }, 'select brushed runs');
    const brushTable = h('a', { class: 'btn tiny', hidden: true, title: 'the runs table, filtered to the brushed ranges' }, 'show in the table');
    page.append(h('div', { class: 'card' },
      h('div', { class: 'section-bar' }, h('h2', {}, 'Parallel coordinates'),
        h('label', { class: 'ctl' }, 'metric ', select(metrics, target, (v) => { target = v; setParams({ target: v }); loadPoints(); })),
        h('label', { class: 'ctl' }, 'runs ', ctx.source.embedded ? 'selected' : scopeSel()),
        h('span', { class: 'grow' }), pcNote, brushSel, brushTable),
      h('div', { class: 'muted', style: { marginBottom: '6px', fontSize: '12px' } }, 'Drag along an axis to brush a range; click an axis to clear it. Selected runs are drawn in their colours.'),
      pcBox));
    const pc = new ParCoords(pcBox, { onBrush: (inside, n) => {
      pcNote.textContent = inside === null ? `${n.toLocaleString('en-US')} runs` : `${inside.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} runs in the brushes`;
      brushSel.hidden = inside === null || inside > 50;
      const f = inside === null ? '' : pc.brushFilter();
      brushTable.hidden = !f || ctx.source.embedded;
      if (f) {
        const scopeQ = scope === 'selected' ? `run_id in (${ids.map((i) => "'" + i + "'").join(', ')})` : lastQ;
        brushTable.setAttribute('href', href('runs', [], { q: scopeQ ? `(${scopeQ}) and ${f}` : f }));
      }
    } });
    parts.push(pc);
    brushSel.addEventListener('click', () => state.setSelection([...state.selection, ...pc.brushedIds()]));

    const scBox = h('div');
    const logX = h('input', { type: 'checkbox' });
    const logY = h('input', { type: 'checkbox' });
    page.append(h('div', { class: 'card' },
      h('div', { class: 'section-bar' }, h('h2', {}, 'Scatter'),
        h('label', { class: 'ctl' }, 'x ', select(cols, sx, (v) => { sx = v; setParams({ sx: v }); loadPoints(); })), h('label', { class: 'ctl' }, logX, ' log'),
        h('label', { class: 'ctl' }, 'y ', select(cols, sy, (v) => { sy = v; setParams({ sy: v }); loadPoints(); })), h('label', { class: 'ctl' }, logY, ' log')),
      scBox));
    const sc = new Scatter(scBox, { onPick: (id) => navigate('run', [id]) });
    parts.push(sc);

    let pts = null;
    const drawScatter = () => pts && sc.setData({ ids: pts.run_id, names: pts.name, x: { name: sx, values: pts.cols[sx] }, y: { name: sy, values: pts.cols[sy] }, highlight, logX: logX.checked, logY: logY.checked });
    logX.addEventListener('change', drawScatter);
    logY.addEventListener('change', drawScatter);
    async function loadPoints() {
      const axes = [...params.filter((c) => c !== target), target];
      const want = [...new Set([...axes, sx, sy])];
      pts = scope === 'selected'
        ? filterTo(await ctx.source.points({ ids, cols: want }), ids)
        : await ctx.source.points({ q: lastQ, cols: want, include: ids, limit: 5000 });
      if (!alive) return;
      // an axis needs at least two distinct values among these runs
      const useful = axes.filter((a) => a === target || new Set(pts.cols[a].filter((v) => v !== null).map((v) => JSON.stringify(v))).size > 1);
      pc.setData({ ids: pts.run_id, axes: useful.map((a) => ({ name: a, values: pts.cols[a] })), highlight });
      drawScatter();
    }
    loadPoints();

    // -- code diff
    const diffBox = h('div');
    let a = p.get('a') || ids[0];
    let b = p.get('b') || ids[1] || ids[0];
    const runOpts = rows.map((r) => [r.run_id, r.name]);
    page.append(h('div', { class: 'card' },
      h('div', { class: 'section-bar' }, h('h2', {}, 'Code diff'),
        h('label', { class: 'ctl' }, 'A ', select(runOpts, a, (v) => { a = v; setParams({ a: v }); loadDiff(); })),
        h('label', { class: 'ctl' }, 'B ', select(runOpts, b, (v) => { b = v; setParams({ b: v }); loadDiff(); }))),
      diffBox));
    async function loadDiff() {
      clear(diffBox).append(h('div', { class: 'muted' }, 'loading…'));
      try {
        const d = await ctx.source.diff(a, b);
        if (!alive) return;
        if (d.same) clear(diffBox).append(h('div', { class: 'muted' }, 'A and B are the same run: nothing differs.'));
        else renderDiff(diffBox, d.patch);
        if (d.truncated) diffBox.append(h('div', { class: 'muted' }, 'The patch was cut by the server.'));
      } catch (e) { clear(diffBox).append(h('div', { class: 'error' }, e.message)); }
    }
    loadDiff();
  })().catch((e) => append(page, [h('div', { class: 'error' }, String(e.message || e))]));

  return { unmount() { alive = false; parts.forEach((x) => x.destroy()); } };
}

function filterTo(res, ids) {
  const keep = new Set(ids);
  const idx = res.run_id.map((id, i) => (keep.has(id) ? i : -1)).filter((i) => i >= 0);
  const pick = (arr) => idx.map((i) => arr[i]);
  const cols = {};
  for (const [k, v] of Object.entries(res.cols)) cols[k] = pick(v);
  return { ...res, run_id: pick(res.run_id), name: pick(res.name), status: pick(res.status), cols };
}
