/**
 * QuotaGate: verdicts for new connections, new tunnels and live connections, with the messages
 * a client sees, from usage given by callbacks.
 */
import t from 'tap'
import { QuotaGate, quotaError, type QuotaLimits } from '../../src/limits/quota.js'
import { QuotaExceededError } from '../../src/errors.js'

const GiB = 1024 ** 3

function gate (limits: QuotaLimits | (() => QuotaLimits)): { gate: QuotaGate, usage: { connections: number, bytes: number, tunnels: number } } {
  const usage = { connections: 0, bytes: 0, tunnels: 0 }
  return {
    usage,
    gate: new QuotaGate({
      limits,
      usage: { connections: () => usage.connections, monthlyBytes: () => usage.bytes, tunnels: () => usage.tunnels },
    }),
  }
}

t.test('concurrent connections: the next one over the limit is refused', async t => {
  const { gate: g, usage } = gate({ maxConnections: 2 })
  t.same(g.checkNewConnection(), { ok: true })
  usage.connections = 1
  t.same(g.checkNewConnection(), { ok: true })
  usage.connections = 2
  t.same(g.checkNewConnection(), {
    ok: false, code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'maxConnections', value: 2, message: 'concurrent connection limit of 2 reached',
  })
  t.same(g.checkLive(), { ok: true }, 'open connections are not ended by the connection limit')
})

t.test('monthly bytes: new connections refused and live ones told to end', async t => {
  const { gate: g, usage } = gate({ monthlyBytes: 10 * GiB })
  usage.bytes = 10 * GiB - 1
  t.same(g.checkNewConnection(), { ok: true })
  t.same(g.checkLive(), { ok: true })
  usage.bytes = 10 * GiB
  const expected = { ok: false, code: 'MPORT_ERR_QUOTA_EXCEEDED', limit: 'monthlyBytes', value: 10 * GiB, message: 'monthly transfer quota of 10.0 GiB reached' }
  t.same(g.checkNewConnection(), expected)
  t.same(g.checkLive(), expected)
  t.same(g.checkNewTunnel(), expected)
})

t.test('tunnels', async t => {
  const { gate: g, usage } = gate({ maxTunnels: 1 })
  t.same(g.checkNewTunnel(), { ok: true })
  usage.tunnels = 1
  t.match(g.checkNewTunnel(), { ok: false, limit: 'maxTunnels', value: 1, message: 'tunnel limit of 1 reached' })
  const noCounter = new QuotaGate({ limits: { maxTunnels: 1 }, usage: { connections: () => 0, monthlyBytes: () => 0 } })
  t.same(noCounter.checkNewTunnel(), { ok: true }, 'no tunnels callback counts 0')
})

t.test('null and absent limits are unlimited, and 0 refuses', async t => {
  const { gate: g, usage } = gate({ maxConnections: null, monthlyBytes: null })
  usage.connections = 1e9
  usage.bytes = 1e18
  t.same(g.checkNewConnection(), { ok: true })
  t.same(g.checkLive(), { ok: true })
  t.same(gate({}).gate.checkNewConnection(), { ok: true })
  t.match(gate({ maxConnections: 0 }).gate.checkNewConnection(), { ok: false, limit: 'maxConnections' })
  t.match(gate({ monthlyBytes: 0 }).gate.checkLive(), { ok: false, message: 'monthly transfer quota of 0 B reached' })
})

t.test('limits given as a function follow plan changes; setLimits replaces them', async t => {
  let plan: QuotaLimits = { maxConnections: 1 }
  const { gate: g, usage } = gate(() => plan)
  usage.connections = 1
  t.match(g.checkNewConnection(), { ok: false })
  plan = { maxConnections: 5 }
  t.same(g.checkNewConnection(), { ok: true })
  g.setLimits({ maxConnections: 1 })
  t.same(g.limits, { maxConnections: 1 })
  t.match(g.checkNewConnection(), { ok: false })
})

t.test('quotaError makes the store\'s QuotaExceededError', async t => {
  const { gate: g, usage } = gate({ monthlyBytes: 1.5 * 1024 * 1024 })
  usage.bytes = 2 * 1024 * 1024
  const v = g.checkLive()
  if (v.ok) throw new Error('expected a refusal')
  const err = quotaError(v)
  t.ok(err instanceof QuotaExceededError)
  t.match(err, { code: 'MPORT_ERR_QUOTA_EXCEEDED', name: 'QuotaExceededError', limit: 'monthlyBytes', value: 1.5 * 1024 * 1024, message: 'monthly transfer quota of 1.5 MiB reached' })
})
