// FrameDecoder: the spec vectors under every chunking, zero-copy payloads, header-time limits,
// sticky errors, and seeded garbage that may only end in a framing error.
import t from 'tap'
import {
  FrameTooLargeError, InvalidFrameTypeError, InvalidVersionError, MportError, RecvWindowExceededError,
} from '../../src/errors.js'
import { FrameDecoder, type FrameSink } from '../../src/mux/decoder.js'
import { encodeHeader, Flag, FrameType, GoAwayCode, MAX_UINT32, type FrameHeader } from '../../src/mux/frame.js'
import {
  loadFrameVectors, mulberry32, naiveParse, randInt, toHex, type NaiveFrameHeader, type NaiveParse,
} from '../helpers/naive-codec.js'

const MAX_FRAME = 16 * 1024 * 1024
const vectors = await loadFrameVectors()

interface Recorded { header: FrameHeader, payload?: Buffer }

/** Records what the decoder delivers and notes every breach of the FrameSink contract. */
class Recorder implements FrameSink {
  readonly frames: Recorded[] = []
  readonly pieces: Buffer[] = []
  readonly violations: string[] = []
  current: { header: FrameHeader, pieces: Buffer[], got: number } | undefined
  /** Called from onDataHeader; may throw to refuse the frame (as a stream's window check does). */
  onHeader?: (h: FrameHeader) => void
  /** Called from onFrame; may throw. */
  onControl?: (h: FrameHeader) => void

  onFrame (h: FrameHeader): void {
    if (this.current !== undefined) this.violations.push('onFrame inside a Data frame')
    if (h.type === FrameType.Data) this.violations.push('Data frame passed to onFrame')
    this.onControl?.(h)
    this.frames.push({ header: h })
  }

  onDataHeader (h: FrameHeader): void {
    if (this.current !== undefined) this.violations.push('onDataHeader inside a Data frame')
    if (h.type !== FrameType.Data) this.violations.push('non-Data frame passed to onDataHeader')
    this.onHeader?.(h)
    this.current = { header: h, pieces: [], got: 0 }
  }

  onDataPayload (h: FrameHeader, piece: Buffer): void {
    const c = this.current
    if (c === undefined || c.header !== h) return void this.violations.push('payload without its header')
    if (piece.length === 0) this.violations.push('empty payload piece')
    c.got += piece.length
    if (c.got > h.length) this.violations.push(`payload overruns: ${c.got} > ${h.length}`)
    c.pieces.push(piece)
    this.pieces.push(piece)
  }

  onDataEnd (h: FrameHeader): void {
    const c = this.current
    if (c === undefined || c.header !== h) return void this.violations.push('onDataEnd without its header')
    if (c.got !== h.length) this.violations.push(`onDataEnd after ${c.got} of ${h.length} bytes`)
    this.current = undefined
    this.frames.push({ header: h, payload: Buffer.concat(c.pieces) })
  }
}

/** First difference between what a Recorder saw and what the naive parser expects, or undefined. */
function compare (rec: Recorder, want: NaiveParse): string | undefined {
  if (rec.violations.length > 0) return `sink contract broken: ${rec.violations.join('; ')}`
  if (rec.frames.length !== want.frames.length) return `${rec.frames.length} frames delivered, ${want.frames.length} expected`
  for (let i = 0; i < want.frames.length; i++) {
    const got = rec.frames[i]!
    const exp = want.frames[i]!
    if (!sameHeader(got.header, exp.header)) return `frame ${i}: ${JSON.stringify(got.header)} != ${JSON.stringify(exp.header)}`
    const gotHex = got.payload === undefined ? undefined : got.payload.toString('hex')
    const expHex = exp.payload === undefined ? undefined : toHex(exp.payload)
    if (gotHex !== expHex) return `frame ${i}: payload ${gotHex} != ${expHex}`
  }
  const partial = rec.current
  if ((partial === undefined) !== (want.partial === undefined)) return `partial frame: ${partial !== undefined} vs ${want.partial !== undefined}`
  if (partial !== undefined && want.partial !== undefined) {
    if (!sameHeader(partial.header, want.partial.header)) return 'partial frame header differs'
    if (Buffer.concat(partial.pieces).toString('hex') !== toHex(want.partial.received)) return 'partial payload differs'
  }
  return undefined
}

function sameHeader (a: FrameHeader, b: NaiveFrameHeader): boolean {
  return a.type === b.type && a.flags === b.flags && a.streamId === b.streamId && a.length === b.length
}

/** Header plus a recognisable payload for Data frames. */
function frameBytes (h: NaiveFrameHeader, seed: number): Buffer {
  const header = encodeHeader(h as FrameHeader)
  if (h.type !== FrameType.Data) return header
  const payload = Buffer.alloc(h.length)
  for (let i = 0; i < payload.length; i++) payload[i] = (seed * 13 + i * 7 + 1) & 0xff
  return Buffer.concat([header, payload])
}

/** Feeds `chunks` and returns the error push threw, if any. */
function feed (d: FrameDecoder, chunks: Buffer[]): unknown {
  for (const c of chunks) {
    try {
      d.push(c)
    } catch (err) {
      return err
    }
  }
  return undefined
}

/** Splits `bytes` at random points; half the chunks are copies so they do not share memory. */
function chaoticChunks (rand: () => number, bytes: Buffer, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = []
  for (let off = 0; off < bytes.length;) {
    const n = Math.min(randInt(rand, 1, maxChunk), bytes.length - off)
    const view = bytes.subarray(off, off + n)
    chunks.push(rand() < 0.5 ? Buffer.from(view) : view)
    off += n
  }
  if (rand() < 0.2) chunks.splice(randInt(rand, 0, chunks.length), 0, Buffer.alloc(0)) // empty chunks are harmless
  return chunks
}

const stream = Buffer.concat(vectors.valid.map((v, i) => frameBytes(v.header, i)))
const expected = naiveParse(stream, MAX_FRAME)

t.test('the naive parser reads the vector stream back as the vectors', async t => {
  t.equal(expected.error, undefined)
  t.equal(expected.leftover, 0)
  t.equal(expected.partial, undefined)
  t.equal(expected.frames.length, vectors.valid.length)
  t.ok(vectors.valid.some(v => v.header.type === FrameType.Data && v.header.length > 0), 'some vectors carry payload')
})

t.test('all valid vectors in one chunk', async t => {
  const rec = new Recorder()
  const d = new FrameDecoder(rec, MAX_FRAME)
  t.equal(feed(d, [stream]), undefined)
  t.equal(compare(rec, expected), undefined)
  t.equal(d.bufferedBytes, 0)
})

t.test('all valid vectors split in two at every byte offset', async t => {
  let ok = 0
  for (let cut = 0; cut <= stream.length; cut++) {
    const rec = new Recorder()
    const d = new FrameDecoder(rec, MAX_FRAME)
    const err = feed(d, [stream.subarray(0, cut), stream.subarray(cut)])
    const diff = err === undefined ? compare(rec, expected) : `threw ${String(err)}`
    if (diff !== undefined) {
      t.fail(`split at ${cut}: ${diff}`)
      break
    }
    ok++
  }
  t.equal(ok, stream.length + 1, `all ${stream.length + 1} splits decode identically`)
})

t.test('all valid vectors, one byte at a time', async t => {
  const rec = new Recorder()
  const d = new FrameDecoder(rec, MAX_FRAME)
  const chunks: Buffer[] = []
  for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1))
  let maxBuffered = 0
  for (const c of chunks) {
    d.push(c)
    maxBuffered = Math.max(maxBuffered, d.bufferedBytes)
  }
  t.equal(compare(rec, expected), undefined)
  t.equal(maxBuffered, 11, 'a partial header holds at most 11 bytes')
})

t.test('all valid vectors, chunked chaotically (seeded)', async t => {
  const rand = mulberry32(0xc4a05)
  const rounds = 400
  let ok = 0
  for (let round = 0; round < rounds; round++) {
    const maxChunk = [1, 2, 5, 11, 12, 13, 64, 512][round % 8]!
    // Repeat the stream a few times so frames also straddle the seams between copies.
    const copies = randInt(rand, 1, 3)
    const bytes = Buffer.concat(Array.from({ length: copies }, () => stream))
    const want = naiveParse(bytes, MAX_FRAME)
    const rec = new Recorder()
    const d = new FrameDecoder(rec, MAX_FRAME)
    const err = feed(d, chaoticChunks(rand, bytes, maxChunk))
    const diff = err === undefined ? compare(rec, want) : `threw ${String(err)}`
    if (diff !== undefined) {
      t.fail(`round ${round} (max chunk ${maxChunk}): ${diff}`)
      break
    }
    ok++
  }
  t.equal(ok, rounds, `${rounds} chaotic chunkings decode identically`)
})

t.test('payload pieces are views of the pushed chunks, not copies', async t => {
  const ping = encodeHeader({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 1 })
  const data = frameBytes({ type: FrameType.Data, flags: 0, streamId: 1, length: 100 }, 3)
  // Buffer.alloc never uses the shared pool, so the chunk owns its ArrayBuffer.
  const chunk = Buffer.alloc(ping.length + data.length)
  ping.copy(chunk, 0)
  data.copy(chunk, ping.length)
  const rec = new Recorder()
  new FrameDecoder(rec, MAX_FRAME).push(chunk)
  t.equal(rec.pieces.length, 1, 'a frame inside one chunk arrives in one piece')
  const piece = rec.pieces[0]!
  t.equal(piece.buffer, chunk.buffer, 'piece.buffer === chunk.buffer')
  t.equal(piece.byteOffset, chunk.byteOffset + ping.length + 12, 'the view starts right after the header')
  t.equal(piece.length, 100)

  // Payload split across chunks: each piece views its own chunk.
  const rec2 = new Recorder()
  const d = new FrameDecoder(rec2, MAX_FRAME)
  const a = Buffer.from(data.subarray(0, 50))
  const b = Buffer.from(data.subarray(50))
  d.push(a)
  d.push(b)
  t.equal(rec2.pieces.length, 2)
  t.equal(rec2.pieces[0]!.buffer, a.buffer)
  t.equal(rec2.pieces[1]!.buffer, b.buffer)
  t.equal(rec2.pieces[1], b, 'a chunk that is all payload is passed as is')
  t.equal(compare(rec2, naiveParse(data)), undefined)
})

t.test('a Data header over maxFrameSize is refused before any payload', async t => {
  const tooLarge = vectors.invalid.filter(v => v.code === 'MPORT_ERR_FRAME_TOO_LARGE')
  t.ok(tooLarge.length > 0, 'the vector file has FRAME_TOO_LARGE cases')
  const ping = encodeHeader({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 9 })
  for (const v of tooLarge) {
    const header = Buffer.from(v.hex, 'hex')
    const payload = Buffer.alloc(300, 0xab)
    const all = Buffer.concat([ping, header, payload])
    // Cut anywhere up to the end of the bad header, then deliver the rest (with payload) at once.
    for (let cut = 0; cut <= ping.length + header.length; cut++) {
      const rec = new Recorder()
      const d = new FrameDecoder(rec, v.maxFrameSize!)
      const err = feed(d, [all.subarray(0, cut), all.subarray(cut)])
      const where = `${v.name}, cut at ${cut}`
      if (!(err instanceof FrameTooLargeError)) {
        t.fail(`${where}: expected FrameTooLargeError, got ${String(err)}`)
        break
      }
      t.match(err, { code: v.code, length: v.header!.length, limit: v.maxFrameSize, goAway: GoAwayCode.ProtocolError }, where)
      t.equal(rec.frames.length, 1, `${where}: the ping before it was delivered`)
      t.equal(rec.current, undefined, `${where}: onDataHeader was never called`)
      t.equal(rec.pieces.length, 0, `${where}: no payload piece delivered`)
      t.ok(d.bufferedBytes <= 11, `${where}: no payload bytes held (bufferedBytes ${d.bufferedBytes})`)
    }
  }
})

t.test('maxFrameSize is inclusive and applies to Data only', async t => {
  const rec = new Recorder()
  const d = new FrameDecoder(rec, 16)
  d.push(frameBytes({ type: FrameType.Data, flags: 0, streamId: 1, length: 16 }, 1))
  d.push(encodeHeader({ type: FrameType.WindowUpdate, flags: 0, streamId: 1, length: MAX_UINT32 }))
  d.push(encodeHeader({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: MAX_UINT32 }))
  d.push(encodeHeader({ type: FrameType.GoAway, flags: 0, streamId: 0, length: MAX_UINT32 }))
  t.equal(rec.frames.length, 4, 'a 16-byte Data frame and huge control lengths are fine')
  t.throws(() => d.push(encodeHeader({ type: FrameType.Data, flags: 0, streamId: 1, length: 17 })),
    { code: 'MPORT_ERR_FRAME_TOO_LARGE', length: 17, limit: 16, message: 'frame length 17 exceeds the limit of 16 bytes' })
})

t.test('invalid header vectors end decoding with their code', async t => {
  for (const v of vectors.invalid) {
    const rec = new Recorder()
    const d = new FrameDecoder(rec, v.maxFrameSize ?? MAX_FRAME)
    const bytes = Buffer.concat([stream, Buffer.from(v.hex, 'hex'), stream])
    const err = feed(d, chaoticChunks(mulberry32(v.name.length), bytes, 7))
    t.match(err, { code: v.code }, v.name)
    t.equal(compare(rec, expected), undefined, `${v.name}: everything before the bad header was delivered, nothing after`)
  }
})

t.test('a sink that refuses a Data header stops delivery', async t => {
  const before = encodeHeader({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 1 })
  const refused = frameBytes({ type: FrameType.Data, flags: 0, streamId: 5, length: 40 }, 5)
  const after = Buffer.concat([
    encodeHeader({ type: FrameType.Ping, flags: Flag.ACK, streamId: 0, length: 2 }),
    frameBytes({ type: FrameType.Data, flags: 0, streamId: 1, length: 3 }, 1),
  ])
  const all = Buffer.concat([before, refused, after])
  for (let cut = 0; cut <= all.length; cut++) {
    const rec = new Recorder()
    let refusal: RecvWindowExceededError | undefined
    rec.onHeader = h => {
      if (h.streamId === 5) throw (refusal = new RecvWindowExceededError(5, h.length, 10))
    }
    const d = new FrameDecoder(rec, MAX_FRAME)
    const err = feed(d, [all.subarray(0, cut), all.subarray(cut)])
    const where = `cut at ${cut}`
    if (err !== refusal || refusal === undefined) {
      t.fail(`${where}: push should throw the sink's own error, got ${String(err)}`)
      break
    }
    t.equal(rec.frames.length, 1, `${where}: only the frame before was delivered`)
    t.equal(rec.pieces.length, 0, `${where}: no payload of the refused frame`)
    t.equal(d.bufferedBytes, 0, `${where}: nothing buffered`)
    // The decoder stays failed, whatever comes next.
    for (const next of [Buffer.alloc(0), after, Buffer.from('00', 'hex')]) {
      try {
        d.push(next)
        t.fail(`${where}: push after an error must throw`)
      } catch (e) {
        t.equal(e, refusal, `${where}: push rethrows the same error`)
      }
    }
    t.equal(rec.frames.length, 1, `${where}: still nothing more delivered`)
  }
})

t.test('a sink that throws on a control frame stops delivery, and the error sticks', async t => {
  const rec = new Recorder()
  const boom = new MportError('MPORT_ERR_PING_FLOOD', 'too many pings')
  let seen = 0
  rec.onControl = () => { if (++seen === 2) throw boom }
  const d = new FrameDecoder(rec, MAX_FRAME)
  const ping = encodeHeader({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 1 })
  t.throws(() => d.push(Buffer.concat([ping, ping, ping, ping])), boom)
  t.equal(rec.frames.length, 1)
  t.throws(() => d.push(ping), boom, 'push rethrows')
  t.equal(seen, 2, 'the sink is not called again')

  // A framing error sticks too.
  const d2 = new FrameDecoder(new Recorder(), MAX_FRAME)
  let first: unknown
  try { d2.push(Buffer.from('010000000000000100000000', 'hex')) } catch (e) { first = e }
  t.type(first, InvalidVersionError)
  t.throws(() => d2.push(ping), first as Error)
})

t.test('garbage input ends only in a framing error (seeded)', async t => {
  const rand = mulberry32(0x9a4ba9e)
  const rounds = 3000
  const seenCodes = new Map<string, number>()
  let ok = 0
  for (let round = 0; round < rounds; round++) {
    let bytes: Buffer
    const mode = round % 3
    if (mode === 0) {
      // Pure noise.
      bytes = Buffer.alloc(randInt(rand, 1, 160))
      for (let i = 0; i < bytes.length; i++) bytes[i] = randInt(rand, 0, 255)
    } else if (mode === 1) {
      // Noise that looks like headers: version 0 and a small type, so parsing goes deeper.
      bytes = Buffer.alloc(randInt(rand, 12, 240))
      for (let i = 0; i < bytes.length; i++) bytes[i] = randInt(rand, 0, 255)
      for (let off = 0; off + 12 <= bytes.length; off += randInt(rand, 12, 40)) {
        bytes[off] = rand() < 0.95 ? 0 : bytes[off]!
        bytes[off + 1] = randInt(rand, 0, 4)
        if (rand() < 0.7) bytes.writeUInt32BE(randInt(rand, 0, 48), off + 8)
      }
    } else {
      // The valid stream with a few bytes flipped.
      bytes = Buffer.from(stream.subarray(0, randInt(rand, 1, stream.length)))
      for (let k = randInt(rand, 1, 4); k > 0; k--) bytes[randInt(rand, 0, bytes.length - 1)] = randInt(rand, 0, 255)
    }
    const maxFrameSize = [0, 16, 1024, MAX_FRAME][randInt(rand, 0, 3)]!
    const want = naiveParse(bytes, maxFrameSize)
    const rec = new Recorder()
    const d = new FrameDecoder(rec, maxFrameSize)
    const err = feed(d, chaoticChunks(rand, bytes, randInt(rand, 1, 32)))
    let diff: string | undefined
    if (err !== undefined && !(err instanceof InvalidVersionError || err instanceof InvalidFrameTypeError || err instanceof FrameTooLargeError)) {
      diff = `unexpected error ${(err as Error).name}: ${(err as Error).message}`
    } else if ((err as MportError | undefined)?.code !== want.error) {
      diff = `error ${(err as MportError | undefined)?.code ?? 'none'}, naive parser says ${want.error ?? 'none'}`
    } else {
      diff = compare(rec, want)
    }
    if (diff !== undefined) {
      t.fail(`round ${round}, input ${bytes.toString('hex')}, maxFrameSize ${maxFrameSize}: ${diff}`)
      break
    }
    const key = want.error ?? 'none'
    seenCodes.set(key, (seenCodes.get(key) ?? 0) + 1)
    ok++
  }
  t.equal(ok, rounds, `${rounds} garbage inputs agree with the naive parser`)
  for (const code of ['MPORT_ERR_INVALID_VERSION', 'MPORT_ERR_INVALID_FRAME_TYPE', 'MPORT_ERR_FRAME_TOO_LARGE', 'none']) {
    t.ok((seenCodes.get(code) ?? 0) > 0, `the inputs reach outcome ${code} (${seenCodes.get(code) ?? 0} times)`)
  }
})
