/**
 * Readiness without a relay: starting, draining first, the store check bounded by its timeout
 * and cached on an injected clock, concurrent probes sharing one store round trip.
 */
import t from 'tap'
import { Readiness } from '../../packages/mport-relay/src/ops/index.js'
import { ManualClock } from '../helpers/manual-clock.js'

t.test('starting, then ready, then draining: draining wins over everything', async t => {
  const r = new Readiness({ pingStore: async () => {} })
  t.match(await r.check(), { ready: false, reason: 'starting' }, 'not ready before the relay listens')
  r.started()
  t.same(await r.check(), { ready: true })
  r.drain()
  t.match(await r.check(), { ready: false, reason: 'draining', message: /shutting down/ })
  t.ok(r.draining)
})

t.test('the store check is cached for cacheMs on the clock, and shared by concurrent probes', async t => {
  const clock = new ManualClock()
  let pings = 0
  let fail: Error | undefined
  const r = new Readiness({ pingStore: async () => { pings++; if (fail !== undefined) throw fail }, cacheMs: 1000, now: clock.now })
  r.started()
  await Promise.all([r.check(), r.check(), r.check()])
  t.equal(pings, 1, 'three probes at once: one store round trip')
  fail = new Error('connect ECONNREFUSED 127.0.0.1:5432\nat …')
  clock.advance(999)
  t.same(await r.check(), { ready: true }, 'within the cache time the last answer stands')
  t.equal(pings, 1)
  clock.advance(1)
  t.same(await r.check(), { ready: false, reason: 'store-unreachable', message: 'the store is unreachable: connect ECONNREFUSED 127.0.0.1:5432' }, 'the first line of the store error')
  t.equal(pings, 2)
  fail = undefined
  clock.advance(1000)
  t.same(await r.check(), { ready: true }, 'ready again once the store answers')
})

t.test('a store that does not answer is unreachable after timeoutMs', async t => {
  const r = new Readiness({ pingStore: () => new Promise(() => {}), timeoutMs: 50 })
  r.started()
  t.same(await r.check(), { ready: false, reason: 'store-unreachable', message: 'the store did not answer within 50 ms' })
})
