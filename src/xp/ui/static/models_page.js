// Models: the model registry (GTO-format git tags), as `xp model show` and `xp model status`
// see it. #/models lists the models (latest version, the version in each stage, its run and
// key metrics); #/models/<name> shows one model's versions, newest first, what each stage
// runs, and every stage change. Tag messages, taggers and paths come from whoever pushed the
// tags: they are set as text, like every other value.

import { h, clear, append } from './dom.js';
import { fmtValue, fmtTime } from './format.js';
import { href } from './router.js';

const REGISTER = 'xp model register NAME RUN';

function runLink(runId, commit, name) {
  if (runId) return h('a', { class: 'mono', href: href('run', [runId]), title: runId }, name || runId);
  return h('span', { class: 'mono muted', title: 'no xp-run in the tag' }, (commit || '').slice(0, 12) || '-');
}

function metricsText(metrics) {
  const keys = Object.keys(metrics || {});
  if (!keys.length) return h('span', { class: 'muted' }, '-');
  return h('span', { class: 'mono' }, keys.map((k) => `${k}=${fmtValue(metrics[k], 'metrics')}`).join('  '));
}

function stagePill(stage) {
  return h('span', { class: 'pill stage' }, stage);
}

function table(headers, rows, props = {}) {
  return h('table', { class: ['mt', props.class] }, h('thead', {}, h('tr', {}, headers.map((t) => h('th', {}, t)))), h('tbody', {}, rows));
}

function emptyRegistry() {
  return h('div', { class: 'card empty-state', id: 'models-empty' },
    h('p', {}, 'No models registered yet.'),
    h('p', {}, 'Register a run\'s model with ', h('code', { class: 'mono' }, REGISTER),
      ', then put a version in a stage with ', h('code', { class: 'mono' }, 'xp model assign NAME VERSION --stage production'), '.'));
}

function renderList(page, doc) {
  if (!doc.models.length) { page.append(emptyRegistry()); return; }
  const stages = doc.stages;
  const rows = doc.models.map((m) => {
    const url = href('models', [m.name]);
    const tr = h('tr', { class: ['model-row', m.deprecated && 'gone'], dataset: { name: m.name } },
      h('td', {}, h('a', { class: 'model-name', href: url }, m.name), m.deprecated ? h('span', { class: 'pill' }, 'deprecated') : null),
      h('td', { class: 'mono' }, m.latest || '-'),
      stages.map((s) => h('td', { class: 'mono c-stage' }, m.stages[s] || h('span', { class: 'muted' }, '-'))),
      h('td', {}, m.latest ? runLink(m.run_id, m.commit, m.run_name) : '-'),
      h('td', { class: 'wrap' }, metricsText(m.metrics)),
      h('td', { class: 'muted' }, `${m.active} of ${m.versions}`),
      h('td', { class: 'muted' }, fmtTime(m.registered)));
    // the whole row opens the model; links inside it (the run) keep their own target
    tr.addEventListener('click', (e) => { if (!e.target.closest('a')) location.hash = url; });
    return tr;
  });
  page.append(h('div', { class: 'card' },
    h('div', { class: 'section-bar' }, h('h2', {}, 'Models'), h('span', { class: 'muted', id: 'models-count' }, `${doc.models.length} model${doc.models.length === 1 ? '' : 's'}`)),
    table(['name', 'latest', ...stages.map((s) => '#' + s), 'run', 'metrics', 'versions', 'registered'], rows, { class: 'models-list' })));
}

function renderModel(page, m) {
  page.append(h('div', { class: 'run-title' },
    h('a', { class: 'btn', href: href('models') }, '← Models'), h('h2', { id: 'model-name' }, m.name),
    m.deprecated ? h('span', { class: 'pill' }, 'deprecated') : null,
    m.latest ? h('span', { class: 'muted' }, 'latest ', h('span', { class: 'mono' }, m.latest)) : h('span', { class: 'muted' }, 'no registered version left')));

  if (m.stage_status.length) {
    page.append(h('div', { class: 'card' }, h('h3', {}, 'Stages'),
      table(['stage', 'version', 'since', 'by', 'previous', 'rollback to'], m.stage_status.map((s) => h('tr', {},
        h('td', {}, stagePill(s.stage)), h('td', { class: 'mono' }, s.version || '(empty)'), h('td', { class: 'muted' }, fmtTime(s.since)),
        h('td', { class: 'wrap' }, s.by || '-'), h('td', { class: 'mono' }, s.previous || '-'), h('td', { class: 'mono' }, s.rollback_to || '-'))), { class: 'model-stages' })));
  }

  const versions = m.versions.map((v) => h('tr', { class: ['version-row', !v.active && 'gone'], dataset: { version: v.version } },
    h('td', { class: 'mono' }, v.version, v.active ? null : h('span', { class: 'pill deregistered' }, 'deregistered')),
    h('td', {}, v.stages.length ? v.stages.map(stagePill) : h('span', { class: 'muted' }, '-')),
    h('td', { class: 'muted' }, fmtTime(v.registered)),
    h('td', { class: 'wrap' }, v.by || '-'),
    h('td', {}, runLink(v.run_id, v.commit, v.run_name)),
    h('td', { class: 'wrap' }, metricsText(v.metrics)),
    h('td', { class: 'mono wrap' }, v.artifacts.join(', ') || '-'),
    h('td', { class: 'wrap version-note' }, v.note || ''),
    h('td', { class: 'mono muted' }, v.tag)));
  page.append(h('div', { class: 'card' }, h('h3', {}, `Versions (${m.versions.length})`),
    table(['version', 'stages', 'registered', 'by', 'run', 'metrics', 'artifacts', 'note', 'tag'], versions, { class: 'model-versions' })));

  const how = (c) => (c.rollback_from ? `rollback from ${c.rollback_from}` : c.action);
  page.append(h('div', { class: 'card' }, h('h3', {}, 'Stage history'),
    m.history.length ? table(['when', 'stage', 'version', 'change', 'by', 'tag'], m.history.map((c) => h('tr', { class: ['history-row', c.rollback_from && 'rollback'] },
      h('td', { class: 'muted' }, fmtTime(c.time)), h('td', {}, stagePill(c.stage)), h('td', { class: 'mono' }, c.version || '(empty)'),
      h('td', {}, how(c)), h('td', { class: 'wrap' }, c.by || '-'), h('td', { class: 'mono muted' }, c.tag))), { class: 'model-history' })
      : h('div', { class: 'muted' }, 'No stage assigned yet: ', h('code', { class: 'mono' }, `xp model assign ${m.name} VERSION --stage STAGE`))));
}

export function mountModels(root, ctx, route) {
  const name = route.args[0];
  const page = h('div', { class: 'page scroll' });
  clear(root).append(page);
  let alive = true;
  const controller = new AbortController();
  let loads = 0;
  // drawn again when the registry changes (a `models` event: a tag made, moved or fetched),
  // keeping the scroll position; an older answer that arrives late is dropped
  const load = async () => {
    const my = ++loads;
    const top = page.scrollTop;
    if (name) {
      const m = await ctx.source.model(name, controller.signal);
      if (!alive || my !== loads) return;
      document.title = `xp · ${m.name}`;
      clear(page);
      renderModel(page, m);
    } else {
      const doc = await ctx.source.models(controller.signal);
      if (!alive || my !== loads) return;
      clear(page);
      renderList(page, doc);
    }
    page.scrollTop = top;
  };
  const failed = (e) => {
    if (!alive) return;
    append(clear(page), [h('div', { class: 'error' }, String(e.message || e)),
      name ? h('a', { class: 'btn', href: href('models') }, '← Models') : null]);
  };
  load().catch(failed);
  return {
    unmount() { alive = false; controller.abort(); },
    onEvent(type) { if (type === 'models') load().catch(failed); },
  };
}
