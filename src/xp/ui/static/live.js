// Live updates: one EventSource on api/v1/events (Server-Sent Events), fanned out to the
// current page. EventSource reconnects by itself (sending Last-Event-ID).

export class LiveFeed {
  constructor(source) {
    this.handlers = new Set();
    this.status = 'off';
    this.onStatus = () => {};
    this.es = source.events();
    if (!this.es) return;
    this.setStatus('connecting');
    this.es.addEventListener('open', () => this.setStatus('live'));
    this.es.addEventListener('error', () => this.setStatus(this.es.readyState === 2 ? 'off' : 'reconnecting'));
    for (const type of ['run', 'series', 'hello', 'reset']) {
      this.es.addEventListener(type, (e) => {
        let data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        for (const fn of this.handlers) fn(type, data);
      });
    }
  }

  setStatus(s) { this.status = s; this.onStatus(s); }
  subscribe(fn) { this.handlers.add(fn); return () => this.handlers.delete(fn); }
  close() { if (this.es) this.es.close(); }
}
