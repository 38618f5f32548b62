// Formatting of values as xp show prints them.

/** API value -> JS number: null (NaN in metrics) -> NaN, "inf"/"-inf" -> +-Infinity. */
export function num(v) {
  if (typeof v === 'number') return v;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  if (v === null) return NaN;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '' && !isNaN(+v)) return +v;
  return NaN;
}

export function fmtNumber(x, digits = 5) {
  if (typeof x !== 'number') return String(x);
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-4 || a >= 1e15)) return x.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  return String(+x.toPrecision(digits));
}

/** A cell value: kind is 'params' | 'metrics' | 'tags' | 'attr'. undefined = missing. */
/** Axis labels: 1200000 -> 1.2M, 25000 -> 25k. */
export function fmtAxis(x, digits = 4) {
  const a = Math.abs(x);
  if (a >= 1e9) return +(x / 1e9).toPrecision(3) + 'G';
  if (a >= 1e6) return +(x / 1e6).toPrecision(3) + 'M';
  if (a >= 1e4) return +(x / 1e3).toPrecision(3) + 'k';
  return fmtNumber(x, digits);
}

export function fmtValue(v, kind) {
  if (v === undefined) return '-';
  if (v === null) return kind === 'metrics' ? 'nan' : 'null';
  if (v === 'inf' || v === '-inf') return v;
  if (typeof v === 'number') return fmtNumber(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return '[' + v.map((x) => fmtValue(x, kind)).join(', ') + ']';
  return String(v);
}

/** Stable string for equality tests ("do these runs differ?"). */
export function valueKey(v) {
  return v === undefined ? '\u0000missing' : JSON.stringify(v);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

export function fmtTime(iso) {
  if (!iso) return '-';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtTimeMs(ms) {
  const d = new Date(ms);
  return `${fmtTime(d.toISOString())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '-';
  if (s < 60) return `${(+s).toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(Math.floor(s % 60))}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '-';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
  return (i ? x.toFixed(x < 10 ? 1 : 0) : String(x)) + ' ' + u[i];
}

export function fmtCount(n) {
  return Number(n).toLocaleString('en-US');
}

export function shortSha(s) {
  return s ? String(s).slice(0, 7) : '-';
}

/** Column name -> [kind, key]: 'params.lr' -> ['params', 'lr'], 'name' -> ['attr', 'name']. */
export function splitColumn(col) {
  const m = /^(params|metrics|tags)\.(.+)$/.exec(col);
  return m ? [m[1], m[2]] : ['attr', col];
}

/** The value of column `col` in an API row (undefined when missing). */
export function cell(row, col) {
  const [kind, key] = splitColumn(col);
  if (kind === 'attr') {
    const v = row[key];
    return v === null ? undefined : v;
  }
  const d = row[kind];
  return d && Object.prototype.hasOwnProperty.call(d, key) ? d[key] : undefined;
}

export function fmtCell(row, col) {
  const [kind] = splitColumn(col);
  const v = cell(row, col);
  if (col === 'created' || col === 'end_time') return fmtTime(v);
  if (col === 'duration') return fmtDuration(v);
  if (col === 'baseline' || col === 'commit') return shortSha(v);
  return fmtValue(v, kind);
}

/** Quote a column for the filter/sort language when its key has special characters. */
export function quoteColumn(col) {
  const [kind, key] = splitColumn(col);
  if (kind === 'attr' || /^[\w\-/:]+(\.[\w\-/:]+)*$/.test(key)) return col;
  return `${kind}.\`${key}\``;
}
