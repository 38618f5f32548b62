// History: one metric across the commits of a branch (each commit's best or latest run), so
// a regression shows as a step. Click a point to open its run.

import uPlot from './vendor/uPlot.esm.js';
import { h, clear, select, cssVar, append } from './dom.js';
import { fmtNumber, fmtTime } from './format.js';
import { setParams, navigate } from './router.js';

export function renderHistory(box, data, { height = 320, onPick = null } = {}) {
  const pts = data.points;
  const x = pts.map((_, i) => i);
  const y = pts.map((p) => (p.value === null ? null : p.value));
  const fg = cssVar('--muted') || '#666';
  const grid = cssVar('--grid') || 'rgba(0,0,0,.08)';
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '11px system-ui, sans-serif' };
  const tip = h('div', { class: 'chart-tip', hidden: true });
  const plot = h('div', { class: 'chart-plot' });
  clear(box).append(h('div', { class: 'chart-body' }, plot, tip));
  const u = new uPlot({
    width: box.clientWidth || 900, height,
    legend: { show: false },
    cursor: { drag: { x: true, y: false }, points: { size: 9 } },
    scales: { x: { time: false } },
    axes: [{ ...axis, values: (_, s) => s.map((i) => (pts[i] ? pts[i].short : '')), space: 70 }, { ...axis, size: 60, values: (_, s) => s.map((v) => fmtNumber(v, 4)) }],
    series: [{}, { label: data.metric, stroke: '#2f6fec', width: 2, spanGaps: true, points: { show: true, size: 7, fill: '#2f6fec' }, paths: uPlot.paths.stepped({ align: 1 }) }],
    hooks: {
      setCursor: [(u2) => {
        const i = u2.cursor.idx;
        if (i === null || i === undefined || !pts[i]) { tip.hidden = true; return; }
        const p = pts[i];
        append(clear(tip), [h('div', { class: 'tip-x mono' }, `${p.short} · ${fmtTime(p.date)}`), h('div', {}, p.subject),
          h('div', { class: 'tip-row' }, h('strong', { class: 'mono' }, p.value === null ? 'no run' : fmtNumber(p.value, 6)),
            p.run_name ? h('span', { class: 'tip-name muted' }, `${data.pick} of ${p.runs}: ${p.run_name}`) : null)]);
        tip.hidden = false;
        const left = u2.cursor.left;
        tip.style.left = (left > plot.clientWidth / 2 ? left - tip.offsetWidth - 10 : left + 70) + 'px';
        tip.style.top = '20px';
      }],
    },
  }, [x, y], plot);
  u.over.addEventListener('click', () => {
    const i = u.cursor.idx;
    if (i !== null && pts[i] && pts[i].run_id && onPick) onPick(pts[i].run_id);
  });
  u.over.addEventListener('mouseleave', () => { tip.hidden = true; });
  const ro = new ResizeObserver(() => { if (box.clientWidth && box.clientWidth !== u.width) u.setSize({ width: box.clientWidth, height }); });
  ro.observe(box);
  return { destroy() { ro.disconnect(); u.destroy(); }, u };
}

export function mountHistory(root, ctx, route) {
  const p = route.params;
  const page = h('div', { class: 'page scroll' });
  clear(root).append(page);
  let chart = null;
  let alive = true;
  (async () => {
    const meta = ctx.meta || await ctx.source.meta();
    if (!alive) return;
    const q = { branch: p.get('branch') || meta.default_branch || (meta.branches[0] || {}).name, metric: p.get('metric') || (meta.columns.metrics.includes('acc') ? 'metrics.acc' : 'metrics.' + meta.columns.metrics[0]), pick: p.get('pick') || 'best', q: p.get('q') || '' };
    const box = h('div', { class: 'history-box' });
    const info = h('div', { class: 'muted', style: { fontSize: '12px', marginTop: '6px' } });
    const filter = h('input', { type: 'search', placeholder: "only runs matching, e.g. experiment = 'baseline'", value: q.q, class: 'mono', style: { width: '340px' } });
    filter.addEventListener('change', () => { q.q = filter.value; load(); });
    page.append(h('div', { class: 'card' },
      h('div', { class: 'section-bar' }, h('h2', {}, 'History'),
        h('label', { class: 'ctl' }, 'branch ', select(meta.branches.map((b) => [b.name, b.name]), q.branch, (v) => { q.branch = v; load(); })),
        h('label', { class: 'ctl' }, 'metric ', select(meta.columns.metrics.map((k) => ['metrics.' + k, k]), q.metric, (v) => { q.metric = v; load(); })),
        h('label', { class: 'ctl' }, 'per commit ', select([['best', 'best run'], ['latest', 'latest run']], q.pick, (v) => { q.pick = v; load(); })),
        filter),
      box, info));
    async function load() {
      setParams(q);
      try {
        const data = await ctx.source.history(q);
        if (!alive) return;
        if (chart) chart.destroy();
        chart = renderHistory(box, data, { onPick: (id) => navigate('run', [id]) });
        const withRuns = data.points.filter((x) => x.value !== null).length;
        info.textContent = `${data.points.length} commits on ${data.branch} (first parent), ${withRuns} with runs; ${data.pick} = ${data.direction === 'min' ? 'lowest' : 'highest'} ${data.metric}. Click a point to open its run.`;
      } catch (e) { clear(box).append(h('div', { class: 'error' }, e.message)); }
    }
    load();
  })().catch((e) => append(page, [h('div', { class: 'error' }, String(e.message || e))]));
  return { unmount() { alive = false; if (chart) chart.destroy(); } };
}
