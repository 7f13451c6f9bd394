/**
 * TokenBucket arithmetic on an injected clock: no timers, no sleeps.
 */
import t from 'tap'
import { TokenBucket } from '../../src/limits/token-bucket.js'

function clocked (ratePerSecond: number, burst: number): { bucket: TokenBucket, advance: (ms: number) => void, set: (ms: number) => void } {
  let now = 1000
  const bucket = new TokenBucket({ ratePerSecond, burst, now: () => now })
  return { bucket, advance: ms => { now += ms }, set: ms => { now = ms } }
}

t.test('starts full, take within the level returns 0', async t => {
  const { bucket } = clocked(1000, 500)
  t.equal(bucket.tokens, 500)
  t.equal(bucket.take(200), 0)
  t.equal(bucket.take(300), 0)
  t.equal(bucket.tokens, 0)
})

t.test('take beyond the level goes into debt and says how long to wait', async t => {
  const { bucket, advance } = clocked(1000, 500)
  t.equal(bucket.take(500), 0)
  t.equal(bucket.take(100), 100, '100 tokens at 1000/s: 100 ms')
  t.equal(bucket.tokens, -100)
  t.equal(bucket.take(50), 150, 'a later reservation queues behind the first')
  advance(100)
  t.equal(bucket.tokens, -50)
  advance(50)
  t.equal(bucket.tokens, 0)
})

t.test('tickets: each reservation is covered in order, msUntil follows the clock', async t => {
  const { bucket, advance } = clocked(1000, 100)
  t.equal(bucket.take(100), 0)
  const a = bucket.reserve(100)
  const b = bucket.reserve(200)
  t.equal(bucket.msUntil(a), 100)
  t.equal(bucket.msUntil(b), 300)
  advance(40)
  t.equal(bucket.msUntil(a), 60)
  t.equal(bucket.msUntil(b), 260)
  advance(60)
  t.equal(bucket.msUntil(a), 0, 'first covered')
  t.equal(bucket.msUntil(b), 200)
  advance(500)
  t.equal(bucket.msUntil(b), 0)
  t.equal(bucket.tokens, 100, 'refill stops at burst')
})

t.test('refill is capped at burst', async t => {
  const { bucket, advance } = clocked(1000, 500)
  bucket.take(500)
  advance(60_000)
  t.equal(bucket.tokens, 500)
  t.equal(bucket.take(600), 100, 'a take larger than burst waits for the rest')
})

t.test('tryTake never goes into debt', async t => {
  const { bucket, advance } = clocked(10, 3)
  t.ok(bucket.tryTake(1))
  t.ok(bucket.tryTake(2))
  t.notOk(bucket.tryTake(1), 'empty')
  t.equal(bucket.tokens, 0, 'a refused tryTake leaves the bucket untouched')
  advance(99)
  t.notOk(bucket.tryTake(1), '0.99 tokens is not 1')
  advance(1)
  t.ok(bucket.tryTake(1))
  t.notOk(bucket.tryTake(4), 'more than burst is never available')
})

t.test('fractional refills accumulate', async t => {
  const { bucket, advance } = clocked(3, 1)
  t.ok(bucket.tryTake(1))
  for (let i = 0; i < 3; i++) advance(111)
  t.notOk(bucket.tryTake(1), '333 ms at 3/s is 0.999 tokens')
  advance(1)
  t.ok(bucket.tryTake(1))
})

t.test('setRate: tokens so far count at the old rate, later ones at the new', async t => {
  const { bucket, advance } = clocked(1000, 10_000)
  bucket.take(10_000)
  const ticket = bucket.reserve(3000)
  t.equal(bucket.msUntil(ticket), 3000)
  advance(1000) // 1000 tokens at the old rate
  bucket.setRate(4000)
  t.equal(bucket.msUntil(ticket), 500, '2000 missing at 4000/s')
  t.equal(bucket.rate, 4000)
  advance(500)
  t.equal(bucket.msUntil(ticket), 0)
})

t.test('setRate with a smaller burst clamps the level', async t => {
  const { bucket } = clocked(1000, 1000)
  bucket.setRate(100, 50)
  t.equal(bucket.burst, 50)
  t.equal(bucket.tokens, 50)
})

t.test('rate listeners are called on setRate until unsubscribed', async t => {
  const { bucket } = clocked(1000, 1000)
  const seen: number[] = []
  const off = bucket.onRateChange(b => seen.push(b.rate))
  t.equal(bucket.listenerCount, 1)
  bucket.setRate(5)
  bucket.setRate(6)
  off()
  bucket.setRate(7)
  t.same(seen, [5, 6])
  t.equal(bucket.listenerCount, 0)
})

t.test('rate 0 pauses: waits are Infinity until setRate', async t => {
  const { bucket, advance } = clocked(0, 100)
  t.equal(bucket.take(100), 0, 'the initial burst is still there')
  const ticket = bucket.reserve(10)
  t.equal(bucket.msUntil(ticket), Infinity)
  advance(60_000)
  t.equal(bucket.tokens, -10, 'nothing accrues while paused')
  bucket.setRate(100)
  t.equal(bucket.msUntil(ticket), 100)
})

t.test('rate Infinity is unlimited and switching back starts full', async t => {
  const { bucket } = clocked(Infinity, 100)
  t.equal(bucket.take(1e12), 0)
  t.ok(bucket.tryTake(1e12))
  bucket.setRate(1000)
  t.equal(bucket.tokens, 100)
  t.equal(bucket.take(200), 100)
  const ticket = bucket.reserve(1000)
  bucket.setRate(Infinity)
  t.equal(bucket.msUntil(ticket), 0, 'outstanding reservations are covered at once')
})

t.test('refund gives back a reservation that will not be used', async t => {
  const { bucket } = clocked(1000, 100)
  bucket.take(100)
  const a = bucket.reserve(100)
  const b = bucket.reserve(100)
  t.equal(bucket.msUntil(b), 200)
  bucket.refund(100) // a is abandoned
  t.equal(bucket.msUntil(b), 100, 'b moves up')
  t.equal(bucket.msUntil(a), 0)
  bucket.refund(1000)
  t.equal(bucket.tokens, 100, 'refunds are capped at burst')
})

t.test('a clock stepping back is ignored, not credited twice', async t => {
  const { bucket, set } = clocked(1000, 1000)
  bucket.take(1000)
  set(1500)
  t.equal(bucket.tokens, 500)
  set(1200)
  t.equal(bucket.tokens, 500)
  set(1500)
  t.equal(bucket.tokens, 500, 'the same interval is not counted again')
  set(1600)
  t.equal(bucket.tokens, 600)
})

t.test('default clock is monotonic performance.now', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1 })
  t.ok(bucket.tryTake(1))
  t.notOk(bucket.tryTake(1))
  t.ok(bucket.take(1) > 0)
})

t.test('invalid options and counts are refused', async t => {
  t.throws(() => new TokenBucket({ ratePerSecond: -1, burst: 1 }), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new TokenBucket({ ratePerSecond: Number.NaN, burst: 1 }), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new TokenBucket({ ratePerSecond: 1, burst: 0 }), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => new TokenBucket({ ratePerSecond: 1, burst: Infinity }), { code: 'MPORT_ERR_INVALID_CONFIG' })
  const { bucket } = clocked(1, 1)
  t.throws(() => bucket.take(-1), RangeError)
  t.throws(() => bucket.tryTake(Number.NaN), RangeError)
  t.throws(() => bucket.setRate(-5), { code: 'MPORT_ERR_INVALID_CONFIG' })
})
