// The runs table: server-paged rows, virtual scrolling (only the visible rows exist in the
// DOM, recycled), sticky header, sort by any column, group headers, selection checkboxes.

import { h, clear, throttleFrame } from './dom.js';
import { fmtCell, cell, splitColumn, quoteColumn } from './format.js';

export { quoteColumn };
import { runColor } from './colors.js';
import { state } from './state.js';
import { href } from './router.js';

const ROW = 30;        // px, fixed row height (virtual scrolling needs it)
const PAGE = 100;      // rows per server request
const OVERSCAN = 8;

export const FIXED = ['select', 'name', 'status', 'created', 'duration', 'experiment', 'branch', 'baseline', 'user', 'run_id', 'commit', 'end_time', 'remote'];
const DEFAULT_FIXED = ['select', 'name', 'status', 'created', 'duration', 'experiment', 'baseline'];
const WIDTH = { select: 36, name: 210, status: 88, created: 142, duration: 86, experiment: 110, branch: 130, baseline: 86, user: 80, run_id: 132, commit: 78, end_time: 128, remote: 80 };
const LABEL = { select: '', run_id: 'id', end_time: 'ended' };

export function columnLabel(col) {
  const [kind, key] = splitColumn(col);
  return kind === 'attr' ? (LABEL[col] ?? col) : key;
}


export class RunsTable {
  constructor(root, source, opts = {}) {
    this.root = root;
    this.source = source;
    this.opts = opts;
    this.query = { q: '', sort: [], group: '' };
    this.total = 0;
    this.pages = new Map();     // page index -> rows | Promise
    this.gen = 0;               // bumps on every new query; late answers are dropped
    this.groups = null;         // [{label, count, offset}] from the server
    this.collapsed = new Set();
    this.columnsInfo = { params: [], metrics: [], tags: [] };
    this.varying = null;
    this.onlyDiffering = false;
    this.userColumns = null;    // explicit choice, or null = automatic
    this.widths = {};
    try {
      const saved = JSON.parse(localStorage.getItem('xp.table') || '{}');
      this.userColumns = saved.columns || null;
      this.widths = saved.widths || {};
      this.onlyDiffering = !!saved.onlyDiffering;
    } catch (e) { /* ignore */ }

    this.scroller = h('div', { class: 'rt-scroll', tabindex: '0', role: 'grid', 'aria-label': 'runs' });
    this.cursor = -1;           // display index of the keyboard cursor (-1: none)
    this.header = h('div', { class: 'rt-header' });
    this.body = h('div', { class: 'rt-body' });
    this.empty = h('div', { class: 'rt-empty' });
    this.scroller.append(this.header, this.body, this.empty);
    clear(root).append(this.scroller);
    this.pool = [];
    this.schedule = throttleFrame(() => this.render());
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.ro = new ResizeObserver(() => this.schedule());
    this.ro.observe(this.scroller);
    this.body.addEventListener('click', (e) => this.onBodyClick(e));
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    this.body.addEventListener('dblclick', (e) => {
      const id = this.rowIdAt(e.target);
      if (id && !e.target.closest('.rt-check')) opts.onOpen && opts.onOpen(id);
    });
    this.unsub = state.subscribe(() => this.renderRows(true));
  }

  destroy() { this.ro.disconnect(); this.unsub(); this.gen++; }

  save() {
    try {
      localStorage.setItem('xp.table', JSON.stringify({ columns: this.userColumns, widths: this.widths, onlyDiffering: this.onlyDiffering }));
    } catch (e) { /* ignore */ }
  }

  // -- columns ---------------------------------------------------------------------------
  allColumns() {
    const c = this.columnsInfo;
    return [...FIXED, ...c.params.map((k) => 'params.' + k), ...c.metrics.map((k) => 'metrics.' + k), ...c.tags.map((k) => 'tags.' + k)];
  }

  visibleColumns() {
    let cols = this.userColumns
      ? this.userColumns.filter((c) => c === 'select' || FIXED.includes(c) || this.allColumns().includes(c))
      : [...DEFAULT_FIXED, ...this.columnsInfo.metrics.map((k) => 'metrics.' + k), ...this.columnsInfo.params.map((k) => 'params.' + k)];
    if (!cols.includes('select')) cols = ['select', ...cols];
    if (this.onlyDiffering && this.varying) {
      const v = new Set(this.varying);
      cols = cols.filter((c) => splitColumn(c)[0] === 'attr' || v.has(c));
    }
    return cols;
  }

  setColumns(cols) { this.userColumns = cols; this.save(); this.layout(); }
  setOnlyDiffering(on) {
    this.onlyDiffering = on;
    this.save();
    // which columns differ among all matching runs is a pass over them: asked only when needed
    if (on && !this.varying) this.refresh().then(() => this.layout());
    else this.layout();
  }
  width(col) { return this.widths[col] || WIDTH[col] || 104; }

  layout() {
    this.cols = this.visibleColumns();
    this.totalWidth = this.cols.reduce((s, c) => s + this.width(c), 0);
    const sortOf = new Map(this.query.sort.map((s, i) => [s.col, { ...s, i }]));
    clear(this.header);
    this.header.style.width = this.totalWidth + 'px';
    for (const col of this.cols) {
      const s = sortOf.get(col);
      const [kind] = splitColumn(col);
      const th = h('div', {
        class: ['rt-th', 'k-' + kind, s && 'sorted', col === 'select' && 'rt-sel'],
        title: col === 'select' ? 'select runs' : `${col} (click: sort, shift+click: add sort key)`,
        style: { width: this.width(col) + 'px' },
        dataset: { col },
      },
      col === 'select' ? null : h('span', { class: 'rt-th-kind' }, kind === 'attr' ? '' : kind[0]),
      col === 'select' ? null : h('span', { class: 'rt-th-label' }, columnLabel(col)),
      s ? h('span', { class: 'rt-sort' }, (s.desc ? '▼' : '▲') + (this.query.sort.length > 1 ? s.i + 1 : '')) : null,
      col === 'select' ? null : h('span', { class: 'rt-resize', dataset: { col } }));
      if (col !== 'select') th.addEventListener('click', (e) => { if (!e.target.classList.contains('rt-resize')) this.toggleSort(col, e.shiftKey); });
      this.header.append(th);
    }
    this.header.querySelectorAll('.rt-resize').forEach((el) => this.bindResize(el));
    this.body.style.width = this.totalWidth + 'px';
    for (const r of this.pool) r.el.remove();
    this.pool = [];
    this.render();
  }

  bindResize(el) {
    el.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      e.stopPropagation();
      const col = el.dataset.col;
      const x0 = e.clientX;
      const w0 = this.width(col);
      el.setPointerCapture(e.pointerId);
      const move = (ev) => { this.widths[col] = Math.max(40, w0 + ev.clientX - x0); this.header.querySelector(`[data-col="${CSS.escape(col)}"]`).style.width = this.widths[col] + 'px'; };
      const up = () => { el.removeEventListener('pointermove', move); el.removeEventListener('pointerup', up); this.save(); this.layout(); };
      el.addEventListener('pointermove', move);
      el.addEventListener('pointerup', up);
    });
  }

  toggleSort(col, add) {
    let sort = [...this.query.sort];
    const i = sort.findIndex((s) => s.col === col);
    const numeric = ['metrics', 'params'].includes(splitColumn(col)[0]) || ['created', 'duration', 'end_time'].includes(col);
    if (i < 0) {
      const s = { col, desc: numeric };
      sort = add ? [...sort, s] : [s];
    } else if (sort[i].desc === numeric) {
      sort[i] = { col, desc: !numeric };
      if (!add) sort = [sort[i]];
    } else {
      sort.splice(i, 1);
      if (!add) sort = [];
    }
    this.opts.onSort && this.opts.onSort(sort);
  }

  // -- data ------------------------------------------------------------------------------
  apiParams(first = false) {
    const sort = this.query.sort.map((s) => quoteColumn(s.col) + (s.desc ? ' desc' : ''));
    return { q: this.query.q, sort, group: this.query.group, varying: first && this.onlyDiffering ? 1 : undefined };
  }

  /** New filter/sort/group: start over. Resolves with the first page, rejects with ApiError. */
  async setQuery(query) {
    const regroup = (query.group || '') !== this.query.group;
    this.query = { q: query.q || '', sort: query.sort || [], group: query.group || '' };
    const gen = ++this.gen;
    const t0 = performance.now();
    const res = await this.source.runs({ ...this.apiParams(true), offset: 0, limit: PAGE });
    if (gen !== this.gen) return null;
    this.pages = new Map([[0, res.rows]]);
    state.remember(res.rows);
    this.total = res.total;
    if (res.columns) this.columnsInfo = res.columns;
    this.varying = res.varying || null;
    this.groups = res.groups || null;
    // a new grouping starts with every group collapsed when there are several
    if (regroup) this.collapsed = new Set(this.groups && this.groups.length > 1 ? this.groups.map((g) => g.label) : []);
    this.scroller.scrollTop = 0;
    this.buildIndex();
    this.layout();
    this.opts.onLoaded && this.opts.onLoaded(res, performance.now() - t0);
    return res;
  }

  /** Live update: drop cached pages and re-fetch what is visible, keeping the scroll position. */
  async refresh() {
    const gen = ++this.gen;
    const res = await this.source.runs({ ...this.apiParams(true), offset: 0, limit: PAGE });
    if (gen !== this.gen) return;
    this.pages = new Map([[0, res.rows]]);
    state.remember(res.rows);
    this.total = res.total;
    if (res.columns) this.columnsInfo = res.columns;
    this.varying = res.varying || this.varying;
    this.groups = res.groups || null;
    this.buildIndex();
    this.opts.onLoaded && this.opts.onLoaded(res, 0);
    this.renderRows(true);
  }

  /** Patch one row in place (a `run` event for a run already on screen). */
  updateRow(row) {
    for (const rows of this.pages.values()) {
      if (!Array.isArray(rows)) continue;
      const i = rows.findIndex((r) => r.run_id === row.run_id);
      if (i >= 0) { rows[i] = row; state.remember([row]); this.renderRows(true); return true; }
    }
    return false;
  }

  buildIndex() {
    // display index -> group header or row offset
    this.gstarts = [];
    let d = 0;
    if (this.groups) {
      for (const g of this.groups) {
        this.gstarts.push(d);
        d += 1 + (this.collapsed.has(g.label) ? 0 : g.count);
      }
    } else d = this.total;
    this.displayCount = d;
    this.body.style.height = d * ROW + 'px';
    this.empty.textContent = this.total ? '' : 'No run matches.';
  }

  item(i) {
    if (!this.groups) return { offset: i };
    let lo = 0;
    let hi = this.gstarts.length - 1;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (this.gstarts[m] <= i) lo = m; else hi = m - 1; }
    const g = this.groups[lo];
    const k = i - this.gstarts[lo];
    return k === 0 ? { group: g } : { offset: g.offset + k - 1, g };
  }

  rowAt(offset) {
    const p = this.pages.get(Math.floor(offset / PAGE));
    return Array.isArray(p) ? p[offset % PAGE] : undefined;
  }

  ensure(offsets) {
    const need = new Set(offsets.map((o) => Math.floor(o / PAGE)));
    for (const p of need) {
      if (this.pages.has(p)) continue;
      const gen = this.gen;
      const prom = this.source.runs({ ...this.apiParams(), offset: p * PAGE, limit: PAGE }).then((res) => {
        if (gen !== this.gen) return;
        this.pages.set(p, res.rows);
        state.remember(res.rows);
        this.renderRows(true);
      }, () => { if (gen === this.gen) this.pages.delete(p); });
      this.pages.set(p, prom);
    }
    // keep memory bounded when scrolling far through 100k rows
    if (this.pages.size > 60) {
      for (const k of this.pages.keys()) { if (!need.has(k) && k !== 0) this.pages.delete(k); if (this.pages.size <= 40) break; }
    }
  }

  // -- rendering -------------------------------------------------------------------------
  render() { this.renderRows(false); }

  renderRows(force) {
    if (!this.cols) return;
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(this.displayCount - 1, Math.ceil((top + height) / ROW) + OVERSCAN);
    const n = Math.max(0, last - first + 1);
    while (this.pool.length < n) this.pool.push(this.makeRow());
    const offsets = [];
    for (let i = first; i <= last; i++) { const it = this.item(i); if (it.offset !== undefined) offsets.push(it.offset); }
    this.ensure(offsets);
    for (let j = 0; j < this.pool.length; j++) {
      const r = this.pool[j];
      const i = first + j;
      if (j >= n) { r.el.hidden = true; r.key = null; continue; }
      r.el.hidden = false;
      const it = this.item(i);
      const row = it.offset !== undefined ? this.rowAt(it.offset) : null;
      const key = it.group ? 'g' + it.group.label : row ? row.run_id + (row.status === 'running' ? row.duration : '') : 'l' + it.offset;
      r.el.style.transform = `translateY(${i * ROW}px)`;
      if (!force && r.key === key && r.i === i) continue;
      r.key = key;
      r.i = i;
      this.fill(r, it, row);
    }
  }

  makeRow() {
    const el = h('div', { class: 'rt-row', role: 'row' });
    const cells = this.cols.map((col) => {
      const c = h('div', { class: ['rt-td', 'c-' + (FIXED.includes(col) ? col : splitColumn(col)[0])], style: { width: this.width(col) + 'px' } });
      if (col === 'select') c.append(h('input', { type: 'checkbox', class: 'rt-check', 'aria-label': 'select run' }));
      if (col === 'name') c.append(h('span', { class: 'dot' }), h('a', { class: 'rt-name' }));
      if (col === 'status') c.append(h('span', { class: 'pill' }));
      el.append(c);
      return c;
    });
    const group = h('div', { class: 'rt-group' }, h('span', { class: 'rt-caret' }), h('span', { class: 'rt-glabel' }), h('span', { class: 'rt-gcount' }));
    el.append(group);
    this.body.append(el);
    return { el, cells, group, key: null, i: -1 };
  }

  fill(r, it, row) {
    const el = r.el;
    el.dataset.i = String(r.i);
    if (it.group) {
      el.className = 'rt-row is-group' + (r.i === this.cursor ? ' is-cursor' : '');
      el.dataset.group = it.group.label;
      delete el.dataset.id;
      r.group.children[0].textContent = this.collapsed.has(it.group.label) ? '▸' : '▾';
      r.group.children[1].textContent = it.group.label;
      r.group.children[2].textContent = `${it.group.count.toLocaleString('en-US')} runs`;
      return;
    }
    delete el.dataset.group;
    if (!row) {
      el.className = 'rt-row is-loading';
      delete el.dataset.id;
      r.cells.forEach((c, k) => { if (this.cols[k] !== 'select' && this.cols[k] !== 'name' && this.cols[k] !== 'status') c.textContent = ''; });
      r.cells.forEach((c, k) => { if (this.cols[k] === 'name') { c.children[1].textContent = ''; c.children[1].removeAttribute('href'); } });
      return;
    }
    const sel = state.isSelected(row.run_id);
    el.className = 'rt-row' + (sel ? ' is-selected' : '') + (it.g ? ' in-group' : '') + (r.i === this.cursor ? ' is-cursor' : '');
    el.dataset.id = row.run_id;
    el.setAttribute('aria-selected', String(sel));
    for (let k = 0; k < this.cols.length; k++) {
      const col = this.cols[k];
      const c = r.cells[k];
      if (col === 'select') { c.firstChild.checked = sel; continue; }
      if (col === 'name') {
        c.children[0].style.background = runColor(row.run_id);
        const a = c.children[1];
        a.textContent = row.name;
        a.setAttribute('href', href('run', [row.run_id]));
        c.title = row.name;
        continue;
      }
      if (col === 'status') {
        const p = c.firstChild;
        p.textContent = row.status;
        p.className = 'pill s-' + row.status;
        continue;
      }
      const text = fmtCell(row, col);
      c.textContent = text;
      c.title = text.length > 12 ? text : '';
      const v = cell(row, col);
      c.classList.toggle('missing', v === undefined);
    }
  }

  // -- keyboard: arrows / j k move, Space selects, Enter opens, Home End PageUp PageDown --------
  onKey(e) {
    if (e.target !== this.scroller || e.altKey || e.ctrlKey || e.metaKey) return;
    const page = Math.max(1, Math.floor((this.scroller.clientHeight || 600) / ROW) - 1);
    const moves = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1, PageDown: page, PageUp: -page, Home: -Infinity, End: Infinity };
    if (e.key in moves) {
      e.preventDefault();
      const next = this.cursor < 0 && moves[e.key] > 0 ? 0 : this.cursor + moves[e.key];
      this.setCursor(Math.max(0, Math.min(this.displayCount - 1, next)));
      return;
    }
    if (this.cursor < 0) return;
    const it = this.item(this.cursor);
    const row = it.offset !== undefined ? this.rowAt(it.offset) : null;
    if (e.key === ' ' || e.key === 'x') {
      e.preventDefault();
      if (it.group) this.toggleGroup(it.group.label);
      else if (row) state.toggle(row.run_id);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (it.group) this.toggleGroup(it.group.label);
      else if (row && this.opts.onOpen) this.opts.onOpen(row.run_id);
    }
  }

  setCursor(i) {
    this.cursor = i;
    const top = i * ROW;
    const sc = this.scroller;
    const head = this.header.offsetHeight || 0;
    if (top < sc.scrollTop) sc.scrollTop = top;
    else if (top + ROW + head > sc.scrollTop + sc.clientHeight) sc.scrollTop = top + ROW + head - sc.clientHeight;
    this.renderRows(true);
  }

  toggleGroup(label) {
    if (this.collapsed.has(label)) this.collapsed.delete(label); else this.collapsed.add(label);
    this.buildIndex();
    this.renderRows(true);
  }

  rowIdAt(target) {
    const el = target.closest('.rt-row');
    return el && el.dataset.id;
  }

  onBodyClick(e) {
    const g = e.target.closest('.rt-row.is-group');
    if (g) {
      this.toggleGroup(g.dataset.group);
      return;
    }
    const id = this.rowIdAt(e.target);
    if (!id) return;
    const rowEl = e.target.closest('.rt-row');
    if (rowEl && rowEl.dataset.i) this.cursor = +rowEl.dataset.i;
    if (e.target.classList.contains('rt-check')) {
      state.toggle(id, e.target.checked);
      return;
    }
    if (e.target.closest('a')) return; // the name link navigates
    if (!e.target.closest('.rt-td')) return;
    state.toggle(id);
  }
}
