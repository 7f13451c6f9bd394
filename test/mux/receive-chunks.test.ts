// How received Data reaches the reader: the pieces of one frame that arrive in one turn of the
// event loop (a TLS socket hands over one read 16 KiB at a time) become one chunk, so a proxy
// writes the local socket once per frame; a large frame is handed over in chunks of at least
// 64 KiB; pieces are never held past their turn (a slow link's first bytes are not delayed
// until the frame completes); and bytes not yet read are never granted back as credit.
// Each case runs twice: on a socket's 'data' events, and on a ChunkSource whose read buffer is
// reused (and scribbled over here after every chunk, so a kept view would show).
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { decodeHeader, encodeHeader, Flag, FrameType, HEADER_LENGTH, type FrameHeader } from '../../src/mux/frame.js'
import type { ChunkSource } from '../../src/mux/chunk-source.js'
import { Session } from '../../src/mux/session.js'
import type { MuxStream } from '../../src/mux/stream.js'
import { duplexPair, type PipeEnd } from '../helpers/duplex-pair.js'
import { nextEvent, turns, waitFor } from '../helpers/wait.js'

const KiB = 1024

type Input = 'data events' | 'a reused read buffer'

/** Delivers the pipe end's bytes through one scratch buffer, overwritten after each delivery. */
function reusedBuffer (end: PipeEnd): ChunkSource {
  const scratch = Buffer.alloc(64 * KiB)
  let onChunk: ((chunk: Buffer) => void) | undefined
  end.on('data', (c: Buffer) => {
    for (let off = 0; off < c.length; off += scratch.length) {
      const n = c.copy(scratch, 0, off)
      onChunk?.(scratch.subarray(0, n))
      scratch.fill(0xee)
    }
  })
  return { attach: fn => { onChunk = fn }, detach: () => { onChunk = undefined } }
}

/** A server Session whose peer is a raw pipe end; the raw side opens stream 1 and sends Data. */
async function opened (t: Test, input: Input): Promise<{ raw: PipeEnd, stream: MuxStream, sent: FrameHeader[] }> {
  const [a, raw] = duplexPair({ highWaterMark: 1024 * KiB })
  const session = new Session(a, { client: false, windowAutoTuning: false, ...(input === 'a reused read buffer' ? { input: reusedBuffer(a) } : {}) })
  t.teardown(() => { session.destroy(); raw.destroy() })
  const sent: FrameHeader[] = []
  let buf = Buffer.alloc(0)
  raw.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c])
    while (buf.length >= HEADER_LENGTH) {
      const h = decodeHeader(buf)
      if (h.type === FrameType.Data) throw new Error('the session sent Data; this test never writes to the stream')
      sent.push(h)
      buf = buf.subarray(HEADER_LENGTH)
    }
  })
  const accepted = nextEvent<[MuxStream]>(session, 'stream', { what: 'stream 1' })
  raw.write(encodeHeader({ type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 1, length: 0 }))
  const [stream] = await accepted
  return { raw, stream, sent }
}

/** Writes `bytes` to the raw end in pieces of `piece` bytes, all in this turn (one socket read's worth). */
function writeInPieces (raw: PipeEnd, bytes: Buffer, piece: number): void {
  for (let off = 0; off < bytes.length; off += piece) raw.write(bytes.subarray(off, off + piece))
}

const dataFrame = (payload: Buffer): Buffer => Buffer.concat([encodeHeader({ type: FrameType.Data, flags: 0, streamId: 1, length: payload.length }), payload])

for (const input of ['data events', 'a reused read buffer'] as const) {
  t.test(`${input}: a frame whose 16 KiB pieces arrive in one turn reaches the reader as one chunk`, async t => {
    const { raw, stream } = await opened(t, input)
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    const payload = randomBytes(60 * KiB)
    writeInPieces(raw, dataFrame(payload), 16 * KiB)
    await waitFor(() => chunks.length > 0, { what: 'the frame' })
    await turns(3)
    t.equal(chunks.length, 1, 'one chunk for one frame')
    t.ok(chunks[0]!.equals(payload), 'the whole payload, intact')
  })

  t.test(`${input}: a small frame in one piece is passed on as is`, async t => {
    const { raw, stream } = await opened(t, input)
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    raw.write(dataFrame(Buffer.from('ping')))
    await waitFor(() => chunks.length === 1, { what: 'the small frame' })
    t.equal(chunks[0]!.toString(), 'ping')
  })

  t.test(`${input}: many small frames in one read reach the reader whole, in order, after the read buffer is reused`, async t => {
    const { raw, stream } = await opened(t, input)
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    const payloads = Array.from({ length: 40 }, (_, i) => randomBytes(1 + i * 37))
    // One frame split across two reads first: the small frames after it must not overtake its tail.
    const split = dataFrame(randomBytes(3000))
    raw.write(split.subarray(0, 1000))
    await turns(2)
    raw.write(Buffer.concat([split.subarray(1000), ...payloads.map(dataFrame)]))
    const expected = Buffer.concat([split.subarray(HEADER_LENGTH), ...payloads])
    await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) === expected.length, { what: 'every payload' })
    t.ok(Buffer.concat(chunks).equals(expected), 'the bytes, in order')
    t.ok(chunks.length >= payloads.length + 1, 'each small frame is its own chunk')
  })

  t.test(`${input}: a frame larger than 64 KiB is handed over in chunks of at least 64 KiB but the last`, async t => {
    const { raw, stream } = await opened(t, input)
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    const payload = randomBytes(200 * KiB)
    writeInPieces(raw, dataFrame(payload), 16 * KiB)
    await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) === payload.length, { what: 'all 200 KiB' })
    t.ok(Buffer.concat(chunks).equals(payload), 'intact, in order')
    t.ok(chunks.length >= 3, `delivered in ${chunks.length} chunks, not as one 200 KiB copy`)
    for (const c of chunks.slice(0, -1)) t.ok(c.length >= 64 * KiB, `chunk of ${c.length} bytes`)
  })

  t.test(`${input}: pieces of a frame that trickle in over several turns reach the reader in their own turn`, async t => {
    const { raw, stream } = await opened(t, input)
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    const payload = randomBytes(48 * KiB)
    const frame = dataFrame(payload)
    raw.write(frame.subarray(0, 16 * KiB))
    await waitFor(() => chunks.length === 1, { what: 'the first piece, before the rest of the frame was sent' })
    t.equal(chunks[0]!.length, 16 * KiB - HEADER_LENGTH, 'the first piece as it came')
    raw.write(frame.subarray(16 * KiB))
    await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) === payload.length, { what: 'the rest' })
    t.ok(Buffer.concat(chunks).equals(payload), 'intact, in order')
  })

  t.test(`${input}: bytes of a frame still arriving are not granted back as credit`, async t => {
    const { raw, stream, sent } = await opened(t, input)
    const payload = randomBytes(250 * KiB) // fits the initial 256 KiB window
    const frame = dataFrame(payload)
    const heldBack = 50 * KiB
    // All but the last 50 KiB arrive while nobody reads; the window shrank by the whole frame
    // at its header, so the peer has 6 KiB of credit left.
    writeInPieces(raw, frame.subarray(0, frame.length - heldBack), 16 * KiB)
    await waitFor(() => stream.readableLength === payload.length - heldBack, { what: 'what was sent to be buffered' })
    // Now the reader takes what arrived, 16 KiB at a time. After each read, what the peer may
    // still send plus what the stream has not delivered (buffered, or still arriving) must fit
    // the window: credit for the 50 KiB still to come would let the peer overrun it.
    let consumed = 0
    const violations: string[] = []
    while (consumed < payload.length - heldBack) {
      const c = stream.read(Math.min(16 * KiB, payload.length - heldBack - consumed)) as Buffer | null
      if (c === null) { await turns(1); continue }
      consumed += c.length
      const undelivered = payload.length - consumed
      if (stream.recvWindow + undelivered > stream.recvWindowMax) violations.push(`credit ${stream.recvWindow} + undelivered ${undelivered} > ${stream.recvWindowMax}`)
    }
    t.same(violations, [], 'the window held after every read')
    await turns(5) // lazy window updates go out on setImmediate
    const granted = sent.filter(h => h.type === FrameType.WindowUpdate && h.streamId === 1).reduce((n, h) => n + h.length, 0)
    t.ok(granted > 0 && granted <= consumed, `credit for what was read went back, no more (${granted} of ${consumed} bytes)`)
    // The 50 KiB still to come are not consumed: counting them would let the peer overrun the window.
    t.ok(stream.recvWindow + heldBack <= stream.recvWindowMax, `credit left (${stream.recvWindow}) plus bytes still arriving (${heldBack}) fit the window (${stream.recvWindowMax})`)
    stream.on('data', (c: Buffer) => { consumed += c.length })
    raw.write(frame.subarray(frame.length - heldBack))
    await waitFor(() => consumed === payload.length, { what: 'the rest of the frame' })
    t.pass('the rest arrived')
  })
}
