/**
 * The live dashboard served at `GET /` by every node: one self-contained HTML page (no external assets) that
 * polls `/overview` (not `/state`: it lists no more VMs than it shows, so a page left open costs a node little
 * at any size) and `/metrics` once a second and shows VMs per region, peers, counters and traffic.
 * Everything remote is inserted with `textContent`, never as HTML, so a hostile VM id cannot inject markup.
 */
export interface DashboardOptions {
  nodeId: string;
  region: string;
  /** Poll period in ms. Default 1000. */
  pollMs?: number;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function dashboardHtml(opts: DashboardOptions): string {
  const poll = Math.max(100, Math.floor(opts.pollMs ?? 1000));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(opts.nodeId)} (${esc(opts.region)}) - async-state-sync</title>
<style>
  :root { --bg:#0f1419; --panel:#182029; --fg:#d8e0e8; --dim:#7d8b99; --ok:#4cc38a; --bad:#e5534b; --acc:#539bf5; }
  * { box-sizing: border-box; }
  body { margin:0; font: 14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--fg); }
  header { padding:14px 20px; border-bottom:1px solid #263040; display:flex; gap:16px; align-items:baseline; flex-wrap:wrap; }
  header h1 { font-size:18px; margin:0; }
  .dim { color:var(--dim); }
  main { display:grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap:14px; padding:14px 20px; }
  section { background:var(--panel); border-radius:8px; padding:12px 14px; }
  section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 8px; }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  td, th { padding:3px 6px; text-align:left; border-bottom:1px solid #222c38; }
  th { color:var(--dim); font-weight:500; }
  td.n { text-align:right; }
  .bar { height:8px; background:#263040; border-radius:4px; overflow:hidden; min-width:80px; }
  .bar > div { height:100%; background:var(--acc); }
  .up { color:var(--ok); } .down { color:var(--bad); }
  #status.bad { color:var(--bad); }
  .big { font-size:28px; font-weight:600; }
  svg { width:100%; height:60px; }
  .wide { grid-column: 1 / -1; }
</style>
</head>
<body>
<header>
  <h1>${esc(opts.nodeId)}</h1><span class="dim">region ${esc(opts.region)}</span>
  <span id="status" class="dim">connecting...</span>
</header>
<main>
  <section><h2>VMs</h2><div class="big" id="vmcount">-</div><svg id="spark" viewBox="0 0 120 60" preserveAspectRatio="none"><polyline id="line" fill="none" stroke="#539bf5" stroke-width="1.5" points=""/></svg></section>
  <section><h2>VMs per region</h2><table id="regions"><thead><tr><th>region</th><th class="n">VMs</th><th></th></tr></thead><tbody></tbody></table></section>
  <section><h2>Peers</h2><table id="peers"><thead><tr><th>peer</th><th>link</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Traffic and sync</h2><table id="traffic"><tbody></tbody></table></section>
  <section><h2>Counters</h2><table id="counters"><thead><tr><th>name</th><th class="n">value</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Nodes</h2><table id="nodes"><thead><tr><th>node</th><th>region</th><th>status</th><th class="n">VMs</th><th class="n">cpu</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Recently updated VMs</h2><table id="vms"><thead><tr><th>id</th><th>status</th><th>node</th><th class="n">cpu</th><th class="n">MB</th><th>updated</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
(() => {
  const POLL = ${poll};
  const history = [];
  const $ = (id) => document.getElementById(id);
  function row(tbody, cells, cls) {
    const tr = document.createElement('tr');
    cells.forEach((c, i) => {
      const td = document.createElement('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '' : String(c);
      if (cls && cls[i]) td.className = cls[i];
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  }
  function fill(id, rows, cls) {
    const tbody = $(id).tBodies[0];
    tbody.textContent = '';
    for (const r of rows) row(tbody, r, cls);
  }
  function bar(frac) {
    const d = document.createElement('div'); d.className = 'bar';
    const i = document.createElement('div'); i.style.width = Math.round(Math.max(0, Math.min(1, frac)) * 100) + '%';
    d.appendChild(i); return d;
  }
  function span(text, cls) { const s = document.createElement('span'); s.textContent = text; s.className = cls; return s; }
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(.*)\\})? (\\S+)$/.exec(line);
      if (!m) continue;
      const labels = {};
      if (m[2]) for (const p of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\]|\\\\.)*)"/g)) labels[p[1]] = p[2];
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }
  function fmtBytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB']; let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + ' ' + u[i];
  }
  async function tick() {
    try {
      const [overviewRes, metricsRes] = await Promise.all([fetch('overview', { cache: 'no-store' }), fetch('metrics', { cache: 'no-store' })]);
      if (!overviewRes.ok || !metricsRes.ok) throw new Error('HTTP ' + overviewRes.status + '/' + metricsRes.status);
      const view = await overviewRes.json();
      const metrics = parseMetrics(await metricsRes.text());
      $('status').textContent = 'live, updated ' + new Date().toLocaleTimeString();
      $('status').className = 'dim';
      $('vmcount').textContent = view.vms;
      history.push(view.vms); if (history.length > 120) history.shift();
      const max = Math.max(1, ...history);
      $('line').setAttribute('points', history.map((v, i) => (i * 120 / 119).toFixed(1) + ',' + (58 - v / max * 56).toFixed(1)).join(' '));
      const total = Math.max(1, view.vms);
      fill('regions', Object.entries(view.regions).map(([r, n]) => [r, n, bar(n / total)]), [, 'n']);
      const peers = metrics.filter((m) => m.name === 'ass_peer_connected');
      fill('peers', peers.map((m) => [m.labels.peer, span(m.value ? 'up' : 'down', m.value ? 'up' : 'down')]));
      const pick = (name) => metrics.filter((m) => m.name === name).reduce((a, m) => a + m.value, 0);
      fill('traffic', [
        ['bytes sent', fmtBytes(pick('ass_transport_bytes_sent_total'))],
        ['bytes received', fmtBytes(pick('ass_transport_bytes_received_total'))],
        ['messages sent / received', pick('ass_transport_messages_sent_total') + ' / ' + pick('ass_transport_messages_received_total')],
        ['gossip messages sent', pick('ass_gossip_messages_sent_total')],
        ['anti-entropy sessions', pick('ass_anti_entropy_syncs_total')],
        ['dropped (queue full / too large)', pick('ass_transport_dropped_queue_full_total') + ' / ' + pick('ass_transport_dropped_too_large_total')],
        ['rejected frames', pick('ass_transport_rejected_frames_total')],
      ], [, 'n']);
      fill('counters', Object.entries(view.counters).sort().map(([k, v]) => [k, v]), [, 'n']);
      fill('nodes', view.nodes.slice().sort((a, b) => a.id < b.id ? -1 : 1).map((n) => [n.id, n.region, n.status, n.vmCount, (n.cpuUsage || 0).toFixed(1)]), [, , , 'n', 'n']);
      fill('vms', view.recent.map((v) => [v.id, v.status, v.nodeId, v.cpuCores, v.memoryMB, v.updatedAt ? new Date(v.updatedAt).toLocaleTimeString() : '']), [, , , 'n', 'n']);
    } catch (e) {
      $('status').textContent = 'offline: ' + e.message;
      $('status').className = 'bad';
    }
    setTimeout(tick, POLL);
  }
  tick();
})();
</script>
</body>
</html>
`;
}
