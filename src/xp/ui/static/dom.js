// Tiny DOM helpers. Data is only ever set as text (textContent / createTextNode) or as
// attribute values through setAttribute; never innerHTML, never on* attributes.

const SAFE_ATTR = /^(?:[a-z][a-z0-9-]*)$/;

/** h('div', {class: 'x', on: {click: fn}}, 'text', child, [more]) -> Element */
export function h(tag, props, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled') el[k] = v;
      else if (k === 'href' || k === 'src') el.setAttribute(k, safeUrl(v));
      else if (SAFE_ATTR.test(k) && !k.startsWith('on')) el.setAttribute(k, v === true ? '' : String(v));
      else throw new Error('h(): refusing attribute ' + k);
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Only relative URLs, #fragments, http(s), blob: and data:image/... pass; anything else -> '#'. */
export function safeUrl(url) {
  const s = String(url).trim();
  if (/^(?:https?:|blob:)/i.test(s)) return s;
  if (/^data:image\/(?:png|jpeg|gif|webp|svg\+xml);/i.test(s)) return s;
  if (/^data:(?:text\/plain|text\/csv|text\/markdown|application\/octet-stream)[;,]/i.test(s)) return s;
  if (/^[a-z][a-z0-9+.-]*:/i.test(s)) return '#';
  return s;
}

export function debounce(fn, ms) {
  let t = 0;
  const d = (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
  d.cancel = () => clearTimeout(t);
  return d;
}

export function throttleFrame(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; fn(); });
  };
}

/** A select element from [value, label] pairs (or plain strings). */
export function select(options, value, onChange, props = {}) {
  const el = h('select', props, options.map((o) => {
    const [v, l] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: v === value }, l);
  }));
  if (onChange) el.addEventListener('change', () => onChange(el.value));
  return el;
}

export function cssVar(name, el = document.documentElement) {
  return getComputedStyle(el).getPropertyValue(name).trim();
}
