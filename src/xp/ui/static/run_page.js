// Run page: meta, params, metrics (with series summaries), tags, charts of its series,
// inputs, packages, the `xp run` log, artifacts (download links) with inline previews of
// images, text, Markdown and CSV.

import { h, clear, append } from './dom.js';
import { fmtValue, fmtTime, fmtDuration, fmtBytes, fmtNumber } from './format.js';
import { runColor } from './colors.js';
import { state } from './state.js';
import { href } from './router.js';
import { MetricChart } from './chart.js';
import { renderMarkdown } from './markdown.js';
import { csvTable } from './csv.js';
import { reloadLater, mayHaveAppeared } from './live.js';

const MAX_PREVIEW = 262144;

export function kvTable(obj, kind) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return h('div', { class: 'muted' }, 'none');
  return h('table', { class: 'kv' }, h('tbody', {}, keys.map((k) => h('tr', {}, h('td', {}, k), h('td', { class: 'val' }, fmtValue(obj[k], kind))))));
}

function metaRows(d) {
  const m = d.meta || {};
  const rows = [
    ['id', m.id], ['experiment', m.experiment], ['status', m.status], ['started', fmtTime(m.start_time)],
    ['ended', fmtTime(m.end_time)], ['duration', fmtDuration(m.duration)], ['branch', m.branch ?? '(detached)'],
    ['baseline', m.baseline], ['dirty', m.dirty === undefined ? undefined : String(m.dirty)], ['command', Array.isArray(m.command) ? m.command.join(' ') : m.command],
    ['cwd', m.cwd], ['user', m.user], ['host', m.host], ['python', m.python], ['platform', m.platform], ['xp', m.xp_version],
    ['exit code', m.exit_code], ['parent', m.parent], ['message', m.message], ['ref', d.run.ref], ['commit', d.run.commit],
  ];
  if (m.warnings) rows.push(['warnings', m.warnings.join('; ')]);
  return h('table', { class: 'kv' }, h('tbody', {}, rows.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', { class: 'val' }, String(v))))));
}

export function artifactPreview(source, runId, a) {
  const url = a.url && a.available !== false ? (source.embedded ? a.url : source.artifactUrl(runId, a.path)) : null;
  const box = h('div', { class: 'preview' }, h('div', { class: 'preview-head', title: a.path }, a.path));
  const body = h('div', { class: 'preview-body' });
  box.append(body);
  if (!url) { body.append(h('div', { class: 'muted' }, 'not embedded')); return box; }
  if (a.kind === 'image') {
    // SVG goes through <img> too: scripts inside it never run there
    body.append(h('img', { src: url, alt: a.path, decoding: 'async' }));
    return box;
  }
  body.append(h('div', { class: 'muted' }, 'loading…'));
  source.text(url, MAX_PREVIEW).then(({ text, truncated }) => {
    clear(body);
    if (a.kind === 'markdown') body.append(renderMarkdown(text));
    else if (a.kind === 'csv') body.append(csvTable(text, { sep: /\.tsv$/i.test(a.path) ? '\t' : ',' }));
    else body.append(h('pre', { class: 'text' }, text));
    if (truncated) body.append(h('div', { class: 'muted' }, `first ${fmtBytes(MAX_PREVIEW)} shown`));
  }, (e) => { clear(body).append(h('div', { class: 'error' }, e.message)); });
  return box;
}

export function mountRun(root, ctx, route) {
  const id = route.args[0];
  const page = h('div', { class: 'page scroll' });
  clear(root).append(page);
  let alive = true;
  const charts = new Map(); // metric -> MetricChart, kept across refreshes of a live run
  let logPre = null;
  let missing = []; // [id] while the server does not know the run (yet)
  let cancelReload = () => {};
  // the page's parts, replaced in place when a live run's data changes
  const slots = {};
  let artifactsKey = null;
  let grid = null;

  async function loadLog(d) {
    if (!d.log || ctx.source.embedded || !logPre) return;
    const res = await fetch(ctx.source.logUrl(id) + '?tail=200000');
    if (!res.ok) return;
    const text = await res.text();
    if (!alive || !logPre) return;
    const atEnd = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
    logPre.textContent = text;
    if (atEnd) logPre.scrollTop = logPre.scrollHeight; // follow the output unless scrolled back
  }

  function put(name, node) {
    if (slots[name]) slots[name].replaceWith(node);
    else page.append(node);
    slots[name] = node;
  }

  function title(r) {
    document.title = `xp · ${r.name}`;
    const sel = h('input', { type: 'checkbox', checked: state.isSelected(id) });
    sel.addEventListener('change', () => state.toggle(id, sel.checked));
    return h('div', { class: 'run-title' },
      h('span', { class: 'dot', style: { background: runColor(id) } }), h('h2', {}, r.name),
      h('span', { class: 'pill s-' + r.status, id: 'run-status' }, r.status), h('span', { class: 'muted mono' }, id),
      h('span', { class: 'grow' }), h('label', { class: 'ctl' }, sel, ' selected'),
      h('a', { class: 'btn', href: href('compare', [], { runs: [...new Set([...state.selection, id])] }) }, 'Compare with selection'));
  }

  async function render(d) {
    const r = d.run;
    state.remember([r]);
    put('title', title(r));

    const seriesTable = d.series.length ? h('table', { class: 'kv' }, h('tbody', {},
      h('tr', {}, ['metric', 'last', 'min', 'max', 'best (step)', 'points'].map((t) => h('th', { class: 'muted' }, t))),
      d.series.map((s) => h('tr', {}, h('td', {}, s.name), ...[s.last, s.min, s.max].map((v) => h('td', { class: 'val' }, fmtValue(v, 'metrics'))),
        h('td', { class: 'val' }, `${fmtValue(s.best, 'metrics')} (${s.best_step ?? '-'})`), h('td', { class: 'val' }, fmtNumber(s.count)))))) : h('div', { class: 'muted' }, 'none');

    put('cols', h('div', { class: 'cols2' },
      h('div', { class: 'card' }, h('h3', {}, 'Run'), metaRows(d)),
      h('div', {}, h('div', { class: 'card' }, h('h3', {}, 'Params'), kvTable(r.params, 'params')),
        h('div', { class: 'card' }, h('h3', {}, 'Metrics'), kvTable(r.metrics, 'metrics')),
        h('div', { class: 'card' }, h('h3', {}, 'Tags'), kvTable(r.tags, 'tags')))));

    // the charts live in one grid kept across refreshes: a live run's charts are updated,
    // not drawn again, so a zoom or a hover survives the next point
    if (!grid) grid = h('div', { class: 'chart-grid' });
    put('series', h('div', { class: 'card' }, h('h3', {}, 'Series'), seriesTable, h('div', { style: { height: '10px' } }), grid));
    const multi = d.series.filter((s) => s.count > 1);
    const later = [];
    if (multi.length) {
      later.push(ctx.source.series({ runs: [id], metrics: multi.map((s) => s.name), points: 1000 }).then((res) => {
        if (!alive) return;
        for (const s of res.series) {
          let c = charts.get(s.metric);
          if (!c) { c = new MetricChart(grid, { metric: s.metric, height: 200 }); charts.set(s.metric, c); }
          c.setSeries([{ id, label: r.name, color: runColor(id), step: s.step, time: s.time, value: s.value, start: s.start, count: s.count, downsampled: s.downsampled }], true);
        }
      }));
    }

    put('inputs', h('div', { class: 'cols2' },
      h('div', { class: 'card' }, h('h3', {}, 'Inputs'), d.inputs.length ? h('table', { class: 'art-list' }, h('tbody', {}, d.inputs.map((i) => h('tr', {},
        h('td', { class: 'mono' }, i.path + (i.kind === 'dir' ? '/' : '')), h('td', { class: 'mono muted' }, (i.sha256 || '').slice(0, 12)),
        h('td', { class: 'size' }, i.kind === 'dir' ? `${i.files} files, ${fmtBytes(i.size)}` : fmtBytes(i.size)))))) : h('div', { class: 'muted' }, 'none')),
      h('div', { class: 'card' }, h('h3', {}, `Packages (${d.packages.length})`), h('div', { class: 'pkgs' }, d.packages.map((p) => h('div', {}, p))))));

    // artifacts: made again only when the list changed (their previews are fetched)
    const key = JSON.stringify(d.artifacts.map((a) => [a.path, a.sha256, a.size, a.available]));
    if (key !== artifactsKey) {
      artifactsKey = key;
      const list = h('table', { class: 'art-list' }, h('tbody', {}, d.artifacts.map((a) => {
        const url = a.available === false ? null : ctx.source.embedded ? a.url : ctx.source.artifactUrl(id, a.path, true);
        return h('tr', {}, h('td', { class: 'mono' }, url ? h('a', { href: url, download: a.path.split('/').pop() }, a.path) : [a.path, h('span', { class: 'muted' }, a.available === false ? ' (not pulled)' : '')]),
          h('td', { class: 'muted' }, a.kind), h('td', { class: 'size' }, fmtBytes(a.size)));
      })));
      const previews = h('div', { class: 'previews' });
      for (const a of d.artifacts) if (['image', 'text', 'markdown', 'csv'].includes(a.kind) && a.path !== 'logs/xp-run.log' && a.size <= 20 * 1024 * 1024) previews.append(artifactPreview(ctx.source, id, a));
      put('artifacts', h('div', { class: 'card' }, h('h3', {}, `Artifacts (${d.artifacts.length})`), d.artifacts.length ? list : h('div', { class: 'muted' }, 'none'), previews));
    }

    if (d.log) {
      if (!logPre) {
        logPre = h('pre', { class: 'log' }, 'loading…');
        put('log', h('div', { class: 'card' }, h('h3', {}, 'Log (xp run)'), logPre,
          ctx.source.embedded ? null : h('a', { href: ctx.source.artifactUrl(id, 'logs/xp-run.log', true), class: 'link' }, 'download full log')));
      }
      later.push(loadLog(d));
    }
    await Promise.all(later);
  }

  // A live run's page follows it: at most one refresh every REFRESH ms while events about it
  // arrive, and one when it ends.
  const REFRESH = 1500;
  let refreshT = 0;
  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const d = await ctx.source.run(id);
      if (alive) await render(d);
    } catch (e) { /* the next event tries again */ } finally {
      refreshing = false;
      if (again && alive) { again = false; schedule(); }
    }
  }
  function schedule() { if (!refreshT) refreshT = setTimeout(() => { refreshT = 0; refresh(); }, REFRESH); }

  (async () => {
    const d = await ctx.source.run(id);
    if (!alive) return;
    await render(d);
  })().catch((e) => {
    if (e.status === 404 && alive) {
      missing = [id];
      cancelReload = reloadLater(ctx, 'run:' + id);
      append(page, [h('div', { class: 'error' }, `Not found (yet): ${id}. A run that just started shows once it has logged for half a second; a pushed one once it is fetched. This page shows it when it appears. (${e.message || e})`)]);
    } else append(page, [h('div', { class: 'error' }, String(e.message || e))]);
  });

  return {
    charts, // tests and devtools look here
    unmount() { alive = false; charts.forEach((c) => c.destroy()); clearTimeout(refreshT); cancelReload(); },
    onEvent(type, data) {
      if (mayHaveAppeared(type, data, missing)) { ctx.reload(); return; }
      if (data.run_id !== id || !slots.title) return;
      if (type === 'run' && data.row) {
        const pill = page.querySelector('#run-status');
        if (pill) { pill.textContent = data.row.status; pill.className = 'pill s-' + data.row.status; }
        if (data.row.status !== 'running') { clearTimeout(refreshT); refreshT = 0; refresh(); return; } // ended: its record now
      }
      if (type === 'run' || type === 'series') schedule();
    },
  };
}
