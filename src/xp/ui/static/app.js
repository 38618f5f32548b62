// xp ui: the application shell (nav, routing, live feed). Pages are modules with
// mount(root, ctx, route) -> {unmount(), onEvent?(type, data)}.

import { h, clear, append } from './dom.js';
import { createSource } from './api.js';
import { parseHash, href } from './router.js';
import { LiveFeed } from './live.js';
import { state } from './state.js';
import { mountRuns } from './runs_page.js';
import { mountCharts } from './charts_page.js';
import { mountCompare } from './compare_page.js';
import { mountRun } from './run_page.js';
import { mountHistory } from './history_page.js';
import { mountModels } from './models_page.js';

const PAGES = {
  runs: mountRuns,
  charts: mountCharts,
  compare: mountCompare,
  run: mountRun,
  history: mountHistory,
  models: mountModels,
};

export function start() {
  const source = createSource();
  const ctx = { source, live: null, meta: null };
  const app = document.getElementById('app');
  const liveDot = h('span', { class: 'live-dot', title: 'live updates' });
  const liveText = h('span', { class: 'live-text' }, '');
  const nav = h('nav', { class: 'tabs' });
  const main = h('main', { id: 'main' });
  const project = h('span', { class: 'project muted' });
  clear(app).append(h('header', { class: 'topbar' },
    h('a', { class: 'logo', href: '#/runs' }, 'xp'), project, nav, h('span', { class: 'grow' }),
    h('span', { class: 'live' }, liveDot, liveText)), main);

  ctx.live = new LiveFeed(source);
  ctx.live.onStatus = (s) => { liveDot.className = 'live-dot ' + s; liveText.textContent = s === 'off' || s === 'paused' ? '' : s; };
  ctx.live.onStatus(ctx.live.status);

  source.meta().then((m) => { ctx.meta = m; project.textContent = m.project || ''; }, () => {});

  let current = null;
  let currentName = '';
  ctx.live.subscribe((type, data) => {
    if (type === 'reset') { route(); return; } // the server lost our place in the stream: reload the page's data
    if (current && current.onEvent) current.onEvent(type, data);
  });

  function renderNav(page) {
    const sel = state.selection;
    const items = [
      ['runs', 'Runs', href('runs')],
      ['charts', 'Charts', href('charts', [], { runs: sel })],
      ['compare', 'Compare', href('compare', [], { runs: sel })],
      ['history', 'History', href('history')],
      ['models', 'Models', href('models')],
    ];
    append(clear(nav), items.map(([k, label, url]) => h('a', {
      class: ['tab', k === page && 'active'], href: url, 'aria-current': k === page ? 'page' : null,
    }, label)));
  }
  state.subscribe(() => renderNav(currentName));

  function route() {
    const r = parseHash();
    const mount = PAGES[r.page] || PAGES.runs;
    if (current) current.unmount();
    currentName = r.page in PAGES ? r.page : 'runs';
    renderNav(currentName);
    document.title = `xp · ${currentName}`;
    current = mount(main, ctx, r);
    ctx.current = current; // tests and devtools look here
  }
  ctx.reload = route; // a page whose data changed under it (a run the link names appeared)
  window.addEventListener('hashchange', route);
  route();
  return ctx;
}
