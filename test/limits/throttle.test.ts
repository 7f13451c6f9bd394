/**
 * Throttle mechanics without rate measurements: pieces, byte counts, bounded buffers when the
 * consumer stalls, rate changes waking a waiting throttle, destroy clearing its timer and
 * refunding its tokens. (Rates through real TCP, on a manual clock: throttle.tcp.test.ts.)
 */
import t from 'tap'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import { Throttle } from '../../src/limits/throttle.js'
import { TokenBucket } from '../../src/limits/token-bucket.js'
import { waitFor, withTimeout, turns } from '../helpers/wait.js'

const MiB = 1024 * 1024

function timers (): number {
  return process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
}

/** Collects what comes out of the throttle. */
function collect (throttle: Throttle): { chunks: Buffer[], done: Promise<Buffer> } {
  const chunks: Buffer[] = []
  const done = new Promise<Buffer>((resolve, reject) => {
    throttle.on('data', (c: Buffer) => chunks.push(c))
    throttle.on('end', () => resolve(Buffer.concat(chunks)))
    throttle.on('error', reject)
  })
  return { chunks, done }
}

t.test('passes bytes unchanged, in pieces of at most 100 ms worth, and counts them', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 2 * MiB, burst: 8 * MiB })
  const throttle = new Throttle({ buckets: [bucket] })
  const { chunks, done } = collect(throttle)
  const input = randomBytes(3 * MiB + 17)
  throttle.end(input)
  const output = await withTimeout(done, { what: 'the throttle to pass 3 MiB within its burst' })
  t.ok(output.equals(input), 'same bytes, same order')
  t.equal(throttle.bytes, input.length)
  const piece = Math.floor(2 * MiB / 10)
  t.ok(chunks.every(c => c.length <= piece), `every piece ≤ ${piece} bytes (largest ${Math.max(...chunks.map(c => c.length))})`)
  t.equal(chunks.length, Math.ceil(input.length / piece))
  t.equal(bucket.tokens > 4 * MiB, true, 'charged 3 MiB to the bucket')
})

t.test('an unlimited bucket passes chunks whole', async t => {
  const bucket = new TokenBucket({ ratePerSecond: Infinity, burst: 1 })
  const throttle = new Throttle({ buckets: [bucket] })
  const { chunks, done } = collect(throttle)
  throttle.end(Buffer.alloc(5 * MiB))
  t.notOk(throttle.waiting, 'never waits')
  await withTimeout(done, { what: 'end' })
  t.same(chunks.map(c => c.length), [5 * MiB])
  t.equal(bucket.listenerCount, 0)
})

t.test('a stalled consumer: bounded buffers, the writer sees backpressure, no tokens held', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 10 * MiB, burst: 100 * MiB })
  const throttle = new Throttle({ buckets: [bucket] })
  const chunk = Buffer.alloc(8 * MiB, 7)
  t.equal(throttle.write(chunk), false, 'one 8 MiB chunk is over the writable highWaterMark')
  await turns(5)
  const piece = MiB
  t.ok(throttle.readableLength <= throttle.readableHighWaterMark + piece, `readableLength ${throttle.readableLength} ≤ hwm + one piece`)
  t.ok(throttle.writableLength <= throttle.writableHighWaterMark + chunk.length, `writableLength ${throttle.writableLength} ≤ hwm + one chunk`)
  t.equal(throttle.bytes, piece, 'one piece passed, then it stalled on the full readable side')
  t.equal(Math.round(bucket.tokens / MiB), 99, 'only the passed piece was charged')
  for (let i = 0; i < 4; i++) throttle.write(chunk)
  await turns(5)
  t.equal(throttle.bytes, piece, 'more writes queue on the writable side, nothing more passes')
  // Now read it all: everything flows.
  let got = 0
  throttle.on('data', (c: Buffer) => { got += c.length })
  throttle.end()
  await withTimeout(new Promise(resolve => throttle.on('end', resolve)), { what: 'the throttle to drain 40 MiB' })
  t.equal(got, 40 * MiB)
  t.equal(throttle.bytes, 40 * MiB)
})

t.test('rate 0 holds data without a timer; setRate releases it at once', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 0, burst: 1024 })
  const throttle = new Throttle({ buckets: [bucket] })
  const { done } = collect(throttle)
  const before = timers()
  throttle.end(Buffer.alloc(64 * 1024, 1))
  await waitFor(() => throttle.waiting, { what: 'the throttle to wait for tokens' })
  t.equal(throttle.bytes, 0, 'a paused bucket does not cut pieces: the whole chunk waits')
  t.equal(timers(), before, 'no timer while paused')
  t.equal(bucket.listenerCount, 1, 'listening for a rate change while waiting')
  bucket.setRate(100 * MiB)
  const out = await withTimeout(done, { what: 'the data after setRate' })
  t.equal(out.length, 64 * 1024)
  t.equal(bucket.listenerCount, 0, 'unsubscribed once done waiting')
})

t.test('a rate rise wakes a throttle that would otherwise sleep for minutes', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1 })
  const throttle = new Throttle({ buckets: [bucket] })
  const { done } = collect(throttle)
  throttle.end(Buffer.alloc(1000, 2))
  await waitFor(() => throttle.waiting, { what: 'the throttle to wait' })
  t.ok(throttle.bytes < 10, 'at 1 B/s almost nothing passed')
  bucket.setRate(Infinity)
  const out = await withTimeout(done, { timeoutMs: 5000, what: '1000 bytes after the rate went to Infinity (at 1 B/s they would take 16 min)' })
  t.equal(out.length, 1000)
})

t.test('a rate fall re-cuts the waiting piece', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 10 * MiB, burst: 1 })
  const throttle = new Throttle({ buckets: [bucket] })
  const { chunks, done } = collect(throttle)
  throttle.write(Buffer.alloc(4 * MiB))
  await waitFor(() => throttle.waiting, { what: 'the throttle to wait' })
  bucket.setRate(0)
  const passed = throttle.bytes
  t.ok(throttle.waiting)
  bucket.setRate(10 * 1024) // 1 KiB pieces from now on
  await waitFor(() => throttle.bytes > passed, { what: 'a piece at the new rate' })
  bucket.setRate(Infinity)
  throttle.end()
  await withTimeout(done, { what: 'end' })
  t.equal(throttle.bytes, 4 * MiB)
  t.ok(chunks.some(c => c.length === 1024), 'pieces of 100 ms at the new rate')
})

t.test('destroy while waiting clears the timer, unsubscribes and refunds the tokens', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 1000 })
  const before = timers()
  const throttles = [1, 2, 3].map(() => new Throttle({ buckets: [bucket] }))
  for (const th of throttles) {
    th.resume()
    th.write(Buffer.alloc(5000))
  }
  await waitFor(() => throttles.every(th => th.waiting), { what: 'all three to wait' })
  t.ok(timers() - before <= 3, 'at most one timer per throttle')
  t.equal(bucket.listenerCount, 3)
  const owed = bucket.tokens
  t.ok(owed < 0, 'the bucket is in debt for the waiting pieces')
  for (const th of throttles) th.destroy()
  t.equal(timers(), before, 'no timers left')
  t.equal(bucket.listenerCount, 0)
  t.ok(bucket.tokens >= 0, `the waiting pieces were refunded (${owed} → ${bucket.tokens})`)
  t.ok(throttles.every(th => !th.waiting))
})

t.test('two buckets: the slower one sets the pace and both are charged', async t => {
  // The tunnel bucket's clock stands still: no refill, so its level shows exactly what was charged.
  const tunnel = new TokenBucket({ ratePerSecond: 100 * MiB, burst: 100 * MiB, now: () => 0 })
  const user = new TokenBucket({ ratePerSecond: 1 * MiB, burst: 256 * 1024 })
  const throttle = new Throttle({ buckets: [tunnel, user, user] })
  t.equal(throttle.buckets.length, 2, 'duplicates are charged once')
  const { chunks } = collect(throttle)
  throttle.write(Buffer.alloc(MiB))
  await waitFor(() => throttle.waiting, { what: 'the user bucket to run dry' })
  const piece = Math.floor(MiB / 10)
  t.ok(chunks.every(c => c.length === piece), 'pieces sized by the slower bucket')
  t.equal(throttle.bytes, 2 * piece, 'two pieces fit the user burst of 256 KiB, the third waits')
  t.equal(tunnel.tokens, 100 * MiB - 3 * piece, 'the tunnel bucket is charged for the passed and the waiting pieces')
  throttle.setBuckets([tunnel])
  await waitFor(() => throttle.bytes === MiB, { what: 'the rest once the user bucket is dropped' })
  t.equal(user.listenerCount, 0)
  t.equal(tunnel.tokens, 99 * MiB, 'the re-reserved piece is charged once')
  throttle.destroy()
})

t.test('works in a pipeline and ends cleanly', async t => {
  const bucket = new TokenBucket({ ratePerSecond: 50 * MiB, burst: MiB })
  let n = 0
  const source = Readable.from((function * () { for (let i = 0; i < 64; i++) yield Buffer.alloc(64 * 1024, i) })())
  const sink = new Writable({ write (c: Buffer, _e, cb) { n += c.length; cb() } })
  const throttle = new Throttle({ buckets: [bucket] })
  await withTimeout(pipeline(source, throttle, sink), { what: 'a 4 MiB pipeline at 50 MiB/s' })
  t.equal(n, 4 * MiB)
  t.equal(throttle.bytes, 4 * MiB)
  t.equal(bucket.listenerCount, 0)
})

t.test('invalid maxWaitMs is refused', async t => {
  t.throws(() => new Throttle({ buckets: [], maxWaitMs: 0 }), RangeError)
})
