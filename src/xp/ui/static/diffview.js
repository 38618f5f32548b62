// Unified diff (git diff text from the server) -> a table per file, with line numbers,
// +/- colours and syntax highlighting (hl.js). Everything is set as text.

import { h, clear, append } from './dom.js';
import { highlight, langOf } from './hl.js';

export function parsePatch(text) {
  const files = [];
  let f = null;
  let hunk = null;
  let o = 0;
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('diff --git ')) {
      const m = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      f = { path: m ? m[2] : line.slice(11), oldPath: m ? m[1] : null, meta: [], hunks: [], added: 0, deleted: 0, binary: false };
      files.push(f);
      hunk = null;
      continue;
    }
    if (!f) continue;
    if (!hunk && !line.startsWith('@@')) {
      if (line.startsWith('Binary files')) f.binary = true;
      if (!line.startsWith('--- ') && !line.startsWith('+++ ') && line) f.meta.push(line);
      continue;
    }
    if (line.startsWith('@@')) {
      const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/.exec(line);
      o = m ? +m[1] : 0;
      n = m ? +m[2] : 0;
      hunk = { header: line, lines: [] };
      f.hunks.push(hunk);
      continue;
    }
    const c = line[0];
    if (c === '+') { hunk.lines.push({ t: 'add', o: '', n: n++, s: line.slice(1) }); f.added++; }
    else if (c === '-') { hunk.lines.push({ t: 'del', o: o++, n: '', s: line.slice(1) }); f.deleted++; }
    else if (c === ' ') hunk.lines.push({ t: 'ctx', o: o++, n: n++, s: line.slice(1) });
    else if (c === '\\') hunk.lines.push({ t: 'note', o: '', n: '', s: line });
  }
  return files;
}

export function renderDiff(root, patch, { maxLines = 5000 } = {}) {
  clear(root);
  const files = parsePatch(patch || '');
  if (!files.length) { root.append(h('div', { class: 'muted', style: { padding: '10px' } }, 'No code changes.')); return files; }
  const box = h('div', { class: 'diff' });
  let budget = maxLines;
  for (const f of files) {
    const lang = langOf(f.path);
    const body = h('div', { class: 'diff-body' });
    const head = h('div', { class: 'diff-fhead', role: 'button', tabindex: '0', title: 'collapse / expand' },
      h('span', { class: 'grow' }, f.oldPath && f.oldPath !== f.path ? `${f.oldPath} → ${f.path}` : f.path),
      f.binary ? h('span', { class: 'muted' }, 'binary') : h('span', { class: 'diff-stat' }, h('span', { class: 'a' }, `+${f.added}`), ' ', h('span', { class: 'd' }, `−${f.deleted}`)));
    head.addEventListener('click', () => { body.hidden = !body.hidden; });
    const table = h('table', { class: 'diff-table' });
    const tb = h('tbody');
    table.append(tb);
    if (f.binary) tb.append(h('tr', {}, h('td', { class: 'muted' }, 'Binary file differs')));
    for (const hk of f.hunks) {
      tb.append(h('tr', { class: 'hunk' }, h('td', { class: 'ln' }, '…'), h('td', { class: 'ln' }, '…'), h('td', { class: 'sign' }), h('td', {}, hk.header)));
      for (const l of hk.lines) {
        if (budget-- <= 0) break;
        const code = h('td', { class: 'code' });
        append(code, highlight(l.s, lang));
        tb.append(h('tr', { class: l.t }, h('td', { class: 'ln' }, String(l.o)), h('td', { class: 'ln' }, String(l.n)),
          h('td', { class: 'sign' }, l.t === 'add' ? '+' : l.t === 'del' ? '−' : ' '), code));
      }
    }
    body.append(table);
    box.append(h('div', { class: 'diff-file' }, head, body));
  }
  root.append(box);
  if (budget < 0) root.append(h('div', { class: 'muted' }, `Diff cut at ${maxLines} lines.`));
  return files;
}
