// Hash routing: #/runs?q=..., #/run/<id>, #/charts?runs=a,b, #/compare?runs=a,b, #/history?...,
// #/models, #/models/<name>
// Hash URLs work the same from a server and from file:// (reports).

export function parseHash(hash = location.hash) {
  const s = hash.replace(/^#\/?/, '');
  const [path, query = ''] = s.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'runs', args: parts.slice(1), params: new URLSearchParams(query) };
}

export function href(page, args = [], params = {}) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length)) continue;
    u.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const q = u.toString();
  return '#/' + [page, ...args.map(encodeURIComponent)].join('/') + (q ? '?' + q : '');
}

export function navigate(page, args, params, replace = false) {
  const url = href(page, args, params);
  if (replace) history.replaceState(null, '', url);
  else location.hash = url;
}

/** Update the current route's query without adding a history entry or re-routing. */
export function setParams(params) {
  const r = parseHash();
  const merged = Object.fromEntries(r.params.entries());
  Object.assign(merged, params);
  history.replaceState(null, '', href(r.page, r.args, merged));
}
