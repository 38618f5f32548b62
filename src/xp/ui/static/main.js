// Entry point of index.html (kept separate so that app.js stays importable by tests/reports).
import { start } from './app.js';

window.addEventListener('securitypolicyviolation', (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(`${e.violatedDirective} ${e.blockedURI}`);
});
window.__xpApp = start();
