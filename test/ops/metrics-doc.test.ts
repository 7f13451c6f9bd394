/**
 * docs/METRICS.md and the relay's registry agree: every mport_* metric the relay defines
 * (prom-client's default Node metrics aside) has a row in the table with its type and labels,
 * and every row names a metric that exists (drift fails in either direction).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { RelayMetrics } from '../../packages/mport-relay/src/ops/index.js'
import { REPO_ROOT } from '../helpers/spawn.js'

interface Row { name: string, type: string, labels: string[] }

function documented (): Row[] {
  const text = readFileSync(path.join(REPO_ROOT, 'docs/METRICS.md'), 'utf8')
  // The labels cell names each label in backticks, then maybe its values in parentheses.
  return [...text.matchAll(/^\| `(mport_[a-z_]+)` \| (\w+) \|([^|]*)\|/gm)].map(m => ({
    name: m[1]!, type: m[2]!, labels: [...m[3]!.replace(/\([^)]*\)/g, '').matchAll(/`([a-z_]+)`/g)].map(l => l[1]!),
  }))
}

t.test('every relay metric is in docs/METRICS.md with its type and labels, and nothing else is', async t => {
  const metrics = new RelayMetrics()
  const own = (await metrics.registry.getMetricsAsJSON()).filter(m => !/^mport_(process|nodejs)_/.test(m.name))
  const rows = documented()
  t.ok(rows.length >= 10, `${rows.length} rows in the table`)
  for (const m of own) {
    const row = rows.find(r => r.name === m.name)
    t.ok(row, `${m.name} is documented`)
    if (row === undefined) continue
    t.equal(row.type, m.type, `${m.name}: the type`)
    const labels = (metrics.registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames
    t.same([...row.labels].sort(), [...labels].sort(), `${m.name}: the labels`)
  }
  for (const r of rows) t.ok(own.some(m => m.name === r.name), `the documented ${r.name} exists`)
})
