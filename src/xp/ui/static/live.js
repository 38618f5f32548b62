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
    for (const type of ['run', 'series', 'hello', 'reset']) {
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
