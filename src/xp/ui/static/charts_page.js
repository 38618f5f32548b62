// Charts page: the selected runs' metric series, one chart per metric, lazily loaded as
// charts scroll into view; x axis / smoothing / log controls; zoom re-fetches the range at
// full resolution; live runs gain points from `series` events.

import { h, clear, select, debounce } from './dom.js';
import { runColor, assignColors } from './colors.js';
import { num, fmtValue } from './format.js';
import { state } from './state.js';
import { href, setParams } from './router.js';
import { MetricChart } from './chart.js';
import { reloadLater, mayHaveAppeared } from './live.js';

const POINTS = 2000;

export function runSidebar(rows, hidden, onToggle) {
  return h('div', { class: 'run-list' }, rows.map((r) => {
    const cb = h('input', { type: 'checkbox', checked: !hidden.has(r.run_id), 'aria-label': 'show run' });
    cb.addEventListener('change', () => onToggle(r.run_id, cb.checked));
    return h('label', { class: 'run-item', title: r.name },
      cb, h('span', { class: 'dot', style: { background: runColor(r.run_id) } }),
      h('a', { href: href('run', [r.run_id]), class: 'run-item-name' }, r.name),
      h('span', { class: 'pill s-' + r.status, dataset: { status: r.run_id } }, r.status));
  }));
}

/** Metrics logged once: horizontal bars per run (a chart of one point per run says little). */
export function summaryCard(metrics, rows) {
  const body = h('div', { class: 'bars' });
  for (const m of metrics) {
    const vals = rows.map((r) => num(r.metrics ? r.metrics[m] : undefined));
    const max = Math.max(...vals.filter(Number.isFinite).map(Math.abs), 1e-12);
    body.append(h('div', { class: 'bar-metric mono' }, m));
    rows.forEach((r, i) => {
      const v = vals[i];
      body.append(h('div', { class: 'bar-row' }, h('span', { class: 'bar-name', title: r.name }, r.name),
        h('span', { class: 'bar-track' }, Number.isFinite(v) ? h('span', { class: 'bar', style: { width: (100 * Math.abs(v) / max).toFixed(1) + '%', background: runColor(r.run_id) } }) : null),
        h('span', { class: 'bar-val mono' }, r.metrics && m in r.metrics ? fmtValue(r.metrics[m], 'metrics') : '-')));
    });
  }
  return h('div', { class: 'chart-card summary-card' }, h('div', { class: 'chart-head' }, h('span', { class: 'chart-title' }, 'single values'), h('span', { class: 'chart-badge muted' }, 'metrics logged once')), body);
}

export function mountCharts(root, ctx, route) {
  const p = route.params;
  let ids = (p.get('runs') || '').split(',').filter(Boolean);
  if (!ids.length) ids = state.selection;
  assignColors(ids);
  const opts = { xMode: p.get('x') || 'step', smoothing: +(p.get('smooth') || 0), logY: p.get('log') === '1' };
  const filterText = { v: p.get('m') || '' };
  const side = h('aside', { class: 'side' });
  const grid = h('div', { class: 'chart-grid' });
  const note = h('div', { class: 'muted note' });
  const smoothVal = h('span', { class: 'mono smooth-val' }, opts.smoothing.toFixed(2));
  const smooth = h('input', { type: 'range', min: '0', max: '0.99', step: '0.01', value: String(opts.smoothing), 'aria-label': 'smoothing' });
  const logCb = h('input', { type: 'checkbox', checked: opts.logY });
  const mfilter = h('input', { type: 'search', placeholder: 'filter metrics', value: filterText.v, class: 'mfilter' });
  const toolbar = h('div', { class: 'toolbar' },
    h('label', { class: 'ctl' }, 'x axis ', select([['step', 'step'], ['time', 'wall time'], ['relative', 'relative time']], opts.xMode, (v) => { opts.xMode = v; applyOpts(true); })),
    h('label', { class: 'ctl' }, 'smoothing ', smooth, smoothVal),
    h('label', { class: 'ctl' }, logCb, ' log y'),
    mfilter, h('span', { class: 'grow' }), note);
  clear(root).append(h('div', { class: 'page with-side' }, side, h('section', { class: 'charts-main' }, toolbar, grid)));

  const charts = new Map(); // metric -> {chart, runs: [ids], loaded, list}
  const hidden = new Set();
  let rows = [];
  let alive = true;
  const unmounters = [];

  smooth.addEventListener('input', () => { opts.smoothing = +smooth.value; smoothVal.textContent = opts.smoothing.toFixed(2); applySmooth(); });
  logCb.addEventListener('change', () => { opts.logY = logCb.checked; applyOpts(false); });
  mfilter.addEventListener('input', debounce(() => { filterText.v = mfilter.value; setParams({ m: filterText.v }); applyFilter(); }, 150));
  // A chart whose series were thinned asks the server to smooth them over every point;
  // the others smooth what they have, which is every point.
  const applySmooth = debounce(() => {
    setParams({ smooth: opts.smoothing || '' });
    for (const c of charts.values()) {
      if (c.loaded && opts.smoothing > 0 && c.list.some((s) => s.downsampled) && c.full) load(c, null);
      else c.chart.setOptions({ smoothing: opts.smoothing });
    }
  }, 120);

  function applyOpts(refetch) {
    setParams({ x: opts.xMode === 'step' ? '' : opts.xMode, log: opts.logY ? '1' : '' });
    for (const c of charts.values()) {
      c.chart.setOptions({ xMode: opts.xMode, logY: opts.logY });
      if (refetch && c.loaded) load(c, null);
    }
  }
  function applyFilter() {
    const f = filterText.v.toLowerCase();
    for (const [m, c] of charts) c.chart.el.hidden = f && !m.toLowerCase().includes(f);
  }

  if (!ids.length) {
    clear(grid).append(h('div', { class: 'empty-state' }, h('p', {}, 'No runs selected.'), h('a', { class: 'btn primary', href: href('runs') }, 'Select runs in the table')));
    return { unmount() {} };
  }

  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const c = [...charts.values()].find((x) => x.chart.el === e.target);
      if (c && !c.loaded) load(c, null);
    }
  }, { rootMargin: '300px' });
  unmounters.push(() => observer.disconnect());

  async function load(c, zoom) {
    c.loaded = true;
    const x = opts.xMode === 'step' ? 'step' : 'time';
    const smooth = opts.smoothing > 0 ? opts.smoothing : undefined;
    const runIds = c.runs;
    let series = [];
    if (zoom && zoom.relative) {
      // relative time: the same window is a different absolute range for every run
      const parts = await Promise.all(c.list.map((s) => ctx.source.series({ runs: [s.id], metrics: [c.metric], points: POINTS, x, smooth, xmin: Math.floor(s.start + zoom.min * 1000), xmax: Math.ceil(s.start + zoom.max * 1000) })));
      series = parts.flatMap((r) => r.series);
    } else {
      const res = await ctx.source.series({ runs: runIds, metrics: [c.metric], points: POINTS, x, smooth, xmin: zoom ? zoom.xmin : undefined, xmax: zoom ? zoom.xmax : undefined });
      series = res.series;
    }
    if (!alive) return;
    const byRun = new Map(rows.map((r) => [r.run_id, r]));
    c.list = series.map((s) => ({
      id: s.run_id, label: byRun.get(s.run_id) ? byRun.get(s.run_id).name : s.run_id, color: runColor(s.run_id),
      step: s.step, time: s.time, value: s.value, start: s.start, count: s.count, downsampled: s.downsampled,
      smoothed: s.smoothed, smoothedWith: s.smoothed ? smooth : undefined,
    }));
    c.full = !zoom;
    c.chart.opts.smoothing = opts.smoothing;
    c.chart.setSeries(c.list, !!zoom);
  }

  async function appendLive(c, runId) {
    if (!c.loaded || !c.full || c.busy) return;
    const s = c.list.find((x) => x.id === runId);
    if (!s) return;
    c.busy = true;
    try {
      if (opts.smoothing > 0 && s.downsampled) { await load(c, null); return; } // smoothed on the server
      const after = s.step.length ? Math.max(...s.step) : -1;
      const res = await ctx.source.series({ runs: [runId], metrics: [c.metric], points: POINTS, x: 'step', after_step: after });
      const n = res.series[0];
      if (!n || !alive || !n.step.length) return;
      s.step = s.step.concat(n.step); s.time = s.time.concat(n.time); s.value = s.value.concat(n.value); s.count = n.count;
      s.smoothed = undefined;
      if (s.step.length > POINTS * 2) { await load(c, null); return; } // re-downsample when the tail grows long
      c.chart.setSeries(c.list, true);
    } finally { c.busy = false; }
  }

  function addChart(name, runs) {
    const chart = new MetricChart(grid, {
      metric: name, ...opts,
      onZoom: (z) => { const c = charts.get(name); if (c.list.some((s) => s.downsampled) || !c.full) load(c, z); },
      onPick: (id) => { location.hash = href('run', [id]); },
    });
    const c = { metric: name, chart, runs, loaded: false, list: [] };
    charts.set(name, c);
    observer.observe(chart.el);
    return c;
  }

  let missing = []; // runs in the link that the server does not know (yet)
  let endT = 0; // a reload once a run of the page ended
  let built = false; // the charts of the first answer are made: live events may add more

  (async () => {
    let metricsAsked = ctx.source.metrics(ids); // both at once: one round trip less
    metricsAsked.catch(() => {}); // (awaited below; no unhandled rejection meanwhile)
    const res = await ctx.source.runs({ ids });
    rows = res.rows;
    state.remember(rows);
    if (!alive) return;
    const known = new Set(rows.map((r) => r.run_id));
    missing = ids.filter((id) => !known.has(id));
    const head = h('div', { class: 'side-head' }, h('strong', {}, `${rows.length} run${rows.length === 1 ? '' : 's'}`), h('a', { href: href('compare', [], { runs: ids }), class: 'link' }, 'compare →'));
    clear(side).append(head, runSidebar(rows, hidden, (id, on) => { if (on) hidden.delete(id); else hidden.add(id); for (const c of charts.values()) c.chart.setHidden([...hidden]); }));
    if (missing.length) {
      side.append(h('p', { class: 'muted note missing-runs' }, `Not found (yet): ${missing.join(', ')}. The page shows ${missing.length === 1 ? 'it' : 'them'} once xp sees ${missing.length === 1 ? 'it' : 'them'}.`));
      unmounters.push(reloadLater(ctx, ids.join(',')));
      metricsAsked = rows.length ? ctx.source.metrics(rows.map((r) => r.run_id)) : Promise.resolve({ metrics: [] });
    }
    const m = await metricsAsked;
    if (!alive) return;
    const series = m.metrics.filter((x) => Object.values(x.runs).some((c) => c > 1));
    const single = m.metrics.filter((x) => !series.includes(x));
    note.textContent = `${series.length} series, ${single.length} single-value metric${single.length === 1 ? '' : 's'}`;
    if (single.length) {
      const card = summaryCard(single.map((x) => x.name), rows);
      grid.append(card);
    }
    for (const { name, runs } of series) addChart(name, Object.keys(runs));
    applyFilter();
    built = true;
  })().catch((e) => { clear(grid).append(h('div', { class: 'error' }, String(e.message || e))); });

  /** A live run's metric that grew past one point after the page was made: its chart, or
   *  its line in the chart there is. */
  function grown(runId, metric) {
    const c = charts.get(metric);
    if (!c) {
      addChart(metric, [runId]);
      applyFilter();
    } else if (!c.runs.includes(runId)) {
      c.runs.push(runId);
      if (c.loaded) load(c, null);
    } else {
      appendLive(c, runId);
    }
  }

  return {
    charts,
    unmount() { alive = false; unmounters.forEach((f) => f()); for (const c of charts.values()) c.chart.destroy(); },
    onEvent(type, data) {
      if (mayHaveAppeared(type, data, missing)) {
        ctx.reload();
      } else if (type === 'series') {
        if (built && ids.includes(data.run_id) && !missing.includes(data.run_id) && data.count > 1) grown(data.run_id, data.metric);
      } else if (type === 'run' && data.row) {
        const pill = side.querySelector(`[data-status="${CSS.escape(data.run_id)}"]`);
        if (pill) { pill.textContent = data.row.status; pill.className = 'pill s-' + data.row.status; }
        // a run of the page ended: its record (final name, metrics logged at the end) is
        // what the page shows now, read once
        const was = rows.find((r) => r.run_id === data.run_id);
        if (was && was.status === 'running' && data.row.status !== 'running' && !endT) {
          endT = setTimeout(() => { if (alive) ctx.reload(); }, 300);
          unmounters.push(() => clearTimeout(endT));
        }
      }
    },
  };
}
