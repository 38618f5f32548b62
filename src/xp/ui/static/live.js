// Live updates: one EventSource on api/v1/events (Server-Sent Events), fanned out to the
// current page. EventSource reconnects by itself after an error (sending Last-Event-ID).
//
// A browser keeps at most 6 connections to one server (HTTP/1.1), and an open event stream
// holds one for as long as it lives. So the stream is open only while the page is visible:
// a hidden tab, or a page kept in the back/forward cache, closes it, and it reopens from the
// last event seen (`since`) when the page comes back.

export class LiveFeed {
  constructor(source) {
    this.source = source;
    this.handlers = new Set();
    this.status = 'off';
    this.onStatus = () => {};
    this.es = null;
    this.last = null; // id of the last event received
    if (!source.events) return;
    this.open();
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.close();
      else this.open();
    });
    window.addEventListener('pagehide', () => this.close());
    window.addEventListener('pageshow', (e) => { if (e.persisted) this.open(); });
  }

  open() {
    if (this.es) return;
    const es = this.source.events(this.last);
    if (!es) return;
    this.es = es;
    this.setStatus('connecting');
    es.addEventListener('open', () => this.setStatus('live'));
    es.addEventListener('error', () => this.setStatus(es.readyState === 2 ? 'off' : 'reconnecting'));
    for (const type of ['run', 'series', 'models', 'hello', 'reset']) {
      es.addEventListener(type, (e) => {
        if (e.lastEventId) this.last = e.lastEventId;
        let data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        for (const fn of this.handlers) fn(type, data);
      });
    }
  }

  close() {
    if (!this.es) return;
    this.es.close();
    this.es = null;
    this.setStatus('paused');
  }

  setStatus(s) { this.status = s; this.onStatus(s); }
  subscribe(fn) { this.handlers.add(fn); return () => this.handlers.delete(fn); }
}

// A page whose link names a run the server does not know yet (a run is on disk half a
// second after it starts; a fetched one once the index looks at the refs) reloads when the
// run appears, and a few times on its own, since an event can pass before the stream opens.
const retried = { key: '', n: 0 }; // counted across the reloads of one link

/** Reload the page for `key` (its link) after 0.5, 1, 2, 4 then 8 s; returns a cancel. */
export function reloadLater(ctx, key) {
  if (ctx.source.embedded) return () => {}; // a report: nothing more will come
  if (retried.key !== key) { retried.key = key; retried.n = 0; }
  if (retried.n >= 5) return () => {};
  const t = setTimeout(() => ctx.reload(), 500 * 2 ** retried.n);
  retried.n += 1;
  return () => clearTimeout(t);
}

/** Whether live event (type, data) says that one of the runs `missing` may have appeared. */
export function mayHaveAppeared(type, data, missing) {
  return type === 'run' && data.new && missing.length > 0 && (data.run_id === null || missing.includes(data.run_id));
}
