/**
 * The status page (GET /): plain HTML rendered here, one stylesheet and one small script, all served by the
 * bridge itself (no framework, nothing from elsewhere), so its Content Security Policy allows only this origin's
 * files and never 'unsafe-inline'. The page holds no figures: after sign-in, the script reads GET /status.json
 * with the bearer token, which it keeps in the tab's sessionStorage only, and writes what it gets as text.
 */

/** The page's policy: its own script, stylesheet, icon and JSON; nothing inline, nothing from elsewhere, no forms sent. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>scim-bridge status</title>
<link rel="icon" href="/status.svg" type="image/svg+xml">
<link rel="stylesheet" href="/status.css">
<script src="/status.js" defer></script>
</head>
<body>
<header>
  <h1>scim-bridge</h1>
  <p id="summary" class="muted">Sign in with the bridge's bearer token to see its status.</p>
  <button id="sign-out" type="button" hidden>Sign out</button>
</header>
<main>
  <form id="sign-in" autocomplete="off">
    <label for="token">Bearer token (the one your identity provider uses)</label>
    <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
    <button type="submit">Sign in</button>
    <p class="muted">The token stays in this tab (sessionStorage) and is sent only to this bridge.</p>
    <p id="refusal" class="refusal" role="alert" hidden></p>
  </form>
  <div id="dashboard" hidden>
    <section>
      <h2>Health</h2>
      <dl>
        <dt>Status</dt><dd id="health">-</dd>
        <dt>Store</dt><dd id="store">-</dd>
        <dt>Version</dt><dd id="version">-</dd>
        <dt>Running since</dt><dd id="started">-</dd>
        <dt>Updated</dt><dd id="updated">-</dd>
      </dl>
      <button id="refresh" type="button">Refresh</button>
    </section>
    <section>
      <h2>Directory</h2>
      <dl>
        <dt>Invited</dt><dd id="users-invited">-</dd>
        <dt>Active</dt><dd id="users-active">-</dd>
        <dt>Suspended</dt><dd id="users-suspended">-</dd>
        <dt>Revoked</dt><dd id="users-revoked">-</dd>
        <dt>Groups</dt><dd id="groups">-</dd>
      </dl>
    </section>
    <section>
      <h2>Delivery</h2>
      <dl>
        <dt>Webhook</dt><dd id="webhook">-</dd>
        <dt>Backlog</dt><dd id="pending">-</dd>
        <dt>Lag</dt><dd id="lag">-</dd>
        <dt>Dead letters</dt><dd id="dead-letters">-</dd>
        <dt>Since start</dt><dd id="deliveries">-</dd>
      </dl>
    </section>
    <section id="google" hidden>
      <h2>Google Workspace sync</h2>
      <dl>
        <dt>State</dt><dd id="google-state">-</dd>
        <dt>Last sync</dt><dd id="google-last">-</dd>
        <dt>Result</dt><dd id="google-result">-</dd>
        <dt>Changes</dt><dd id="google-changes">-</dd>
        <dt>Last success</dt><dd id="google-success">-</dd>
        <dt>Next sync</dt><dd id="google-next">-</dd>
      </dl>
    </section>
    <section class="wide">
      <h2>Identity providers</h2>
      <table>
        <thead><tr><th>IdP</th><th>Last request</th><th>Request</th><th>Result</th></tr></thead>
        <tbody id="idps"></tbody>
      </table>
    </section>
    <section class="wide">
      <h2>Recent errors</h2>
      <table>
        <thead><tr><th>Time</th><th>IdP</th><th>Request</th><th>Status</th><th>scimType</th></tr></thead>
        <tbody id="errors"></tbody>
      </table>
    </section>
  </div>
</main>
</body>
</html>
`;

export const STATUS_CSS = `:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 70rem; padding: 1.5rem; }
header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
.muted { color: var(--muted); }
.refusal { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
form { display: grid; gap: .5rem; max-width: 28rem; }
input { font: inherit; padding: .4rem; }
button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
#sign-out { margin-left: auto; }
#dashboard { display: grid; grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); gap: 1rem; }
#dashboard[hidden], [hidden] { display: none; }
section { border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; }
section.wide { grid-column: 1 / -1; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .2rem 1rem; margin: 0 0 .5rem; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
td.empty { color: var(--muted); }
`;

export const STATUS_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#1a7f37"/><path d="M4.5 8.5l2.2 2.2 4.8-5" stroke="#fff" stroke-width="1.8" fill="none"/></svg>
`;

/**
 * The page's script. Plain ES2017 for any current browser; it writes only text (textContent), never HTML, so
 * nothing the bridge reports can become markup.
 */
export const STATUS_JS = `'use strict';
(function () {
  var KEY = 'scim-bridge-token';
  var REFRESH_MS = 5000;
  var timer = null;
  var $ = function (id) { return document.getElementById(id); };

  function text(id, value) { $(id).textContent = value === undefined || value === null ? '-' : String(value); }
  function count(n, noun) { return n + ' ' + noun + (n === 1 ? '' : 's'); }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : '-'; }
  function duration(seconds) {
    if (seconds < 60) return seconds + ' s';
    if (seconds < 3600) return Math.round(seconds / 60) + ' min';
    return (seconds / 3600).toFixed(1) + ' h';
  }
  function rows(id, items, cells, empty) {
    var body = $(id);
    body.replaceChildren();
    if (items.length === 0) {
      var tr = document.createElement('tr');
      var td = document.createElement('td');
      td.colSpan = 5;
      td.className = 'empty';
      td.textContent = empty;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    items.forEach(function (item) {
      var tr = document.createElement('tr');
      cells(item).forEach(function (cell) {
        var td = document.createElement('td');
        td.textContent = cell[0];
        if (cell[1]) td.className = cell[1];
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function showSignIn(message) {
    clearInterval(timer);
    timer = null;
    $('dashboard').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    text('summary', 'Sign in with the bridge\\'s bearer token to see its status.');
    $('refusal').hidden = !message;
    $('refusal').textContent = message || '';
  }

  function render(s) {
    $('sign-in').hidden = true;
    $('dashboard').hidden = false;
    $('sign-out').hidden = false;
    $('refusal').hidden = true;
    text('summary', s.status === 'ok' ? 'Healthy' : 'Degraded: the store does not answer');
    $('summary').className = s.status === 'ok' ? 'ok' : 'bad';
    text('health', s.status);
    $('health').className = s.status === 'ok' ? 'ok' : 'bad';
    text('store', s.store + (s.storeError ? ' (' + s.storeError + ')' : ''));
    text('version', s.version);
    text('started', when(s.startedAt));
    text('updated', new Date().toLocaleTimeString());
    var users = s.users || {};
    ['invited', 'active', 'suspended', 'revoked'].forEach(function (k) { text('users-' + k, users[k]); });
    text('groups', s.groups);
    var d = s.delivery;
    text('webhook', d ? d.webhook : undefined);
    text('pending', d ? count(d.pending, 'event') : undefined);
    text('lag', d ? duration(d.lagSeconds) : undefined);
    text('dead-letters', d ? d.deadLetters : undefined);
    $('dead-letters').className = d && d.deadLetters > 0 ? 'bad' : '';
    text('deliveries', d ? d.sinceStart.delivered + ' delivered, ' + d.sinceStart.failed + ' failed, ' + count(d.sinceStart.dead_letter, 'dead letter') : undefined);
    // The Google Workspace connector, when configured: its last sync, what it changed, its error.
    var g = s.connectors && s.connectors.google;
    $('google').hidden = !g;
    if (g) {
      var last = g.lastSync;
      text('google-state', g.state === 'standby' ? 'standby (another replica syncs)' : g.state);
      $('google-state').className = g.state === 'failed' ? 'bad' : g.state === 'ok' ? 'ok' : '';
      text('google-last', last ? when(last.finishedAt) + ' (' + duration(Math.round(last.durationMs / 1000)) + ')' : undefined);
      text('google-result', last ? (last.ok ? 'ok' : 'failed: ' + last.error) + (last.warnings.length ? ', ' + count(last.warnings.length, 'warning') : '') : undefined);
      $('google-result').className = last ? (last.ok ? 'ok' : 'bad') : '';
      var c = last && last.counts;
      text('google-changes', c ? count(c.users, 'user') + ' in ' + count(c.groups, 'group') + ': ' + c.usersCreated + ' created, ' + c.usersUpdated + ' updated, ' + c.usersDeprovisioned + ' deprovisioned, ' +
        c.membersAdded + ' members added, ' + c.membersRemoved + ' removed' + (c.skipped ? ', ' + c.skipped + ' skipped' : '') : undefined);
      text('google-success', when(g.lastSuccessAt));
      text('google-next', when(g.nextSyncAt));
    }
    rows('idps', s.idps, function (r) {
      return [[r.idp], [when(r.at)], [r.method + ' ' + r.route], [String(r.status), r.status < 400 ? 'ok' : 'bad']];
    }, 'No identity provider has called yet.');
    rows('errors', s.recentErrors, function (e) {
      return [[when(e.at)], [e.idp], [e.method + ' ' + e.route], [String(e.status), 'bad'], [e.scimType || '']];
    }, 'No errors since the bridge started.');
  }

  function load(token) {
    return fetch('/status.json', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store', credentials: 'omit' })
      .then(function (res) {
        if (res.status === 401) throw new Error('Refused: the bridge does not accept this token (401). Use the bearer token your identity provider sends.');
        if (res.status === 429) throw new Error('Refused: too many wrong tokens from this address (429). Wait a minute, then try the right token.');
        if (res.status === 503) throw new Error('The bridge is busy (503); try again in a few seconds.');
        if (!res.ok) throw new Error('The bridge answered ' + res.status + '.');
        return res.json();
      });
  }

  function refresh() {
    var token = sessionStorage.getItem(KEY);
    if (!token) return showSignIn();
    load(token).then(render, function (err) {
      if (/^Refused/.test(err.message)) {
        sessionStorage.removeItem(KEY);
        showSignIn(err.message);
      } else {
        text('summary', err.message);
        $('summary').className = 'bad';
      }
    });
  }

  function start() {
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('sign-in').addEventListener('submit', function (event) {
      event.preventDefault();
      var token = $('token').value.trim();
      $('token').value = '';
      load(token).then(function (s) {
        sessionStorage.setItem(KEY, token);
        render(s);
        start();
      }, function (err) { showSignIn(err.message); });
    });
    $('sign-out').addEventListener('click', function () {
      sessionStorage.removeItem(KEY);
      showSignIn();
    });
    $('refresh').addEventListener('click', refresh);
    if (sessionStorage.getItem(KEY)) start(); else showSignIn();
  });
})();
`;
