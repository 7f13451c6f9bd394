// Seeded fuzzing of Session input: random byte strings, structured random headers, and valid
// frame sequences mutated by bit flips, truncation, duplication, drops, swaps and splices, fed
// in random chunks to fresh Sessions over the in-memory pipe. Every session must either keep
// working (it still frames a newly opened stream) or end with an MportError whose code is in
// ErrorCodes; valid sequences must never end a session except by the peer's GoAway; no stream
// buffers more than its window; nothing escapes as an uncaught exception; the heap stays bounded.
//
// Bounded by count (INPUTS) and cut short after ~20 s of wall time on slow machines; timing is
// never asserted. Rerun a failure with MPORT_FUZZ_SEED=<seed printed in the output>.
import t from 'tap'
import { ErrorCodes, MportError, RemoteGoAwayError } from '../../src/errors.js'
import { decodeHeader, encodeHeader, Flag, FrameType, HEADER_LENGTH, type FrameHeader } from '../../src/mux/frame.js'
import { Session } from '../../src/mux/session.js'
import type { MuxStream } from '../../src/mux/stream.js'
import { duplexPair } from '../helpers/duplex-pair.js'
import { turns } from '../helpers/wait.js'

const INPUTS = 3000
const TIME_BOX_MS = 20_000
const HEAP_LIMIT = 512 * 1024 * 1024

const envSeed = Number.parseInt(process.env.MPORT_FUZZ_SEED ?? '', 10)
const SEED = Number.isInteger(envSeed) ? envSeed >>> 0 : (Math.random() * 0x1_0000_0000) >>> 0

const uncaught: unknown[] = []
process.on('uncaughtException', err => { uncaught.push(err) })
process.on('unhandledRejection', err => { uncaught.push(err) })

/** mulberry32: small, fast, good enough to drive a fuzzer, and reproducible from one 32-bit seed. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 0x1_0000_0000
  }
}

class Fuzz {
  constructor (readonly next: () => number) {}
  int (n: number): number { return Math.floor(this.next() * n) }
  chance (p: number): boolean { return this.next() < p }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)]! }
  bytes (n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = this.int(256)
    return b
  }
}

interface Plan {
  /** The session's role: the attacker opens ids of the other parity. */
  client: boolean
  /** Whole frames in order (a frame is a header plus its Data payload). */
  frames: Buffer[]
  /** False once any mutation touched the frames. */
  valid: boolean
  /** The valid sequence carries a GoAway with an error code: ending is then expected. */
  goAwayError: boolean
}

/** A valid frame sequence from the attacker's side: new streams, data, credit, FIN/RST, pings, GoAway. */
function validFrames (f: Fuzz, client: boolean, ownId: number): Plan {
  const frames: Buffer[] = []
  let nextId = client ? 2 : 1
  const open: number[] = [ownId]
  let goAwayError = false
  const n = 1 + f.int(20)
  for (let i = 0; i < n; i++) {
    const live = f.pick(open)
    const h = (type: FrameType, flags: number, streamId: number, length: number): Buffer => encodeHeader({ type, flags, streamId, length })
    switch (f.int(10)) {
      case 0: frames.push(h(FrameType.WindowUpdate, Flag.SYN, nextId, f.chance(0.5) ? 0 : f.int(1 << 20))); open.push(nextId); nextId += 2; break
      case 1: {
        const p = f.bytes(f.int(300))
        frames.push(Buffer.concat([h(FrameType.Data, Flag.SYN, nextId, p.length), p])); open.push(nextId); nextId += 2; break
      }
      case 2: case 3: {
        const p = f.bytes(f.int(300))
        frames.push(Buffer.concat([h(FrameType.Data, f.chance(0.1) ? Flag.FIN : 0, live, p.length), p])); break
      }
      case 4: frames.push(h(FrameType.WindowUpdate, f.chance(0.2) ? Flag.ACK : 0, live, f.int(1 << 20))); break
      case 5: frames.push(h(FrameType.WindowUpdate, f.pick([Flag.FIN, Flag.RST]), live, 0)); break
      case 6: frames.push(h(FrameType.Ping, f.pick([Flag.SYN, Flag.ACK]), 0, f.int(0x1_0000_0000))); break
      case 7: frames.push(h(FrameType.Data, 0, live, 0)); break
      case 8: {
        const code = f.chance(0.7) ? 0 : f.pick([1, 2, 7])
        if (code !== 0) goAwayError = true
        frames.push(h(FrameType.GoAway, 0, 0, code)); break
      }
      default: frames.push(h(FrameType.Data, Flag.ACK, live, 0)); break
    }
  }
  return { client, frames, valid: true, goAwayError }
}

/** Mutates a plan in place: the result is no longer a valid sequence. */
function mutate (f: Fuzz, plan: Plan): void {
  const frames = plan.frames
  const rounds = 1 + f.int(3)
  for (let r = 0; r < rounds; r++) {
    switch (f.int(7)) {
      case 0: { // bit flips
        const i = f.int(frames.length)
        const b = Buffer.from(frames[i]!)
        for (let k = 1 + f.int(4); k > 0; k--) { const at = f.int(b.length); b[at] = b[at]! ^ (1 << f.int(8)) }
        frames[i] = b
        break
      }
      case 1: { // truncation of one frame (the rest shifts into its place)
        const i = f.int(frames.length)
        frames[i] = frames[i]!.subarray(0, f.int(frames[i]!.length))
        break
      }
      case 2: { // duplication of a valid frame
        const i = f.int(frames.length)
        frames.splice(f.int(frames.length + 1), 0, frames[i]!)
        break
      }
      case 3: if (frames.length > 1) frames.splice(f.int(frames.length), 1); break // drop
      case 4: { // swap
        const i = f.int(frames.length)
        const j = f.int(frames.length)
        const x = frames[i]!
        frames[i] = frames[j]!
        frames[j] = x
        break
      }
      case 5: { // a flood: one valid frame repeated many times (pings, SYNs, data past the window)
        const i = f.int(frames.length)
        frames.splice(i, 0, ...Array.from({ length: 10 + f.int(1000) }, () => frames[i]!))
        break
      }
      default: frames.splice(f.int(frames.length + 1), 0, f.bytes(1 + f.int(24))) // splice in garbage
    }
  }
  plan.valid = false
}

/** Random bytes, or random headers with version 0 (so they get past the first check). */
function randomInput (f: Fuzz): Buffer {
  if (f.chance(0.5)) return f.bytes(f.int(2048))
  const parts: Buffer[] = []
  for (let n = 1 + f.int(10); n > 0; n--) {
    const h = f.bytes(HEADER_LENGTH)
    h[0] = 0
    h[1] = f.int(5)
    if (f.chance(0.7)) h.writeUInt32BE(f.int(1024), 8) // mostly modest lengths
    parts.push(h, f.bytes(f.int(64)))
  }
  return Buffer.concat(parts)
}

/** Splits into random chunks, keeping the order. */
function chunks (f: Fuzz, input: Buffer): Buffer[] {
  const out: Buffer[] = []
  let off = 0
  while (off < input.length) {
    const n = 1 + f.int(Math.min(input.length - off, f.chance(0.3) ? 16 : 4096))
    out.push(input.subarray(off, off + n))
    off += n
  }
  return out
}

/** Complete frames in what the session wrote (its output must always be well-formed). */
function outputFrames (bytes: Buffer): FrameHeader[] {
  const out: FrameHeader[] = []
  let off = 0
  while (bytes.length - off >= HEADER_LENGTH) {
    const h = decodeHeader(bytes, off)
    const body = h.type === FrameType.Data ? h.length : 0
    if (bytes.length - off - HEADER_LENGTH < body) break
    out.push(h)
    off += HEADER_LENGTH + body
  }
  return out
}

const knownCodes = new Set<string>(ErrorCodes)

t.test('fuzzed input: every session keeps working or ends with a typed MportError', async t => {
  t.comment(`fuzz seed ${SEED} (rerun with MPORT_FUZZ_SEED=${SEED})`)
  const started = Date.now()
  const failures: string[] = []
  const outcomes = new Map<string, number>()
  let maxHeap = 0
  let ran = 0

  for (let i = 0; i < INPUTS && Date.now() - started < TIME_BOX_MS; i++) {
    ran++
    const f = new Fuzz(rng((SEED + Math.imul(i, 0x9e3779b1)) >>> 0))
    const client = f.chance(0.5)
    const [a, raw] = duplexPair()
    const session = new Session(a, {
      client,
      keepAliveInterval: 0,
      windowAutoTuning: f.chance(0.5),
      maxFrameSize: f.pick([512, 64 * 1024, 16 * 1024 * 1024]),
      acceptBacklog: f.pick([2, 256]),
      maxPingsPerSecond: f.pick([5, 1000]),
    })
    const written: Buffer[] = []
    raw.on('data', (c: Buffer) => written.push(c))
    const streams: MuxStream[] = []
    const mode = f.int(3) // 0: no listener (backlog), 1: read everything, 2: echo
    if (mode > 0) {
      session.on('stream', s => {
        streams.push(s)
        s.on('error', () => {})
        if (mode === 1) s.resume()
        else s.pipe(s)
      })
    }
    const own = session.open() // a stream of the session's own, so input can address its id
    own.on('error', () => {})
    own.write('hello')
    streams.push(own)
    await turns(1)

    const kind = f.int(10)
    let plan: Plan | undefined
    let input: Buffer
    if (kind < 3) {
      input = randomInput(f)
    } else {
      plan = validFrames(f, client, own.id)
      if (kind < 9) mutate(f, plan)
      input = Buffer.concat(plan.frames)
    }
    const label = `#${i} (${kind < 3 ? 'random' : plan?.valid === true ? 'valid' : 'mutated'}, ${client ? 'client' : 'server'} session, ${input.length} bytes)`
    for (const piece of chunks(f, input)) raw.write(piece)
    await turns(2)

    for (const s of streams) {
      if (s.readableLength > s.recvWindowMax) failures.push(`${label}: stream ${s.id} buffers ${s.readableLength} > window ${s.recvWindowMax}`)
    }
    if (session.closed) {
      const err = session.error
      const code = err instanceof MportError ? err.code : `not an MportError: ${String(err)}`
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1)
      if (!(err instanceof MportError) || !knownCodes.has(err.code)) failures.push(`${label}: ended with ${String(err)}`)
      else if (err.code === 'MPORT_ERR_TRANSPORT') failures.push(`${label}: internal error: ${err.message}`) // the pipe never failed
      else if (plan?.valid === true && !(plan.goAwayError && err instanceof RemoteGoAwayError)) failures.push(`${label}: a valid sequence ended the session: ${err.message}`)
    } else {
      outcomes.set('alive', (outcomes.get('alive') ?? 0) + 1)
      // Still working: a stream opened now is framed on the wire, SYN first.
      try {
        const probe = session.open()
        probe.on('error', () => {})
        probe.write('probe')
        await turns(2)
        const syn = outputFrames(Buffer.concat(written)).some(h => h.streamId === probe.id && (h.flags & Flag.SYN) !== 0)
        if (!syn && !session.closed) failures.push(`${label}: a live session did not send the SYN of stream ${probe.id}`)
      } catch (err) {
        // A peer GoAway (code 0) or the stream limit legitimately refuses new streams.
        if (!(err instanceof MportError) || !knownCodes.has(err.code)) failures.push(`${label}: open() threw ${String(err)}`)
      }
    }
    try {
      outputFrames(Buffer.concat(written))
    } catch (err) {
      failures.push(`${label}: the session wrote a malformed frame: ${(err as Error).message}`)
    }
    session.destroy()
    raw.destroy()
    if (i % 100 === 0) maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed)
  }
  await turns(2)
  maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed)

  t.comment(`ran ${ran} inputs in ${Date.now() - started} ms; outcomes: ${[...outcomes].map(([k, v]) => `${k}=${v}`).join(', ')}`)
  t.ok(ran >= Math.min(INPUTS, 200), `ran ${ran} inputs`)
  t.same(failures.slice(0, 10), [], `no failing input (${failures.length} in all; seed ${SEED})`)
  t.ok(maxHeap < HEAP_LIMIT, `heap stayed bounded (max ${(maxHeap / 1048576).toFixed(1)} MiB < 512 MiB)`)
  t.ok((outcomes.get('alive') ?? 0) > 0, 'some sessions survived their input')
  t.ok(outcomes.size > 3, 'inputs reached several different error paths')
  t.same(uncaught.map(e => String(e)), [], `no uncaught exceptions (seed ${SEED})`)
})
