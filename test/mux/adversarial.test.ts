// A hostile peer: hand-crafted frames written into a raw pipe end connected to one Session.
// Fatal violations must end the session with the typed error (class and code) and send back
// GoAway(1), parsed from the bytes the session wrote; floods and late frames must be absorbed
// (RSTs, drops) with the session still answering pings. Meanwhile an independent session over
// real TCP keeps transferring checksummed data, and nothing escapes as an uncaught exception.
import { createHash, randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import {
  DuplicateStreamError, FrameTooLargeError, InvalidFrameTypeError, InvalidStreamIdError, InvalidVersionError,
  MportError, PingFloodError, ProtocolError, RecvWindowExceededError, WindowOverflowError,
} from '../../src/errors.js'
import type { MuxConfig } from '../../src/mux/config.js'
import {
  encodeHeader, Flag, FrameType, GoAwayCode, INITIAL_STREAM_WINDOW, MAX_UINT32,
} from '../../src/mux/frame.js'
import { Session } from '../../src/mux/session.js'
import type { MuxStream } from '../../src/mux/stream.js'
import { duplexPair, type PipeEnd } from '../helpers/duplex-pair.js'
import { FrameLog } from '../helpers/frame-log.js'
import { tcpTransport } from '../helpers/transports.js'
import { nextEvent, sleep, waitFor, withTimeout } from '../helpers/wait.js'

const KiB = 1024
const MiB = 1024 * KiB
const WAIT_MS = 20_000

// Anything that escapes (a stream 'error' without a listener, a throw in a callback) lands here.
const uncaught: unknown[] = []
process.on('uncaughtException', err => { uncaught.push(err) })
process.on('unhandledRejection', err => { uncaught.push(err) })

/** Frame builders: headers via the real encoder, bytes patched where the encoder cannot go. */
const wu = (streamId: number, flags = 0, length = 0): Buffer => encodeHeader({ type: FrameType.WindowUpdate, flags, streamId, length })
const data = (streamId: number, payload: Buffer, flags = 0): Buffer => Buffer.concat([encodeHeader({ type: FrameType.Data, flags, streamId, length: payload.length }), payload])
const dataHeader = (streamId: number, length: number, flags = 0): Buffer => encodeHeader({ type: FrameType.Data, flags, streamId, length })
const ping = (flags: number, value: number, streamId = 0): Buffer => encodeHeader({ type: FrameType.Ping, flags, streamId, length: value })

interface Target { session: Session, raw: PipeEnd, reply: FrameLog }

/** A Session (server role unless told otherwise) whose peer is a raw pipe end we write frames into. */
function target (t: Test, opts: Partial<MuxConfig> & { client?: boolean } = {}): Target {
  const { client = false, ...config } = opts
  const [a, raw] = duplexPair()
  const session = new Session(a, { client, windowAutoTuning: false, ...config })
  const reply = new FrameLog(raw)
  t.teardown(() => {
    session.destroy()
    raw.destroy()
  })
  return { session, raw, reply }
}

async function ended (session: Session, what: string): Promise<Error | undefined> {
  if (session.closed) return session.error
  const [err] = await nextEvent<[Error | undefined]>(session, 'close', { timeoutMs: WAIT_MS, what })
  return err
}

type ErrorClass = new (...args: never[]) => ProtocolError

/** Writes `frames`, then expects the session to end with `Class`/`code` and to have sent GoAway(1). */
async function expectFatal (t: Test, tg: Target, frames: Buffer[], Class: ErrorClass, code: string): Promise<void> {
  const escapedBefore = uncaught.length
  for (const f of frames) tg.raw.write(f)
  const err = await ended(tg.session, `the session to fail with ${code}`)
  await new Promise(resolve => setImmediate(resolve))
  t.equal(uncaught.length, escapedBefore, 'no stream error escaped (streams in the accept backlog included)')
  t.type(err, Class, `ends with ${Class.name}`)
  t.type(err, MportError)
  t.match(err, { code, goAway: GoAwayCode.ProtocolError })
  t.equal(tg.session.error, err, 'session.error holds it')
  await waitFor(() => tg.reply.ended, { what: 'the session to end the connection' })
  t.same(tg.reply.goAways(), [GoAwayCode.ProtocolError], 'exactly one GoAway, with code 1 (protocol error), went back')
  const last = tg.reply.frames.at(-1)
  t.same(last, { type: FrameType.GoAway, flags: 0, streamId: 0, length: 1 }, 'the GoAway is the last frame')
  t.throws(() => tg.session.open(), { code: 'MPORT_ERR_SESSION_CLOSED' })
}

/** Proves a session still works: a ping from the attacker gets its ACK. */
async function stillAlive (t: Test, tg: Target, value: number): Promise<void> {
  tg.raw.write(ping(Flag.SYN, value))
  await waitFor(() => tg.reply.pingAcks().includes(value), { what: `the ACK of ping ${value}` })
  t.equal(tg.session.closed, false, 'the session survives')
  t.same(tg.reply.goAways(), [], 'no GoAway was sent')
}

// ---- The bystander: an independent session over real TCP, transferring throughout ----

const bystander = (async () => {
  const conn = await tcpTransport().connect()
  const client = new Session(conn.client, { client: true })
  const server = new Session(conn.server, { client: false })
  server.on('stream', s => s.on('error', () => {}).pipe(s))
  return { conn, client, server }
})()
let attacksDone = false
let bystanderBytes = 0

const bystanderRun = (async () => {
  const { client } = await bystander
  const s = client.open()
  const sent = createHash('sha256')
  const got = createHash('sha256')
  let gotBytes = 0
  s.on('data', (c: Buffer) => { got.update(c); gotBytes += c.length; bystanderBytes = gotBytes })
  const done = new Promise<void>((resolve, reject) => { s.once('end', resolve); s.once('error', reject) })
  const chunk = randomBytes(64 * KiB)
  let sentBytes = 0
  // At least 2 MiB, then on until the attacks are over (bounded at 512 MiB).
  while ((!attacksDone || sentBytes < 2 * MiB) && sentBytes < 512 * MiB) {
    sent.update(chunk)
    sentBytes += chunk.length
    if (sentBytes % (256 * KiB) === 0) await sleep(2) // pace it: it shares two cores with the attacks
    if (!s.write(chunk)) await withTimeout(new Promise(resolve => s.once('drain', resolve)), { timeoutMs: WAIT_MS, what: 'bystander drain' })
  }
  s.end()
  await withTimeout(done, { timeoutMs: WAIT_MS, what: 'the bystander echo to finish' })
  return { sent: sent.digest('hex'), got: got.digest('hex'), sentBytes, gotBytes }
})()

t.test('fatal protocol violations end the session with GoAway(1)', async t => {
  const bytesBefore = bystanderBytes

  t.test('unknown version', async t => {
    const tg = target(t)
    const frame = wu(1, Flag.SYN)
    frame[0] = 1
    await expectFatal(t, tg, [frame], InvalidVersionError, 'MPORT_ERR_INVALID_VERSION')
  })

  t.test('unknown frame type', async t => {
    const tg = target(t)
    const frame = wu(1, Flag.SYN)
    frame[1] = 4
    await expectFatal(t, tg, [frame], InvalidFrameTypeError, 'MPORT_ERR_INVALID_FRAME_TYPE')
  })

  t.test('Data beyond the granted window (in one frame, checked at the header)', async t => {
    const tg = target(t)
    await expectFatal(t, tg, [wu(1, Flag.SYN), dataHeader(1, INITIAL_STREAM_WINDOW + 1), Buffer.alloc(100)],
      RecvWindowExceededError, 'MPORT_ERR_RECV_WINDOW_EXCEEDED')
  })

  t.test('Data beyond the granted window (a full window, then one byte more)', async t => {
    const tg = target(t) // nobody accepts the stream, so no credit is returned
    await expectFatal(t, tg, [data(1, randomBytes(INITIAL_STREAM_WINDOW), Flag.SYN), data(1, Buffer.from('!'))],
      RecvWindowExceededError, 'MPORT_ERR_RECV_WINDOW_EXCEEDED')
  })

  t.test('frame over maxFrameSize, refused before its payload', async t => {
    const tg = target(t, { maxFrameSize: 4096 })
    await expectFatal(t, tg, [dataHeader(1, 4097, Flag.SYN)], FrameTooLargeError, 'MPORT_ERR_FRAME_TOO_LARGE')
  })

  t.test('SYN with the wrong parity (even id from a client)', async t => {
    const tg = target(t)
    await expectFatal(t, tg, [wu(2, Flag.SYN)], InvalidStreamIdError, 'MPORT_ERR_INVALID_STREAM_ID')
  })

  t.test('SYN with the wrong parity (odd id from a server)', async t => {
    const tg = target(t, { client: true })
    await expectFatal(t, tg, [data(3, Buffer.from('x'), Flag.SYN)], InvalidStreamIdError, 'MPORT_ERR_INVALID_STREAM_ID')
  })

  t.test('Ping on a non-zero stream', async t => {
    const tg = target(t)
    await expectFatal(t, tg, [ping(Flag.SYN, 1, 1)], InvalidStreamIdError, 'MPORT_ERR_INVALID_STREAM_ID')
  })

  t.test('Data on stream 0', async t => {
    const tg = target(t)
    await expectFatal(t, tg, [data(0, Buffer.from('x'))], InvalidStreamIdError, 'MPORT_ERR_INVALID_STREAM_ID')
  })

  t.test('duplicate SYN for a live stream', async t => {
    const tg = target(t)
    await expectFatal(t, tg, [wu(1, Flag.SYN), data(1, Buffer.from('a')), wu(1, Flag.SYN)], DuplicateStreamError, 'MPORT_ERR_DUPLICATE_STREAM')
  })

  t.test('window update overflowing 2^32-1', async t => {
    const tg = target(t)
    await expectFatal(t, tg, [wu(1, Flag.SYN), wu(1, 0, MAX_UINT32 - INITIAL_STREAM_WINDOW), wu(1, 0, 1)], WindowOverflowError, 'MPORT_ERR_WINDOW_OVERFLOW')
  })

  t.test('ping flood', async t => {
    const tg = target(t, { maxPingsPerSecond: 10 })
    const flood = Buffer.concat(Array.from({ length: 50 }, (_, i) => ping(Flag.SYN, i + 1)))
    await expectFatal(t, tg, [flood], PingFloodError, 'MPORT_ERR_PING_FLOOD')
    t.ok(tg.reply.pingAcks().length <= 10, `at most the allowed 10 pings were answered (${tg.reply.pingAcks().length})`)
  })

  t.test('the bystander kept transferring', async t => {
    await waitFor(() => bystanderBytes > bytesBefore, { what: 'bystander progress during the attacks' })
    t.ok(bystanderBytes > bytesBefore, `bystander moved ${bystanderBytes - bytesBefore} bytes meanwhile`)
  })
  t.end()
})

t.test('absorbed abuse: the session survives', async t => {
  t.test('SYN flood over the accept backlog gets RSTs', async t => {
    const tg = target(t, { acceptBacklog: 8 })
    const ids = Array.from({ length: 100 }, (_, i) => 2 * i + 1)
    tg.raw.write(Buffer.concat(ids.map(id => wu(id, Flag.SYN))))
    await stillAlive(t, tg, 4242)
    t.same(tg.reply.resets(), ids.slice(8), 'every SYN beyond the 8-stream backlog is reset, in order')
    const accepted: MuxStream[] = []
    for (let i = 0; i < 8; i++) accepted.push(await withTimeout(tg.session.accept(), { what: `backlog stream ${i + 1}` }))
    t.same(accepted.map(s => s.id), ids.slice(0, 8), 'the first 8 wait to be accepted')
    for (const s of accepted) s.on('error', () => {})
    // Late data for refused ids is dropped, never a protocol error.
    tg.raw.write(Buffer.concat([data(ids[50]!, Buffer.from('late')), wu(ids[60]!, 0, 4096)]))
    await stillAlive(t, tg, 4243)
  })

  t.test('data for a stream the peer reset is dropped', async t => {
    const tg = target(t)
    tg.session.on('stream', s => s.on('error', () => {}))
    tg.raw.write(Buffer.concat([wu(1, Flag.SYN), wu(1, Flag.RST), data(1, randomBytes(1000)), wu(1, 0, 64)]))
    await stillAlive(t, tg, 1)
    t.equal(tg.session.streamCount, 0)
  })

  t.test('data for a stream we reset is dropped, even more than a window of it', async t => {
    const tg = target(t)
    const accepted = nextEvent<[MuxStream]>(tg.session, 'stream', { what: 'the stream' })
    tg.raw.write(data(1, Buffer.from('hi'), Flag.SYN))
    const [s] = await accepted
    s.destroy()
    await waitFor(() => tg.reply.resets().includes(1), { what: 'our RST on the wire' })
    tg.raw.write(Buffer.concat([data(1, randomBytes(INITIAL_STREAM_WINDOW)), data(1, randomBytes(1000), Flag.FIN)]))
    await stillAlive(t, tg, 2)
    t.equal(tg.session.streamCount, 0)
  })

  t.test('a stream reset before anyone accepted it does not crash the process', async t => {
    const tg = target(t) // no 'stream' listener: the stream waits in the backlog
    tg.raw.write(Buffer.concat([wu(1, Flag.SYN), data(1, Buffer.from('x')), wu(1, Flag.RST)]))
    await stillAlive(t, tg, 3)
    tg.raw.write(wu(3, Flag.SYN))
    const next = await withTimeout(tg.session.accept(), { what: 'the next stream' })
    t.equal(next.id, 3, 'the reset stream left the backlog')
    next.on('error', () => {})
  })

  t.test('Data for a stream id never opened is dropped and answered with RST', async t => {
    const tg = target(t)
    tg.raw.write(data(7, Buffer.from('hello')))
    await stillAlive(t, tg, 6)
    t.same(tg.reply.resets(), [7], 'RST for id 7, the only reset sent')
    t.match(tg.session.stats, { strayNeverOpened: 1, strayBytes: 5, strayResets: 1 })
  })

  t.test('WindowUpdate for an id of our own parity we never opened is dropped silently', async t => {
    const tg = target(t)
    tg.raw.write(wu(4, 0, 100))
    await stillAlive(t, tg, 7)
    t.same(tg.reply.resets(), [], 'no RST for a window update')
    t.match(tg.session.stats, { strayNeverOpened: 1, strayBytes: 0, strayResets: 0 })
  })

  t.test('stray ping ACKs and zero-length frames are harmless', async t => {
    const tg = target(t)
    tg.session.on('stream', s => s.on('error', () => {}).resume())
    tg.raw.write(Buffer.concat([ping(Flag.ACK, 999), dataHeader(1, 0, Flag.SYN), dataHeader(1, 0), wu(1, 0, 0)]))
    await stillAlive(t, tg, 5)
  })
  t.end()
})

t.test('the bystander session transferred correctly throughout', async t => {
  attacksDone = true
  const r = await bystanderRun
  t.equal(r.got, r.sent, `bystander echo of ${r.sentBytes} bytes intact (sha256)`)
  t.equal(r.gotBytes, r.sentBytes)
  const { conn, client, server } = await bystander
  t.equal(client.closed || server.closed, false, 'the bystander sessions are untouched')
  client.destroy()
  server.destroy()
  await conn.close()
})

t.test('no uncaught exceptions or unhandled rejections', async t => {
  await new Promise(resolve => setImmediate(resolve))
  t.same(uncaught.map(e => String(e)), [], 'nothing escaped')
})
