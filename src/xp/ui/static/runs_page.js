// Runs page: filter box, toolbar (group by, columns, only-differing), the virtual table and
// the selection bar (-> charts / compare).

import { h, clear, select } from './dom.js';
import { fmtCount } from './format.js';
import { runColor } from './colors.js';
import { state } from './state.js';
import { href, setParams, navigate } from './router.js';
import { FilterBox } from './filterbox.js';
import { RunsTable, FIXED, columnLabel } from './table.js';
import { ApiError } from './api.js';

function parseSort(s) {
  return (s || '').split(',').filter(Boolean).map((x) => (x.startsWith('-') ? { col: x.slice(1), desc: true } : { col: x, desc: false }));
}
const sortParam = (sort) => sort.map((s) => (s.desc ? '-' : '') + s.col).join(',');

export function mountRuns(root, ctx, route) {
  const p = route.params;
  const query = { q: p.get('q') || '', sort: parseSort(p.get('sort')), group: p.get('group') || '' };
  const top = h('div', { class: 'runs-top' });
  const status = h('span', { class: 'muted', id: 'runs-count' }, 'loading…');
  const groupSel = h('span');
  const onlyDiff = h('input', { type: 'checkbox', id: 'only-diff' });
  const colBtn = h('button', { class: 'btn', type: 'button', 'aria-expanded': 'false' }, 'Columns ▾');
  const colPanel = h('div', { class: 'popover col-panel', hidden: true });
  const toolbar = h('div', { class: 'toolbar' }, status, h('span', { class: 'grow' }),
    h('label', { class: 'ctl' }, 'Group by ', groupSel),
    h('label', { class: 'ctl' }, onlyDiff, ' only columns that differ'),
    h('span', { class: 'pop-wrap' }, colBtn, colPanel));
  const tableRoot = h('div', { class: 'table-wrap' });
  const selBar = h('div', { class: 'selbar', hidden: true });
  clear(root).append(h('div', { class: 'page runs-page' }, top, toolbar, tableRoot, selBar));

  const allCols = () => [...FIXED.filter((c) => c !== 'select'), ...table.allColumns().filter((c) => !FIXED.includes(c))];
  const fb = new FilterBox(top, { value: query.q, onChange: (q) => { query.q = q; load(); }, columns: allCols });

  const table = new RunsTable(tableRoot, ctx.source, {
    onOpen: (id) => navigate('run', [id]),
    onSort: (sort) => { query.sort = sort; load(); },
    onLoaded: (res, ms) => {
      status.textContent = `${fmtCount(res.total)} of ${fmtCount(res.all ?? res.total)} runs` + (ms ? ` · ${Math.round(ms)} ms` : '');
      renderGroupSel();
    },
  });
  // a link's ?diff=1 (or 0) wins over this browser's saved choice, and is not saved as it
  if (p.has('diff')) table.onlyDiffering = p.get('diff') === '1';
  const diffParam = () => (table.onlyDiffering ? '1' : '');
  onlyDiff.checked = table.onlyDiffering;
  onlyDiff.addEventListener('change', () => {
    table.setOnlyDiffering(onlyDiff.checked);
    setParams({ diff: diffParam() });
  });

  function renderGroupSel() {
    const opts = [['', 'none'], ['experiment', 'experiment'], ['branch', 'branch'], ['baseline', 'baseline commit'],
      ...table.columnsInfo.params.map((k) => ['params.' + k, 'params.' + k])];
    clear(groupSel).append(select(opts, query.group, (v) => { query.group = v; load(); }));
  }
  renderGroupSel();

  let loading = 0;
  async function load() {
    setParams({ q: query.q, sort: sortParam(query.sort), group: query.group, diff: diffParam() });
    try { sessionStorage.setItem('xp.q', query.q); } catch (e) { /* ignore */ }
    const my = ++loading;
    try {
      await table.setQuery(query);
      if (my === loading) { fb.showError(null); tableRoot.classList.remove('stale'); }
    } catch (e) {
      if (my !== loading) return;
      // the rows on screen are the last filter's that worked: say so, and dim them
      tableRoot.classList.add('stale');
      status.textContent = 'filter not applied: the rows below are from the previous filter';
      if (e instanceof ApiError && e.status === 400) fb.showError(e.body, query.q);
      else fb.showError({ error: String(e.message || e) }, query.q);
    }
  }

  // column chooser
  colBtn.addEventListener('click', () => {
    colPanel.hidden = !colPanel.hidden;
    colBtn.setAttribute('aria-expanded', String(!colPanel.hidden));
    if (!colPanel.hidden) renderColPanel('');
  });
  function renderColPanel(filter) {
    const current = new Set(table.visibleColumns());
    const search = h('input', { type: 'search', placeholder: 'find a column', value: filter, class: 'col-search' });
    search.addEventListener('input', () => { renderColPanel(search.value); colPanel.querySelector('.col-search').focus(); });
    const groups = [['attributes', FIXED.filter((c) => c !== 'select')], ...['params', 'metrics', 'tags'].map((k) => [k, table.columnsInfo[k].map((x) => k + '.' + x)])];
    const list = h('div', { class: 'col-list' });
    for (const [name, cols] of groups) {
      const shown = cols.filter((c) => c.toLowerCase().includes(filter.toLowerCase()));
      if (!shown.length) continue;
      list.append(h('div', { class: 'col-group' }, name));
      for (const c of shown) {
        const cb = h('input', { type: 'checkbox', checked: current.has(c) });
        cb.addEventListener('change', () => {
          const cols = table.visibleColumns().filter((x) => x !== c);
          if (cb.checked) cols.push(c);
          table.setColumns(cols);
        });
        list.append(h('label', { class: 'col-item' }, cb, ' ', name === 'attributes' ? columnLabel(c) : c.slice(name.length + 1)));
      }
    }
    clear(colPanel).append(search, list,
      h('div', { class: 'col-foot' }, h('button', { class: 'btn', type: 'button', on: { click: () => { table.setColumns(null); renderColPanel(''); } } }, 'Reset to automatic'),
        h('button', { class: 'btn', type: 'button', on: { click: () => { colPanel.hidden = true; } } }, 'Close')));
  }
  const outside = (e) => { if (!colPanel.hidden && !e.target.closest('.pop-wrap')) colPanel.hidden = true; };
  document.addEventListener('pointerdown', outside);

  // selection bar
  function renderSel() {
    const ids = state.selection;
    selBar.hidden = ids.length === 0;
    clear(selBar);
    if (!ids.length) return;
    selBar.append(h('span', { class: 'muted' }, `${ids.length} selected`),
      h('div', { class: 'chips' }, ids.slice(0, 12).map((id) => h('span', { class: 'chip run-chip' },
        h('span', { class: 'dot', style: { background: runColor(id) } }), h('span', { class: 'chip-label' }, state.label(id)),
        h('button', { class: 'x', type: 'button', title: 'unselect', 'aria-label': 'unselect', on: { click: () => state.toggle(id, false) } }, '×'))),
      ids.length > 12 ? h('span', { class: 'muted' }, `+${ids.length - 12}`) : null),
      h('span', { class: 'grow' }),
      h('a', { class: 'btn primary', href: href('charts', [], { runs: ids }) }, 'Charts'),
      h('a', { class: 'btn primary', href: href('compare', [], { runs: ids }) }, 'Compare'),
      h('button', { class: 'btn', type: 'button', on: { click: () => state.clear() } }, 'Clear'));
  }
  const unsub = state.subscribe(renderSel);
  renderSel();
  load();

  let refreshT = 0;
  return {
    table,
    unmount() { unsub(); table.destroy(); document.removeEventListener('pointerdown', outside); clearTimeout(refreshT); },
    onEvent(type, data) {
      if (type !== 'run') return;
      if (data.new) {
        // a new run: re-query at most every 2 s (total and order change)
        if (!refreshT) refreshT = setTimeout(() => { refreshT = 0; table.refresh(); }, 2000);
      } else if (data.row) table.updateRow(data.row);
    },
  };
}
