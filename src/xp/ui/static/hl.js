// A tiny syntax highlighter for diffs: one regex per language, tokens become <span class="t-*">
// text nodes (never HTML). Line by line, so a token cannot spill across lines.

import { h } from './dom.js';

const KW = {
  py: 'and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield self',
  js: 'async await break case catch class const continue default delete do else export extends false finally for function if import in instanceof let new null of return static super switch this throw true try typeof undefined var void while yield',
  sh: 'if then else elif fi for in do done case esac while until function return export local set unset echo exit',
  go: 'break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var nil true false',
  rs: 'as break const continue crate else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while',
  c: 'auto break case char const continue default do double else enum extern float for goto if int long register return short signed sizeof static struct switch typedef union unsigned void volatile while class namespace template public private protected virtual new delete nullptr true false',
};
const STR = String.raw`"""[^]*?"""|'''[^]*?'''|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|` + '`(?:[^`\\\\]|\\\\.)*`?';
const NUM = String.raw`\b(?:0x[\da-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?)\b`;

function build(lang) {
  const words = (KW[lang] || '').split(' ').filter(Boolean);
  const com = lang === 'js' || lang === 'go' || lang === 'rs' || lang === 'c' ? String.raw`//.*|/\*.*?(?:\*/|$)` : String.raw`#.*`;
  return new RegExp(`(${com})|(${STR})|(${NUM})|(\\b(?:${words.join('|') || '\\u0000'})\\b)|([A-Za-z_]\\w*)(?=\\()`, 'g');
}

const RX = {};
const EXT = { py: 'py', pyi: 'py', js: 'js', mjs: 'js', ts: 'js', tsx: 'js', jsx: 'js', json: 'json', sh: 'sh', bash: 'sh', yml: 'yaml', yaml: 'yaml', toml: 'yaml', cfg: 'yaml', ini: 'yaml', go: 'go', rs: 'rs', c: 'c', h: 'c', cc: 'c', cpp: 'c', hpp: 'c', java: 'c' };

export function langOf(path) {
  const m = /\.([A-Za-z0-9]+)$/.exec(path || '');
  return (m && EXT[m[1].toLowerCase()]) || (/(^|\/)(Makefile|Dockerfile)$/.test(path || '') ? 'sh' : null);
}

/** -> array of Text / <span> nodes for one line of code. */
export function highlight(line, lang) {
  if (!lang || line.length > 2000) return [document.createTextNode(line)];
  const out = [];
  let last = 0;
  const push = (text, cls) => { if (text) out.push(cls ? h('span', { class: cls }, text) : document.createTextNode(text)); };
  if (lang === 'yaml' || lang === 'json') {
    const key = lang === 'yaml' ? /^(\s*-?\s*)([^\s#:'"][^:#]*?|"[^"]*"|'[^']*')(\s*[:=])(?=\s|$)/ : /^(\s*)("(?:[^"\\]|\\.)*")(\s*:)/;
    const m = key.exec(line);
    if (m) { push(m[1]); push(m[2], 't-key'); push(m[3]); last = m[0].length; }
    const rx = /(#.*)|("(?:[^"\\]|\\.)*"|'[^']*')|(-?\b\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?\b)|(\b(?:true|false|null|yes|no|on|off|True|False|None)\b)/g;
    rx.lastIndex = last;
    for (let t; (t = rx.exec(line));) {
      if (lang === 'json' && t[1]) continue;
      push(line.slice(last, t.index));
      push(t[0], t[1] ? 't-com' : t[2] ? 't-str' : t[3] ? 't-num' : 't-kw');
      last = t.index + t[0].length;
    }
    push(line.slice(last));
    return out;
  }
  const rx = RX[lang] || (RX[lang] = build(lang));
  rx.lastIndex = 0;
  for (let t; (t = rx.exec(line));) {
    if (!t[0]) { rx.lastIndex++; continue; }
    push(line.slice(last, t.index));
    push(t[0], t[1] ? 't-com' : t[2] ? 't-str' : t[3] ? 't-num' : t[4] ? 't-kw' : 't-fn');
    last = t.index + t[0].length;
  }
  push(line.slice(last));
  return out;
}
