/**
 * deploy/grafana/dashboards/mport.json: it parses, every panel queries the provisioned data
 * source, every PromQL expression names only metrics a live relay exports (scraped from a real
 * `mport-relay --ops-port 0`; `up` is Prometheus's own), the panels cover what an operator
 * watches, and every expression passes promtool's parser (written out as recording rules,
 * with Grafana's variables filled in).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { cleanup, tmpDir } from '../helpers/spawn.js'
import { concrete, dashboardExprs, DATASOURCE_UID, loadDashboard, metricNames } from '../helpers/dashboard.js'
import { startOpsRelay } from '../helpers/ops-relay.js'
import { metricFamilies } from '../helpers/prom-text.js'
import { promtool, prometheusTestOptions } from '../helpers/prometheus.js'

t.teardown(cleanup)

const dashboard = loadDashboard()

t.test('the dashboard parses, and every panel queries the provisioned Prometheus', async t => {
  t.equal(dashboard.uid, 'mport-relay')
  const panels = dashboard.panels.filter(p => p.type !== 'row')
  t.ok(panels.length >= 8, `${panels.length} panels`)
  for (const p of panels) {
    t.equal(p.datasource?.uid, DATASOURCE_UID, `${p.title}: the provisioned data source`)
    t.ok((p.targets ?? []).length > 0, `${p.title}: has a query`)
  }
  t.same(dashboard.templating.list.map(v => v.name), ['instance'], 'one variable: the relay instance')
  const names = new Set(dashboardExprs(dashboard).flatMap(e => metricNames(e.expr)))
  for (const wanted of ['mport_sessions', 'mport_tunnels', 'mport_tunnel_bytes_total', 'mport_visitor_refusals_total', 'mport_session_rtt_seconds_bucket',
    'mport_nodejs_eventloop_lag_p99_seconds', 'mport_store_operation_duration_seconds_bucket', 'mport_certificate_expiry_timestamp_seconds']) {
    t.ok(names.has(wanted), `a panel shows ${wanted}`)
  }
})

t.test('every metric a panel names is exported by a live relay', async t => {
  const relay = await startOpsRelay(path.join(tmpDir(), 'data'))
  const families = metricFamilies(await relay.scrape())
  const exported = (name: string): boolean => {
    if (name === 'up') return true // Prometheus's own series for each target
    if (families.has(name)) return true
    const base = name.replace(/_(bucket|sum|count)$/, '')
    return base !== name && families.get(base) === 'histogram'
  }
  for (const { panel, expr } of dashboardExprs(dashboard)) {
    const names = metricNames(expr)
    t.ok(names.length > 0, `${panel}: names a metric (${expr})`)
    t.same(names.filter(n => !exported(n)), [], `${panel}: every metric is exported (${expr})`)
  }
})

t.test('every expression passes promtool\'s PromQL parser', prometheusTestOptions(), async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-dash-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const exprs = dashboardExprs(dashboard)
  const rules = ['groups:', '  - name: dashboard', '    rules:', ...exprs.flatMap((e, i) => [`      - record: dashboard:panel_${i}`, `        expr: ${JSON.stringify(concrete(e.expr))}`])].join('\n') + '\n'
  await writeFile(path.join(dir, 'dashboard-rules.yml'), rules)
  const check = await promtool(['check', 'rules', 'dashboard-rules.yml'], dir)
  t.equal(check.code, 0, `promtool check rules on the dashboard's ${exprs.length} expressions:\n${check.output}`)
  t.match(check.output, new RegExp(`SUCCESS: ${exprs.length} rules found`))
})
