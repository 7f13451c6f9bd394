// How received Data reaches the reader: the pieces of one frame (a TLS socket hands them over
// 16 KiB at a time) become one chunk, so a proxy writes the local socket once per frame; a large
// frame is handed over in chunks of at least 64 KiB as it arrives; and bytes held while a frame
// is incomplete are never granted back to the sender as credit.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { decodeHeader, encodeHeader, Flag, FrameType, HEADER_LENGTH, type FrameHeader } from '../../src/mux/frame.js'
import { Session } from '../../src/mux/session.js'
import type { MuxStream } from '../../src/mux/stream.js'
import { duplexPair, type PipeEnd } from '../helpers/duplex-pair.js'
import { nextEvent, turns, waitFor } from '../helpers/wait.js'

const KiB = 1024

/** A server Session whose peer is a raw pipe end; the raw side opens stream 1 and sends Data. */
async function opened (t: Test): Promise<{ raw: PipeEnd, stream: MuxStream, sent: FrameHeader[] }> {
  const [a, raw] = duplexPair({ highWaterMark: 1024 * KiB })
  const session = new Session(a, { client: false, windowAutoTuning: false })
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

/** Writes `bytes` to the raw end in pieces of `piece` bytes, each in its own turn of the event loop. */
async function writeInPieces (raw: PipeEnd, bytes: Buffer, piece: number): Promise<void> {
  for (let off = 0; off < bytes.length; off += piece) {
    raw.write(bytes.subarray(off, off + piece))
    await turns(1)
  }
}

const dataFrame = (payload: Buffer): Buffer => Buffer.concat([encodeHeader({ type: FrameType.Data, flags: 0, streamId: 1, length: payload.length }), payload])

t.test('a frame that arrives in 16 KiB pieces reaches the reader as one chunk', async t => {
  const { raw, stream } = await opened(t)
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  const payload = randomBytes(60 * KiB)
  await writeInPieces(raw, dataFrame(payload), 16 * KiB)
  await waitFor(() => chunks.length > 0, { what: 'the frame' })
  await turns(3)
  t.equal(chunks.length, 1, 'one chunk for one frame')
  t.ok(chunks[0]!.equals(payload), 'the whole payload, intact')
})

t.test('a small frame in one piece is passed on as is', async t => {
  const { raw, stream } = await opened(t)
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  raw.write(dataFrame(Buffer.from('ping')))
  await waitFor(() => chunks.length === 1, { what: 'the small frame' })
  t.equal(chunks[0]!.toString(), 'ping')
})

t.test('a frame larger than 64 KiB is handed over as it arrives, in chunks of at least 64 KiB but the last', async t => {
  const { raw, stream } = await opened(t)
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  const payload = randomBytes(200 * KiB)
  await writeInPieces(raw, dataFrame(payload), 16 * KiB)
  await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) === payload.length, { what: 'all 200 KiB' })
  t.ok(Buffer.concat(chunks).equals(payload), 'intact, in order')
  t.ok(chunks.length >= 3, `delivered in ${chunks.length} chunks, not held to the end of the frame`)
  for (const c of chunks.slice(0, -1)) t.ok(c.length >= 64 * KiB, `chunk of ${c.length} bytes`)
})

t.test('bytes held while a frame is incomplete are not granted back as credit', async t => {
  const { raw, stream, sent } = await opened(t)
  let consumed = 0
  stream.on('data', (c: Buffer) => { consumed += c.length })
  const payload = randomBytes(250 * KiB) // fits the initial 256 KiB window
  const frame = dataFrame(payload)
  const heldBack = 50 * KiB
  // Everything but the last 50 KiB: two chunks (80 and 64 KiB) reach the reader, the ~56 KiB
  // after them are held until the frame completes or 64 KiB have gathered.
  await writeInPieces(raw, frame.subarray(0, frame.length - heldBack), 16 * KiB)
  await waitFor(() => consumed >= 140 * KiB, { what: 'the reader to consume two chunks' })
  await turns(5) // lazy window updates go out on setImmediate
  const granted = (): number => sent.filter(h => h.type === FrameType.WindowUpdate && h.streamId === 1).reduce((n, h) => n + h.length, 0)
  t.ok(granted() > 0, `credit for what was read went back (${granted()} bytes)`)
  // The peer's credit plus what the stream holds (buffered or gathered) stays within the
  // window exactly when the credit granted never exceeds what the reader consumed.
  t.ok(granted() <= consumed, `never more credit than the reader consumed (${granted()} ≤ ${consumed})`)
  raw.write(frame.subarray(frame.length - heldBack))
  await waitFor(() => consumed === payload.length, { what: 'the rest of the frame' })
  t.pass('the rest arrived')
})
