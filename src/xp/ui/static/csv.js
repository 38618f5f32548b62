// RFC 4180 CSV (or TSV) -> table element, first row as header, capped in rows.
import { h } from './dom.js';

export function parseCsv(text, sep = ',') {
  const rows = [];
  let row = [];
  let f = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"') { if (text[i + 1] === '"') { f += '"'; i++; } else q = false; } else f += c;
    } else if (c === '"' && f === '') q = true;
    else if (c === sep) { row.push(f); f = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(f); rows.push(row); row = []; f = '';
    } else f += c;
  }
  if (f !== '' || row.length) { row.push(f); rows.push(row); }
  return rows;
}

export function csvTable(text, { sep = ',', maxRows = 200 } = {}) {
  const rows = parseCsv(text, sep);
  if (!rows.length) return h('div', { class: 'muted' }, 'empty');
  const [head, ...body] = rows;
  return h('div', {},
    h('table', { class: 'csv-table' }, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
      h('tbody', {}, body.slice(0, maxRows).map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))),
    body.length > maxRows ? h('div', { class: 'muted' }, `${body.length - maxRows} more rows`) : null);
}
