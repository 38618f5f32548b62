// The search box: the `xp show --where` language, debounced, with the server's errors shown
// inline (the bad token marked at its position) and clickable suggestions.

import { h, clear, debounce } from './dom.js';

const EXAMPLES = [
  "metrics.acc > 0.9 and params.model = 'cnn'",
  "status in ('failed', 'crashed') and created > '2 days ago'",
  "params.optimizer in ('adam', 'adamw') and not tags.stage = 'debug'",
  "name like 'sweep-%' and metrics.val_loss < 0.3",
  "metrics.acc is null",
];

/** Code-point position (what the server counts) -> UTF-16 index (what JS strings count). */
export function cpToIndex(text, pos) {
  return Array.from(text).slice(0, pos).join('').length;
}

export class FilterBox {
  constructor(root, { value = '', onChange, columns = () => [] }) {
    this.onChange = onChange;
    this.columns = columns;
    this.input = h('input', {
      type: 'search', class: 'fb-input', value, spellcheck: 'false', autocomplete: 'off',
      placeholder: "Filter runs: metrics.acc > 0.9 and params.model = 'cnn'", 'aria-label': 'filter runs',
    });
    this.err = h('div', { class: 'fb-error', role: 'alert', hidden: true });
    this.help = h('details', { class: 'fb-help' }, h('summary', {}, 'syntax'),
      h('div', { class: 'fb-examples' },
        h('p', {}, 'Columns: params.*, metrics.*, tags.*, name, status, experiment, created, duration, branch, baseline, user. Operators: = != < <= > >= in like ilike is null; and, or, not, ( ).'),
        EXAMPLES.map((ex) => h('button', { class: 'link mono', type: 'button', on: { click: () => { this.input.value = ex; this.fire(); } } }, ex))));
    this.complete = h('div', { class: 'fb-complete', hidden: true });
    root.append(h('div', { class: 'fb' }, h('div', { class: 'fb-row' }, this.input, this.help), this.complete, this.err));
    const later = debounce(() => this.fire(), 300);
    this.input.addEventListener('input', () => { later(); this.suggest(); });
    this.input.addEventListener('keydown', (e) => {
      if (this.keyComplete(e)) return;
      if (e.key === 'Enter') { later.cancel(); this.fire(); }
      if (e.key === 'Escape') { this.input.value = ''; later.cancel(); this.fire(); }
    });
    this.input.addEventListener('blur', () => setTimeout(() => { this.complete.hidden = true; }, 150));
    this.last = value;
  }

  get value() { return this.input.value.trim(); }

  fire() {
    this.complete.hidden = true;
    if (this.value === this.last) return;
    this.last = this.value;
    this.onChange(this.value);
  }

  showError(body, query) {
    clear(this.err);
    if (!body) { this.err.hidden = true; this.input.classList.remove('bad'); return; }
    this.err.hidden = false;
    this.input.classList.add('bad');
    this.err.append(h('div', { class: 'fb-msg' }, body.error || 'bad filter'));
    const pos = Number.isInteger(body.position) ? cpToIndex(query, body.position) : null;
    if (pos !== null) {
      const tok = body.token ? body.token : query.slice(pos, pos + 1);
      const len = query.startsWith(tok, pos) ? tok.length : Math.max(1, tok.length);
      this.err.append(h('div', { class: 'fb-where mono' },
        query.slice(0, pos), h('mark', {}, query.slice(pos, pos + len) || ' '), query.slice(pos + len)));
    }
    const suggestions = [...(body.suggestions || [])];
    // one word that is no column (`gbr`): most likely a search of run names
    const word = query.trim();
    if (body.token === word && /^[A-Za-z0-9_.-]+$/.test(word) && /no run has a column/.test(body.error || '')) {
      suggestions.push(`name like '%${word}%'`);
    }
    if (suggestions.length) {
      this.err.append(h('div', { class: 'fb-sugg' }, 'did you mean ',
        suggestions.map((s) => h('button', {
          class: 'chip mono', type: 'button',
          on: { click: () => this.replace(pos, body.token, s) },
        }, s)), '?'));
    }
  }

  replace(pos, token, s) {
    const q = this.input.value;
    let i = pos;
    if (i === null || !q.startsWith(token || '', i)) i = token ? q.indexOf(token) : -1;
    if (i < 0) return;
    this.input.value = q.slice(0, i) + s + q.slice(i + (token || '').length);
    this.input.focus();
    this.fire();
  }

  // -- completion of column names ----------------------------------------------------------
  currentWord() {
    const q = this.input.value;
    const end = this.input.selectionStart ?? q.length;
    const m = /[A-Za-z_][\w.\-/:]*$/.exec(q.slice(0, end));
    return m ? { start: m.index, end, word: m[0] } : null;
  }

  suggest() {
    const w = this.currentWord();
    clear(this.complete);
    this.items = [];
    this.active = 0;
    if (!w || w.word.length < 2) { this.complete.hidden = true; return; }
    const lw = w.word.toLowerCase();
    const cands = this.columns().filter((c) => c.toLowerCase().includes(lw) && c.toLowerCase() !== lw);
    cands.sort((a, b) => (a.toLowerCase().startsWith(lw) ? 0 : 1) - (b.toLowerCase().startsWith(lw) ? 0 : 1) || a.length - b.length);
    this.items = cands.slice(0, 8);
    if (!this.items.length) { this.complete.hidden = true; return; }
    this.items.forEach((c, i) => this.complete.append(h('div', {
      class: ['fb-item', 'mono', i === 0 && 'active'],
      on: { mousedown: (e) => { e.preventDefault(); this.accept(c); } },
    }, c)));
    this.complete.hidden = false;
  }

  keyComplete(e) {
    if (this.complete.hidden || !this.items.length) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : this.items.length - 1)) % this.items.length;
      [...this.complete.children].forEach((el, i) => el.classList.toggle('active', i === this.active));
      e.preventDefault();
      return true;
    }
    if (e.key === 'Tab') { e.preventDefault(); this.accept(this.items[this.active]); return true; }
    if (e.key === 'Escape') { this.complete.hidden = true; e.preventDefault(); return true; }
    return false;
  }

  accept(col) {
    const w = this.currentWord();
    if (!w) return;
    const q = this.input.value;
    this.input.value = q.slice(0, w.start) + col + ' ' + q.slice(w.end);
    const p = w.start + col.length + 1;
    this.input.setSelectionRange(p, p);
    this.complete.hidden = true;
    this.input.focus();
  }
}
