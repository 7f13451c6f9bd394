/**
 * Bandwidth shaping through real loopback TCP, the way the relay uses it, on a manual clock:
 *
 *   sender ──tcp──▶ [accepted socket ─▶ Throttle ─▶ outbound socket] ──tcp──▶ sink
 *
 * The sender writes as fast as TCP lets it; the sink counts what arrives. Time is the bucket's
 * and the throttle's injected clock, moved by the test in 100 ms steps; after each step the real
 * sockets catch up until the throttle waits for tokens again. So the bytes that pass are the
 * tokens supplied (the burst plus rate × clock time) to within the one piece that waits, on any
 * machine: the assertions are on accounted bytes and bucket state, never on elapsed time.
 */
import t, { type Test } from 'tap'
import net from 'node:net'
import { Throttle } from '../../src/limits/throttle.js'
import { TokenBucket } from '../../src/limits/token-bucket.js'
import { listen } from '../helpers/ports.js'
import { ManualClock } from '../helpers/manual-clock.js'
import { waitFor } from '../helpers/wait.js'

const MiB = 1024 * 1024
const RATE = 2 * MiB
const BURST = RATE / 4
/** A piece is at most 100 ms worth of the rate (the throttle's default maxWaitMs). */
const PIECE = Math.floor(RATE / 10)
const STEP_MS = 100
/** Float slack for token arithmetic. */
const EPS = 1e-6

interface Path {
  throttle: Throttle
  /** Largest chunk the throttle was written, and its largest buffered lengths. */
  maxChunk: number
  maxWritableLength: number
  maxReadableLength: number
  received: () => number
  /** Records the throttle's buffered lengths (called on every chunk and every clock step). */
  probe: () => void
  close: () => void
}

/** A sender writing as fast as it can, through a Throttle on `buckets` and `clock`, to a counting sink. */
async function throttledPath (buckets: TokenBucket[], clock: ManualClock): Promise<Path> {
  const sockets: net.Socket[] = []
  let received = 0
  const sink = net.createServer(s => {
    sockets.push(s)
    s.on('data', (c: Buffer) => { received += c.length })
    s.on('error', () => {})
  })
  const sinkPort = await listen(sink)
  const throttle = new Throttle({ buckets, setTimer: clock.setTimer })
  const path: Path = {
    throttle, maxChunk: 0, maxWritableLength: 0, maxReadableLength: 0,
    received: () => received,
    probe: () => {
      path.maxWritableLength = Math.max(path.maxWritableLength, throttle.writableLength)
      path.maxReadableLength = Math.max(path.maxReadableLength, throttle.readableLength)
    },
    close: () => {
      sender.destroy()
      throttle.destroy()
      for (const s of sockets) s.destroy()
      relay.close()
      sink.close()
    },
  }
  const relay = net.createServer(visitor => {
    sockets.push(visitor)
    const out = net.connect(sinkPort, '127.0.0.1')
    sockets.push(out)
    visitor.on('data', (c: Buffer) => { path.maxChunk = Math.max(path.maxChunk, c.length); path.probe() })
    visitor.on('error', () => {})
    out.on('error', () => {})
    visitor.pipe(throttle).pipe(out)
  })
  const relayPort = await listen(relay)
  const sender = net.connect(relayPort, '127.0.0.1')
  sender.on('error', () => {})
  const block = Buffer.alloc(64 * 1024, 0x5a)
  const pump = (): void => {
    while (!sender.destroyed && sender.write(block));
  }
  sender.on('drain', pump)
  sender.on('connect', pump)
  return path
}

/** Waits (bounded, in real time) until every path's throttle waits for tokens: the sender is ahead. */
async function allWaiting (paths: Path[], clock: ManualClock): Promise<void> {
  await waitFor(() => paths.every(p => p.throttle.waiting), {
    what: `every throttle to wait for tokens at ${clock.now()} ms on the manual clock (passed ${paths.map(p => p.throttle.bytes).join(', ')} B)`,
  })
  for (const p of paths) p.probe()
}

/** Moves the clock `ms` forward in 100 ms steps, letting the sockets catch up after each. */
async function runClock (paths: Path[], clock: ManualClock, ms: number): Promise<void> {
  for (let done = 0; done < ms; done += STEP_MS) {
    clock.advance(STEP_MS)
    await allWaiting(paths, clock)
  }
}

/** Passed bytes are the supplied tokens, less at most the pieces still waiting (one per throttle). */
function passedSupply (t: Test, passed: number, supplied: number, waitingPieces: number, what: string): void {
  t.ok(passed <= supplied + EPS && passed > supplied - waitingPieces * PIECE,
    `${what}: ${passed} B passed for ${supplied.toFixed(0)} B of tokens supplied (at most ${waitingPieces} piece(s) of ${PIECE} B short)`)
}

t.test('one connection is shaped to the configured rate with bounded buffers', async t => {
  const clock = new ManualClock()
  const bucket = new TokenBucket({ ratePerSecond: RATE, burst: BURST, now: clock.now })
  const path = await throttledPath([bucket], clock)
  t.teardown(path.close)
  await allWaiting([path], clock)
  passedSupply(t, path.throttle.bytes, BURST, 1, 'with the clock standing still, the burst')
  t.equal(clock.pending, 1, 'one timer, armed for the waiting piece')
  await runClock([path], clock, 3000)
  const supplied = BURST + RATE * 3
  passedSupply(t, path.throttle.bytes, supplied, 1, 'after 3 s of clock at 2 MiB/s')
  const shaped = (path.throttle.bytes - BURST) / 3
  t.ok(Math.abs(shaped - RATE) <= PIECE / 3, `shaped rate ${(shaped / MiB).toFixed(3)} MiB/s for 2 MiB/s, within one piece over 3 s (${((PIECE / 3) / RATE * 100).toFixed(1)}%)`)
  const tokens = bucket.tokens
  t.ok(tokens < 0 && tokens > -PIECE, `the bucket is in debt for the one waiting piece only (${tokens.toFixed(0)} tokens)`)
  const waitingPiece = supplied - tokens - path.throttle.bytes
  t.ok(waitingPiece > 0 && waitingPiece <= Math.min(PIECE, path.maxChunk) + EPS,
    `the bucket was charged the passed bytes plus the waiting piece (${waitingPiece.toFixed(0)} B), nothing else`)
  await waitFor(() => path.received() === path.throttle.bytes, { what: `the sink to receive the ${path.throttle.bytes} B the throttle passed (has ${path.received()})` })
  t.equal(path.received(), path.throttle.bytes, 'the sink got exactly what the throttle passed')
  t.ok(path.maxWritableLength <= path.throttle.writableHighWaterMark + path.maxChunk,
    `writableLength stayed ≤ hwm + one chunk (max ${path.maxWritableLength}, chunk ${path.maxChunk})`)
  t.ok(path.maxReadableLength <= path.throttle.readableHighWaterMark + PIECE,
    `readableLength stayed ≤ hwm + one piece (max ${path.maxReadableLength})`)
})

t.test('two connections sharing one bucket share it, neither starved', async t => {
  const clock = new ManualClock()
  const bucket = new TokenBucket({ ratePerSecond: RATE, burst: BURST, now: clock.now })
  const a = await throttledPath([bucket], clock)
  const b = await throttledPath([bucket], clock)
  t.teardown(() => { a.close(); b.close() })
  await allWaiting([a, b], clock)
  const burst = [a.throttle.bytes, b.throttle.bytes]
  await runClock([a, b], clock, 3000)
  const supplied = BURST + RATE * 3
  passedSupply(t, a.throttle.bytes + b.throttle.bytes, supplied, 2, 'both together')
  const ra = (a.throttle.bytes - burst[0]!) / 3
  const rb = (b.throttle.bytes - burst[1]!) / 3
  // Turns alternate (reservations are served in order), but a turn carries what the socket had
  // buffered, up to one piece, and that depends on the kernel; so the split is held to "neither
  // is starved" rather than to exact halves.
  t.comment(`split after the burst: a ${(ra / MiB).toFixed(3)} MiB/s, b ${(rb / MiB).toFixed(3)} MiB/s of clock time`)
  for (const [name, r] of [['a', ra], ['b', rb]] as const) {
    t.ok(r >= RATE / 4, `connection ${name}: ${(r / MiB).toFixed(3)} MiB/s of clock time after the burst, at least a quarter of the shared 2 MiB/s`)
  }
  t.equal(bucket.listenerCount, 2, 'both throttles wait on the shared bucket')
})

t.test('a rate change mid-stream takes effect at once', async t => {
  const clock = new ManualClock()
  const bucket = new TokenBucket({ ratePerSecond: RATE, burst: BURST, now: clock.now })
  const path = await throttledPath([bucket], clock)
  t.teardown(path.close)
  await allWaiting([path], clock)
  await runClock([path], clock, 2000)
  const before = BURST + RATE * 2
  passedSupply(t, path.throttle.bytes, before, 1, 'before the change')
  const missing = -bucket.tokens
  bucket.setRate(RATE / 2)
  t.equal(clock.pending, 1, 'still one timer')
  t.equal(clock.nextDueIn, Math.max(1, Math.ceil(missing / (RATE / 2) * 1000)), 'the waiting piece was re-armed at the new rate at once')
  const atChange = path.throttle.bytes
  await runClock([path], clock, 2000)
  passedSupply(t, path.throttle.bytes, before + (RATE / 2) * 2, 1, 'after 2 s of clock at 1 MiB/s')
  const after = (path.throttle.bytes - atChange) / 2
  t.ok(Math.abs(after - RATE / 2) <= PIECE / 2, `after the change: ${(after / MiB).toFixed(3)} MiB/s for 1 MiB/s, within one piece over 2 s`)
})
