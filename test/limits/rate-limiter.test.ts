/**
 * ConnectionRateLimiter on explicit times: overall and per-address limits, refusals that cost
 * nothing, address normalisation and the LRU bound.
 */
import t from 'tap'
import { ConnectionRateLimiter } from '../../src/limits/rate-limiter.js'

t.test('allows perMinute connections, then refuses until tokens return', async t => {
  const limiter = new ConnectionRateLimiter({ perMinute: 5, now: () => 0 })
  let allowed = 0
  for (let i = 0; i < 20; i++) if (limiter.allow(`10.0.0.${i}`, 0)) allowed++
  t.equal(allowed, 5)
  t.notOk(limiter.allow('10.0.1.1', 11_999), 'one token takes 12 s at 5/min')
  t.ok(limiter.allow('10.0.1.1', 12_000))
  t.notOk(limiter.allow('10.0.1.1', 12_000))
  let later = 0
  for (let i = 0; i < 20; i++) if (limiter.allow(`10.0.2.${i}`, 10 * 60_000)) later++
  t.equal(later, 5, 'after a long pause, at most one minute\'s worth at once')
})

t.test('a refusal says why and when to retry', async t => {
  const limiter = new ConnectionRateLimiter({ perMinute: 60, perIpPerMinute: 2 })
  t.ok(limiter.check('203.0.113.7', 0).ok)
  t.ok(limiter.check('203.0.113.7', 0).ok)
  const ip = limiter.check('203.0.113.7', 0)
  t.match(ip, { ok: false, scope: 'ip', perMinute: 2, retryAfterMs: 30_000 })
  t.equal(!ip.ok && ip.message, 'new-connection rate limit of 2 per minute reached for 203.0.113.7; retry in 30 s')
  for (let i = 0; i < 58; i++) limiter.allow(`198.51.100.${i}`, 0)
  const all = limiter.check('192.0.2.1', 0)
  t.match(all, { ok: false, scope: 'all', perMinute: 60, retryAfterMs: 1000 })
  t.equal(!all.ok && all.message, 'new-connection rate limit of 60 per minute reached; retry in 1 s')
})

t.test('the per-address limit is independent per address and of the overall limit', async t => {
  const limiter = new ConnectionRateLimiter({ perMinute: 100, perIpPerMinute: 3 })
  const count = (ip: string, n: number, at: number): number => {
    let ok = 0
    for (let i = 0; i < n; i++) if (limiter.allow(ip, at)) ok++
    return ok
  }
  t.equal(count('192.0.2.1', 10, 0), 3)
  t.equal(count('192.0.2.2', 10, 0), 3, 'another address has its own budget')
  t.equal(count('2001:db8::1', 10, 0), 3)
  t.equal(count('192.0.2.1', 10, 20_000), 1, 'one token back after 20 s at 3/min')
})

t.test('refused connections cost nothing', async t => {
  const limiter = new ConnectionRateLimiter({ perMinute: 3, perIpPerMinute: 2 })
  t.ok(limiter.allow('192.0.2.1', 0))
  t.ok(limiter.allow('192.0.2.1', 0))
  for (let i = 0; i < 50; i++) t.notOk(limiter.allow('192.0.2.1', 0), 'over its own limit')
  t.ok(limiter.allow('192.0.2.2', 0), 'the noisy address did not use up the overall budget')
  t.notOk(limiter.allow('192.0.2.3', 0), 'overall limit reached')
})

t.test('a refusal by the overall limit does not charge the address', async t => {
  const limiter = new ConnectionRateLimiter({ perMinute: 2, perIpPerMinute: 1 })
  t.ok(limiter.allow('192.0.2.1', 0))
  t.ok(limiter.allow('192.0.2.2', 0))
  for (let i = 0; i < 5; i++) t.notOk(limiter.allow('192.0.2.3', 0), 'overall limit reached')
  // At 30 s the overall bucket has 1 token again; 192.0.2.3's own bucket (1/min) would have
  // only 0.5 had the refusals charged it.
  t.ok(limiter.allow('192.0.2.3', 30_000))
})

t.test('IPv4-mapped IPv6 is the IPv4 address; IPv6 counts per /64', async t => {
  const limiter = new ConnectionRateLimiter({ perIpPerMinute: 2 })
  t.equal(limiter.key('::ffff:1.2.3.4'), '1.2.3.4')
  t.equal(limiter.key('::FFFF:1.2.3.4'), '1.2.3.4')
  t.equal(limiter.key('0:0:0:0:0:ffff:102:304'), '1.2.3.4')
  t.equal(limiter.key('2001:DB8:0:0:1::5'), '2001:db8::/64')
  t.equal(limiter.key('fe80::1%eth0'), 'fe80::/64')
  t.equal(limiter.key('not an address'), 'not an address')
  t.ok(limiter.allow('1.2.3.4', 0))
  t.ok(limiter.allow('::ffff:1.2.3.4', 0))
  t.notOk(limiter.allow('::ffff:1.2.3.4', 0), 'both spellings share one bucket')
  t.ok(limiter.allow('2001:db8::1', 0))
  t.ok(limiter.allow('2001:db8::ffff:2', 0))
  t.notOk(limiter.allow('2001:db8::3', 0), 'the same /64')
  t.ok(limiter.allow('2001:db8:0:1::1', 0), 'the next /64')
  const perAddress = new ConnectionRateLimiter({ perIpPerMinute: 1, ipv6PrefixLength: 128 })
  t.ok(perAddress.allow('2001:db8::1', 0))
  t.ok(perAddress.allow('2001:db8::2', 0))
  t.equal(perAddress.key('2001:db8::1'), '2001:db8::1')
})

t.test('memory is bounded: the least recently seen addresses are evicted', async t => {
  const limiter = new ConnectionRateLimiter({ perIpPerMinute: 1, maxTrackedIps: 3 })
  t.ok(limiter.allow('10.0.0.1', 0))
  t.ok(limiter.allow('10.0.0.2', 0))
  t.ok(limiter.allow('10.0.0.3', 0))
  t.notOk(limiter.allow('10.0.0.1', 0), 'refreshes 10.0.0.1 as recently seen')
  t.ok(limiter.allow('10.0.0.4', 0), 'evicts 10.0.0.2, the least recent')
  t.equal(limiter.trackedIps, 3)
  t.notOk(limiter.tracks('10.0.0.2'))
  t.ok(limiter.tracks('10.0.0.1'))
  t.ok(limiter.tracks('::ffff:10.0.0.4'))
  t.ok(limiter.allow('10.0.0.2', 0), 'an evicted address starts again with a full bucket')
  for (let i = 0; i < 10_000; i++) limiter.allow(`10.1.${i >> 8}.${i & 255}`, 1)
  t.equal(limiter.trackedIps, 3, 'a flood of addresses never grows the map past the bound')
})

t.test('limits of 0 refuse everything, null/undefined is unlimited', async t => {
  const closed = new ConnectionRateLimiter({ perMinute: 0 })
  const v = closed.check('192.0.2.1', 0)
  t.match(v, { ok: false, scope: 'all', retryAfterMs: Infinity, message: 'new-connection rate limit of 0 per minute reached' })
  const closedIp = new ConnectionRateLimiter({ perIpPerMinute: 0 })
  t.notOk(closedIp.allow('192.0.2.1', 0))
  t.ok(closedIp.allow(undefined, 0), 'an unknown address is held only to the overall limit')
  const open = new ConnectionRateLimiter({ perMinute: null })
  let allowed = 0
  for (let i = 0; i < 1000; i++) if (open.allow('192.0.2.1', 0)) allowed++
  t.equal(allowed, 1000)
  t.equal(open.trackedIps, 0, 'no per-address limit, no per-address state')
})

t.test('the default clock is used when allow gets no time', async t => {
  const limiter = new ConnectionRateLimiter({ perMinute: 1 })
  t.ok(limiter.allow('192.0.2.1'))
  t.notOk(limiter.allow('192.0.2.1'))
})

t.test('invalid options are refused', async t => {
  t.throws(() => new ConnectionRateLimiter({ perMinute: -1 }), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new ConnectionRateLimiter({ perIpPerMinute: Infinity }), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new ConnectionRateLimiter({ maxTrackedIps: 0 }), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new ConnectionRateLimiter({ ipv6PrefixLength: 129 }), { code: 'MPORT_ERR_INVALID_CONFIG' })
})
