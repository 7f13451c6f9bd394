/**
 * The metric pieces on their own: per-tunnel and per-user byte series bounded (the first N
 * keep theirs, later ones share `_other`, nothing lost), the timed store view, certificate
 * expiry from a real certificate, and the ops listener's routes.
 */
import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { RelayMetrics, Readiness, startOpsServer, OTHER } from '../../packages/mport-relay/src/ops/index.js'
import { timedStore } from '../../packages/mport-relay/src/ops/timed-store.js'
import { cert } from '../helpers/tunnel.js'
import { sampleValue } from '../helpers/prom-text.js'

t.test('byte series: the first N tunnels and users keep their own, the rest add up under _other', async t => {
  const m = new RelayMetrics({ maxTunnelSeries: 2, maxUserSeries: 1 })
  m.addBytes('alice', 'web', 100, 10)
  m.addBytes('alice', 'ssh', 200, 20)
  m.addBytes('bob', 'web', 400, 40) // third pair, second user: both past the bounds
  m.addBytes('alice', 'web', 1, 0)
  m.addBytes('carol', 'db', 0, 80)
  const text = await m.text()
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'alice', tunnel: 'web', direction: 'in' }), 101)
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'alice', tunnel: 'ssh', direction: 'out' }), 20)
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'bob' }), undefined, 'bob/web has no series of its own')
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: OTHER, tunnel: OTHER, direction: 'in' }), 400)
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: OTHER, tunnel: OTHER, direction: 'out' }), 120)
  t.equal(sampleValue(text, 'mport_user_bytes_total', { user: 'alice', direction: 'in' }), 301)
  t.equal(sampleValue(text, 'mport_user_bytes_total', { user: OTHER, direction: 'out' }), 120)
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { direction: 'in' }), 701, 'every byte counted once across the series')
  t.equal(sampleValue(text, 'mport_user_bytes_total', { direction: 'in' }), 701)
  t.throws(() => new RelayMetrics({ maxTunnelSeries: -1 }), RangeError)
})

t.test('timed store: each promise-returning call is observed under its method name; #private state still works', async t => {
  class Store {
    #rows = ['a', 'b']
    get size (): number { return this.#rows.length }
    async list (): Promise<string[]> { return [...this.#rows] }
    async fail (): Promise<void> { throw new Error('gone') }
    name (): string { return 'plain' }
  }
  const m = new RelayMetrics()
  const s = timedStore(new Store(), m.storeDuration)
  t.same(await s.list(), ['a', 'b'])
  await s.list()
  await t.rejects(s.fail(), /gone/, 'errors pass through')
  t.equal(s.size, 2, 'getters read the real object')
  t.equal(s.name(), 'plain')
  const text = await m.text()
  t.equal(sampleValue(text, 'mport_store_operation_duration_seconds_count', { operation: 'list' }), 2)
  t.equal(sampleValue(text, 'mport_store_operation_duration_seconds_count', { operation: 'fail' }), 1, 'a failed call is timed too')
  t.equal(sampleValue(text, 'mport_store_operation_duration_seconds_count', { operation: 'name' }), undefined, 'a synchronous method is not a store call: not timed')
})

t.test('certificate expiry: the notAfter of the PEM, per name; a name can be dropped', async t => {
  const m = new RelayMetrics()
  const expires = m.certificates.set('control', cert)
  t.equal(expires, Math.floor(Date.parse(new X509Certificate(cert).validTo) / 1000))
  t.equal(sampleValue(await m.text(), 'mport_certificate_expiry_timestamp_seconds', { cert: 'control' }), expires)
  m.certificates.delete('control')
  t.equal(sampleValue(await m.text(), 'mport_certificate_expiry_timestamp_seconds'), undefined)
  t.throws(() => m.certificates.set('bad', 'not a certificate'))
})

t.test('ops listener: /healthz, /readyz (503 with a JSON reason), /metrics; 404 and 405 otherwise', async t => {
  const metrics = new RelayMetrics()
  const readiness = new Readiness({ pingStore: async () => {}, gauges: { storeUp: metrics.storeUp, ready: metrics.ready } })
  const ops = await startOpsServer({ host: '127.0.0.1', port: 0, metrics, readiness })
  t.teardown(() => ops.close())
  t.equal(ops.address.address, '127.0.0.1')
  const base = `http://127.0.0.1:${ops.address.port}`
  const health = await fetch(`${base}/healthz`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })
  const starting = await fetch(`${base}/readyz`)
  t.equal(starting.status, 503)
  t.match(await starting.json(), { status: 'not ready', reason: 'starting' })
  readiness.started()
  t.equal((await fetch(`${base}/readyz`)).status, 200)
  const scrape = await fetch(`${base}/metrics?x=1`)
  t.equal(scrape.status, 200)
  t.match(scrape.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await scrape.text()
  t.equal(sampleValue(text, 'mport_ready'), 1, 'the scrape carries readiness')
  t.equal(sampleValue(text, 'mport_store_up'), 1)
  t.ok(sampleValue(text, 'mport_nodejs_eventloop_lag_p99_seconds') !== undefined, 'event-loop lag from the default collectors')
  t.equal((await fetch(`${base}/healthz`, { method: 'HEAD' })).status, 200)
  const post = await fetch(`${base}/metrics`, { method: 'POST' })
  t.equal(post.status, 405)
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  const missing = await fetch(`${base}/`)
  t.equal(missing.status, 404)
  t.same(await missing.json(), { error: 'not found', routes: ['/metrics', '/healthz', '/readyz'] })
})
