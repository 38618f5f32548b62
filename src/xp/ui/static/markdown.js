// A very small, safe Markdown renderer: builds DOM nodes with text only. Supports headings,
// paragraphs, lists, fenced code, block quotes, inline code, **bold**, *italic* and links
// (http/https/relative only). Raw HTML in the source is shown as text.

import { h } from './dom.js';
import { highlight, langOf } from './hl.js';

function inline(text) {
  const out = [];
  const rx = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|_[^_\s][^_]*_)|(\[([^\]]+)\]\(([^)\s]+)\))/g;
  let last = 0;
  for (let m; (m = rx.exec(text));) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1]) out.push(h('code', {}, m[1].slice(1, -1)));
    else if (m[2]) out.push(h('strong', {}, m[2].slice(2, -2)));
    else if (m[3]) out.push(h('em', {}, m[3].slice(1, -1)));
    else {
      const url = m[6];
      const ok = /^(https?:\/\/|\.{0,2}\/|#|[\w.-]+(\/|$))/i.test(url) && !/^[a-z][a-z0-9+.-]*:/i.test(url.replace(/^https?:/i, ''));
      out.push(ok ? h('a', { href: url, rel: 'noopener noreferrer', target: '_blank' }, m[5]) : m[0]);
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function renderMarkdown(src) {
  const root = h('div', { class: 'md' });
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let para = [];
  const flush = () => { if (para.length) { root.append(h('p', {}, inline(para.join(' ')))); para = []; } };
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = /^```\s*([\w+-]*)/.exec(line))) {
      flush();
      const lang = m[1] ? langOf('x.' + m[1]) : null;
      const code = h('code');
      i++;
      const body = [];
      while (i < lines.length && !/^```/.test(lines[i])) body.push(lines[i++]);
      i++;
      body.forEach((l, k) => { code.append(...highlight(l, lang)); if (k < body.length - 1) code.append('\n'); });
      root.append(h('pre', {}, code));
      continue;
    }
    if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) { flush(); root.append(h('h' + Math.min(3, m[1].length), {}, inline(m[2]))); i++; continue; }
    if (/^\s*([-*+]|\d+\.)\s+/.test(line)) {
      flush();
      const ordered = /^\s*\d+\./.test(line);
      const list = h(ordered ? 'ol' : 'ul');
      while (i < lines.length && /^\s*([-*+]|\d+\.)\s+/.test(lines[i])) list.append(h('li', {}, inline(lines[i++].replace(/^\s*([-*+]|\d+\.)\s+/, ''))));
      root.append(list);
      continue;
    }
    if (/^>\s?/.test(line)) { flush(); root.append(h('blockquote', {}, inline(line.replace(/^>\s?/, '')))); i++; continue; }
    if (!line.trim()) { flush(); i++; continue; }
    para.push(line);
    i++;
  }
  flush();
  return root;
}
