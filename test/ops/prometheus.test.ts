/**
 * A real Prometheus (Debian's) scrapes a real relay: started by the test on a free loopback
 * port with a temp config (1 s scrape and rule interval, the repository's alert rules loaded),
 * it sees traffic of known size through a tunnel with the exact byte counts, the visitor and
 * session counts and the keepalive RTT histogram, evaluates every alert rule without error, and
 * answers every expression of the Grafana dashboard.
 */
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { cleanup, REPO_ROOT, tmpDir } from '../helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'
import { startClient, startOpsRelay } from '../helpers/ops-relay.js'
import { concrete, dashboardExprs, loadDashboard } from '../helpers/dashboard.js'
import { prometheusTestOptions, startPrometheus, type PrometheusServer } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/wait.js'

t.teardown(cleanup)

/** The value of an instant query with one series; undefined when it has none. */
async function scalar (prom: PrometheusServer, expr: string): Promise<number | undefined> {
  const r = await prom.query(expr)
  if (r.length > 1) throw new Error(`${expr}: ${r.length} series, expected one`)
  return r[0] === undefined ? undefined : Number(r[0].value[1])
}

t.test('Prometheus scrapes the relay and sees the traffic sent', prometheusTestOptions(), async t => {
  const relay = await startOpsRelay(path.join(tmpDir(), 'data'))
  const prom = await startPrometheus([
    'global:', '  scrape_interval: 1s', '  evaluation_interval: 1s',
    'rule_files:', `  - ${JSON.stringify(path.join(REPO_ROOT, 'deploy/prometheus/alerts.yml'))}`,
    'scrape_configs:', '  - job_name: mport-relay', '    static_configs:', `      - targets: ["127.0.0.1:${relay.opsPort}"]`, '',
  ].join('\n'))
  t.teardown(() => prom.stop())
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = startClient(relay, [`echo=${echo.port}`])
  const port = (await client.waitEvent('tunnel', o => o.name === 'echo', 60_000)).remotePort as number
  const sizes = [123_456, 654_321]
  for (const n of sizes) {
    const data = randomBytes(n)
    t.ok((await roundTrip(await connectTo(port), data)).equals(data), `${n} bytes echoed`)
  }
  const total = sizes[0]! + sizes[1]!

  const bytesIn = 'mport_tunnel_bytes_total{job="mport-relay", user="owner", tunnel="echo", direction="in"}'
  const bytesOut = 'mport_tunnel_bytes_total{job="mport-relay", user="owner", tunnel="echo", direction="out"}'
  await waitFor(async () => await scalar(prom, bytesOut) === total, {
    what: `Prometheus to have scraped ${total} bytes out`, timeoutMs: 60_000, intervalMs: 500,
    diag: () => prom.log.slice(-2000),
  })
  t.equal(await scalar(prom, bytesIn), total, 'bytes in, as Prometheus stored them')
  t.equal(await scalar(prom, bytesOut), total, 'bytes out')
  t.equal(await scalar(prom, 'mport_user_bytes_total{user="owner", direction="in"}'), total, 'per user')
  t.equal(await scalar(prom, 'mport_visitor_connections_total'), sizes.length, 'visitor connections')
  t.equal(await scalar(prom, 'mport_sessions'), 1, 'one client session')
  t.equal(await scalar(prom, 'mport_tunnels{kind="tcp"}'), 1, 'one tcp tunnel')
  t.equal(await scalar(prom, 'up{job="mport-relay"}'), 1, 'the target is up')
  const [target] = await prom.targets()
  t.equal(target?.health, 'up', `the scrape is healthy (${target?.lastError ?? ''})`)
  t.equal(target?.scrapeUrl, `http://127.0.0.1:${relay.opsPort}/metrics`)

  // Every alert rule evaluates on real data without error, and none fires (nor is pending) on
  // a healthy relay once it has been scraped (before the first scrape, MportRelayDown's
  // absent(up) is rightly pending).
  type Rule = { name: string, health: string, lastError?: string, state: string }
  const rules = async (): Promise<Rule[]> => ((await (await fetch(`http://127.0.0.1:${prom.port}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Rule[] }> } }).data.groups.flatMap(g => g.rules)
  let last: Rule[] = []
  await waitFor(async () => { last = await rules(); return last.length > 0 && last.every(r => r.health === 'ok' && r.state === 'inactive') }, {
    what: 'every alert rule to evaluate and be inactive', timeoutMs: 60_000, intervalMs: 500, diag: () => JSON.stringify(last),
  })
  t.ok(last.length >= 6, `${last.length} rules loaded, each evaluated without error and inactive`)

  // The relay pings each client session every 15 s: the first round trip lands in the histogram.
  await waitFor(async () => (await scalar(prom, 'mport_session_rtt_seconds_count') ?? 0) >= 1, { what: 'a keepalive round trip in Prometheus', timeoutMs: 60_000, intervalMs: 500 })
  const p99 = await scalar(prom, 'histogram_quantile(0.99, sum by (le) (mport_session_rtt_seconds_bucket))')
  t.ok(p99 !== undefined && p99 >= 0 && p99 <= 10, `the keepalive RTT histogram gives a p99 (${p99 ?? 'none'} s)`)

  // The dashboard's expressions, as Grafana would send them.
  const exprs = dashboardExprs(loadDashboard())
  for (const { panel, expr } of exprs) {
    const q = concrete(expr)
    await t.resolves(prom.query(q), `${panel}: Prometheus answers ${q}`)
  }
  const traffic = exprs.find(e => e.panel === 'Visitor traffic')!
  // A rate needs two samples of the counter within its window.
  await waitFor(async () => (await prom.query(concrete(traffic.expr))).length > 0, { what: 'the traffic panel to have data', timeoutMs: 60_000, intervalMs: 500 })
  t.same((await prom.query(concrete(traffic.expr))).map(s => s.metric.direction).sort(), ['in', 'out'], 'the traffic panel shows both directions')
})
