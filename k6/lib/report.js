// Shared k6 report helpers: thresholds/options common to every flashsale scenario,
// and handleSummary output — k6's summary data as JSON, a small self-contained
// HTML report (no remote modules: the box has no network) and a compact text
// summary on stdout (defining handleSummary replaces k6's own end-of-test text).
//
// Used by k6/coupon_spike.js, k6/order_spike.js and k6/soak.js; not run directly.
// Env: OUT_DIR (default k6/out, relative to k6's working directory; must exist —
// scripts/k6 creates it), P95_MS (100), P99_MS (200), FAIL_RATE (0.01).

const OUT_DIR = __ENV.OUT_DIR || 'k6/out';

// p(99) is not in k6's default trend stats.
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

// Latency thresholds (env-overridable) on all requests and, so that the
// summary shows them per endpoint, on each request name given; the
// failure-rate threshold (what counts as a failure is set per script with
// http.setResponseCallback); and every check — the scripts only check in
// teardown, so `checks` is the no-oversell invariants.
export function commonThresholds(...names) {
  const latency = [`p(95)<${Number(__ENV.P95_MS || 100)}`, `p(99)<${Number(__ENV.P99_MS || 200)}`];
  const t = {
    http_req_duration: latency,
    http_req_failed: [`rate<${Number(__ENV.FAIL_RATE || 0.01)}`],
    checks: ['rate==1'],
  };
  for (const n of names) t[`http_req_duration{name:${n}}`] = latency;
  return t;
}

// handleSummary for a scenario called `name`: writes OUT_DIR/name.json and
// OUT_DIR/name.html, prints the text summary.
export function summaryOutputs(name, data) {
  return {
    stdout: textSummary(name, data),
    [`${OUT_DIR}/${name}.json`]: JSON.stringify(data, null, 2),
    [`${OUT_DIR}/${name}.html`]: htmlReport(name, data),
  };
}

function num(v) {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(Math.abs(v) < 10 ? 3 : 1);
}

function fmtValues(m) {
  const v = m.values || {};
  switch (m.type) {
    case 'counter':
      return `${num(v.count)}  (${num(v.rate)}/s)`;
    case 'rate':
      return `${(100 * (v.rate || 0)).toFixed(2)}%  (${num(v.passes)} true / ${num(v.fails)} false)`;
    case 'gauge':
      return `${num(v.value)}  (min ${num(v.min)}, max ${num(v.max)})`;
    default: // trend
      return TREND_STATS.filter((s) => s in v)
        .map((s) => `${s}=${num(v[s])}${m.contains === 'time' ? 'ms' : ''}`)
        .join('  ');
  }
}

function thresholdRows(data) {
  const rows = [];
  for (const [metric, m] of Object.entries(data.metrics)) {
    for (const [expr, t] of Object.entries(m.thresholds || {})) rows.push({ metric, expr, ok: t.ok });
  }
  return rows.sort((a, b) => a.metric.localeCompare(b.metric) || a.expr.localeCompare(b.expr));
}

function allChecks(group, out = []) {
  for (const c of group.checks || []) out.push({ path: `${group.path || ''}::${c.name}`, ...c });
  for (const g of group.groups || []) allChecks(g, out);
  return out;
}

function metricNames(data) {
  // Custom counters first (the outcome counts), then k6's built-ins.
  return Object.keys(data.metrics).sort((a, b) => {
    const ca = data.metrics[a].type === 'counter' && !a.startsWith('http_') && !a.startsWith('data_') && a !== 'iterations';
    const cb = data.metrics[b].type === 'counter' && !b.startsWith('http_') && !b.startsWith('data_') && b !== 'iterations';
    return ca === cb ? a.localeCompare(b) : ca ? -1 : 1;
  });
}

export function textSummary(name, data) {
  const lines = [`\n=== ${name}: ${(data.state.testRunDurationMs / 1000).toFixed(1)} s ===`];
  for (const n of metricNames(data)) lines.push(`  ${n.padEnd(34)} ${fmtValues(data.metrics[n])}`);
  const checks = allChecks(data.root_group);
  if (checks.length) {
    lines.push('  checks:');
    for (const c of checks) lines.push(`    ${c.fails ? 'FAIL' : 'ok  '} ${c.name} (${c.passes}/${c.passes + c.fails})`);
  }
  const th = thresholdRows(data);
  if (th.length) {
    lines.push('  thresholds:');
    for (const t of th) lines.push(`    ${t.ok ? 'ok  ' : 'FAIL'} ${t.metric}: ${t.expr}`);
  }
  return lines.join('\n') + '\n\n';
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function htmlReport(name, data) {
  const th = thresholdRows(data);
  const failed = th.filter((t) => !t.ok).length + allChecks(data.root_group).filter((c) => c.fails).length;
  const row = (cells, cls = '') => `<tr${cls ? ` class="${cls}"` : ''}>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  const metrics = metricNames(data).map((n) => row([n, data.metrics[n].type, fmtValues(data.metrics[n])])).join('\n');
  const thresholds = th.map((t) => row([t.ok ? 'pass' : 'FAIL', t.metric, t.expr], t.ok ? 'ok' : 'bad')).join('\n');
  const checks = allChecks(data.root_group)
    .map((c) => row([c.fails ? 'FAIL' : 'pass', c.name, c.passes, c.fails], c.fails ? 'bad' : 'ok'))
    .join('\n');
  const env = Object.entries(__ENV)
    .filter(([k]) => /^(BASE_URL|COUPON|SALE|SKUS|PEAK|RAMP|DURATION|RATE|DUP_RATE|CONFIRM_RATIO|CANCEL_RATIO|COUPON_SHARE|P95_MS|P99_MS|FAIL_RATE|USER_BASE)$/.test(k))
    .map(([k, v]) => `${k}=${v}`)
    .join('  ');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>k6 ${esc(name)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#eee}.ok td:first-child{color:#080}.bad td{background:#fdd}.bad td:first-child{color:#c00;font-weight:bold}
.verdict{font-size:1.2em;font-weight:bold;color:${failed ? '#c00' : '#080'}}
</style></head><body>
<h1>k6: ${esc(name)}</h1>
<p class="verdict">${failed ? `${failed} threshold(s)/check(s) failed` : 'all thresholds and checks passed'}</p>
<p>run time ${(data.state.testRunDurationMs / 1000).toFixed(1)} s; ${esc(env)}</p>
<h2>Thresholds</h2><table><tr><th>result</th><th>metric</th><th>threshold</th></tr>
${thresholds}
</table>
<h2>Checks</h2><table><tr><th>result</th><th>check</th><th>passes</th><th>fails</th></tr>
${checks}
</table>
<h2>Metrics</h2><table><tr><th>metric</th><th>type</th><th>values</th></tr>
${metrics}
</table>
</body></html>
`;
}
