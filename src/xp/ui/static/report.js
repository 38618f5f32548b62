// Entry point of a self-contained report (`xp report RUN... -o report.html`). The report
// writer inlines the modules and a <script type="application/json" id="xp-data"> blob;
// createSource() then answers every call from that blob, so nothing is fetched.

import { h, clear, select, append } from './dom.js';
import { createSource } from './api.js';
import { runColor, setColors } from './colors.js';
import { state } from './state.js';
import { compareTable } from './compare.js';
import { MetricChart } from './chart.js';
import { summaryCard } from './charts_page.js';
import { renderDiff } from './diffview.js';
import { kvTable, artifactPreview } from './run_page.js';
import { ParCoords } from './parcoords.js';
import { fmtTime } from './format.js';
import { renderHistory } from './history_page.js';

export async function main() {
  const source = createSource();
  const data = source.data || {};
  const app = document.getElementById('app');
  const page = h('div', { class: 'report' });
  clear(app).append(page);
  const ids = (data.runs || []).map((r) => r.run_id);
  setColors(ids, false); // the report's order, as xp plot colours them; the session's stay
  const { rows } = await source.runs({ ids });
  state.remember(rows);
  page.append(h('header', {}, h('h1', {}, data.title || 'xp report'),
    h('div', { class: 'muted' }, `${rows.length} runs · ${data.subtitle || ''}`),
    h('div', { class: 'chips', style: { maxHeight: 'none', marginTop: '8px' } }, rows.map((r) => h('span', { class: 'chip' },
      h('span', { class: 'dot', style: { background: runColor(r.run_id) } }), h('span', { class: 'chip-label' }, r.name))))));

  // comparison table
  const tBox = h('div');
  const only = h('input', { type: 'checkbox', checked: rows.length > 1 });
  const drawT = () => clear(tBox).append(compareTable(rows, { onlyDiff: only.checked, links: false }));
  only.addEventListener('change', drawT);
  page.append(h('section', { class: 'card' }, h('div', { class: 'section-bar' }, h('h2', {}, 'Runs'), h('span', { class: 'grow' }), h('label', { class: 'ctl' }, only, ' only rows that differ')), tBox));
  drawT();

  // charts
  const m = await source.metrics(ids);
  const multi = m.metrics.filter((x) => Object.values(x.runs).some((c) => c > 1));
  const single = m.metrics.filter((x) => !multi.includes(x));
  if (m.metrics.length) {
    const grid = h('div', { class: 'chart-grid' });
    const opts = { xMode: 'step', smoothing: 0, logY: false };
    const charts = [];
    const smooth = h('input', { type: 'range', min: '0', max: '0.99', step: '0.01', value: '0' });
    smooth.addEventListener('input', () => charts.forEach((c) => c.setOptions({ smoothing: +smooth.value })));
    const logCb = h('input', { type: 'checkbox' });
    logCb.addEventListener('change', () => charts.forEach((c) => c.setOptions({ logY: logCb.checked })));
    page.append(h('section', { class: 'card' }, h('div', { class: 'section-bar' }, h('h2', {}, 'Metrics'), h('span', { class: 'grow' }),
      h('label', { class: 'ctl' }, 'x axis ', select([['step', 'step'], ['time', 'wall time'], ['relative', 'relative time']], 'step', (v) => charts.forEach((c) => c.setOptions({ xMode: v })))),
      h('label', { class: 'ctl' }, 'smoothing ', smooth), h('label', { class: 'ctl' }, logCb, ' log y')), grid));
    if (single.length) grid.append(summaryCard(single.map((x) => x.name), rows));
    const byId = new Map(rows.map((r) => [r.run_id, r]));
    for (const { name } of multi) {
      const res = await source.series({ runs: ids, metrics: [name] });
      const c = new MetricChart(grid, { metric: name, ...opts });
      c.setSeries(res.series.map((s) => ({ id: s.run_id, label: byId.get(s.run_id).name, color: runColor(s.run_id), step: s.step, time: s.time, value: s.value, start: s.start, count: s.count, downsampled: s.downsampled })));
      charts.push(c);
    }
  }

  // parallel coordinates over the report's runs
  const params = [...new Set(rows.flatMap((r) => Object.keys(r.params || {})))].sort().filter((k) => new Set(rows.map((r) => JSON.stringify(r.params[k]))).size > 1);
  const target = data.target || (rows.some((r) => r.metrics && 'acc' in r.metrics) ? 'acc' : Object.keys(rows[0].metrics || {})[0]);
  if (rows.length > 2 && params.length && target) {
    const box = h('div');
    page.append(h('section', { class: 'card' }, h('h2', {}, 'Parallel coordinates'), box));
    const pc = new ParCoords(box, { height: 300 });
    const pts = await source.points({ ids, cols: [...params.map((p) => 'params.' + p), 'metrics.' + target] });
    pc.setData({ ids: pts.run_id, axes: [...params.map((p) => ({ name: 'params.' + p, values: pts.cols['params.' + p] })), { name: 'metrics.' + target, values: pts.cols['metrics.' + target] }], highlight: new Map(rows.map((r) => [r.run_id, runColor(r.run_id)])) });
  }

  // the target metric along the first run's branch (each commit's best run)
  const hist = data.history;
  if (hist && hist.points.filter((x) => x.value !== null).length >= 2) {
    const box = h('div', { class: 'history-box' });
    page.append(h('section', { class: 'card' },
      h('h2', {}, `History: ${hist.metric} on ${hist.branch}`),
      h('div', { class: 'muted', style: { fontSize: '12px', margin: '4px 0 8px' } },
        `${hist.points.length} commits, first parent; per commit the ${hist.pick} run (${hist.direction === 'min' ? 'lowest' : 'highest'}).`),
      box));
    renderHistory(box, hist, { height: 260 });
  }

  // code diff
  if (data.diff) {
    const box = h('div');
    const a = rows.find((r) => r.run_id === data.diff.a);
    const b = rows.find((r) => r.run_id === data.diff.b);
    page.append(h('section', { class: 'card' }, h('h2', {}, `Code: ${a ? a.name : data.diff.a} → ${b ? b.name : data.diff.b}`), box));
    if (data.diff.same) box.append(h('div', { class: 'muted' }, 'Same code.')); else renderDiff(box, data.diff.patch);
  }

  // per-run details with inline images and text artifacts
  for (const r of rows) {
    const d = (data.details || {})[r.run_id];
    if (!d) continue;
    const prev = h('div', { class: 'previews' });
    for (const art of d.artifacts) if (art.url && ['image', 'markdown', 'csv', 'text'].includes(art.kind) && art.path !== 'logs/xp-run.log') prev.append(artifactPreview(source, r.run_id, art));
    page.append(h('section', { class: 'card' },
      h('div', { class: 'run-title' }, h('span', { class: 'dot', style: { background: runColor(r.run_id) } }), h('h2', {}, r.name),
        h('span', { class: 'pill s-' + r.status }, r.status), h('span', { class: 'muted mono' }, `${r.run_id} · ${fmtTime(r.created)}`)),
      h('div', { class: 'cols2' }, h('div', {}, h('h3', {}, 'Params'), kvTable(r.params, 'params')), h('div', {}, h('h3', {}, 'Metrics'), kvTable(r.metrics, 'metrics'))),
      prev.childNodes.length ? [h('h3', {}, 'Artifacts'), prev] : null));
  }
  page.append(h('footer', { class: 'muted', style: { margin: '20px 0', fontSize: '12px' } }, data.footer || 'Made by xp report.'));
  window.__xpReportReady = true;
}
