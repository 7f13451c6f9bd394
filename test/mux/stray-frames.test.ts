// Stray frames inside a busy session, over every transport of the matrix (pipe, tcp,
// tcp-reversed, tls, tls-reversed): while streams opened by both sides echo checksummed data,
// raw frames for closed, reset and never-opened ids are written into each side's socket (between
// the session's own frames: its writer hands the socket whole frames in one synchronous pass).
// Every stream must finish intact, both sessions must keep serving (new streams, pings), the
// counters must count, each never-opened Data frame must get its RST on the wire, and no
// GoAway may go either way.
import { createHash, randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import t, { type Test } from 'tap'
import { encodeHeader, Flag, FrameType } from '../../src/mux/frame.js'
import { Session } from '../../src/mux/session.js'
import type { MuxStream } from '../../src/mux/stream.js'
import type { StrayFrame } from '../../src/mux/stray.js'
import { FrameLog } from '../helpers/frame-log.js'
import { readAll } from '../helpers/read-all.js'
import { transports } from '../helpers/transports.js'
import { turns, waitFor, withTimeout } from '../helpers/wait.js'

const KiB = 1024
const MiB = 1024 * KiB
const WAIT_MS = 30_000
const BUSY_STREAMS = 3 // per side
const MIN_BYTES = 1 * MiB // per stream, and on until the strays are in
const MAX_BYTES = 128 * MiB

const wu = (streamId: number, flags = 0, length = 0): Buffer => encodeHeader({ type: FrameType.WindowUpdate, flags, streamId, length })
const data = (streamId: number, payload: Buffer, flags = 0): Buffer => Buffer.concat([encodeHeader({ type: FrameType.Data, flags, streamId, length: payload.length }), payload])

/** A stray frame to inject, and what its receiver must make of it. */
interface Stray { frame: Buffer, id: number, reason: StrayFrame['reason'], bytes: number, answered: boolean }
const stray = (reason: StrayFrame['reason'], frame: Buffer): Stray => {
  const type = frame.readUInt8(1)
  const flags = frame.readUInt16BE(2)
  const id = frame.readUInt32BE(4)
  const bytes = type === FrameType.Data ? frame.readUInt32BE(8) : 0
  return { frame, id, reason, bytes, answered: reason === 'never-opened' && type === FrameType.Data && (flags & Flag.RST) === 0 }
}

/** Echoes every stream the peer opens. */
function echo (s: MuxStream): void {
  s.on('error', () => {})
  s.pipe(s)
}

/** Opens a stream, sends `payload`, reads the echo to the end. */
async function roundTrip (opener: Session, payload: Buffer, what: string): Promise<Buffer> {
  const s = opener.open()
  const back = readAll(s, what, WAIT_MS)
  s.end(payload)
  return back
}

interface Busy { id: number, opener: string, gotBytes: () => number, done: Promise<{ sent: string, got: string, sentBytes: number, gotBytes: number }> }

/** A stream that sends random chunks until `stop()` says so and at least MIN_BYTES went, checksumming both ways. */
function busyStream (opener: Session, name: string, stop: () => boolean): Busy {
  const s = opener.open()
  const sent = createHash('sha256')
  const got = createHash('sha256')
  let gotBytes = 0
  s.on('data', (c: Buffer) => { got.update(c); gotBytes += c.length })
  const ended = new Promise<void>((resolve, reject) => { s.once('end', resolve); s.once('error', reject) })
  const done = (async () => {
    let sentBytes = 0
    while ((!stop() || sentBytes < MIN_BYTES) && sentBytes < MAX_BYTES) {
      const chunk = randomBytes(64 * KiB)
      sent.update(chunk)
      sentBytes += chunk.length
      if (!s.write(chunk)) await withTimeout(new Promise(resolve => s.once('drain', resolve)), { timeoutMs: WAIT_MS, what: `drain on ${name}` })
      // An in-memory pipe delivers in ticks: yield to the event loop so timers (and the test) run.
      if (sentBytes % (256 * KiB) === 0) await turns()
    }
    s.end()
    await withTimeout(ended, { timeoutMs: WAIT_MS, what: `the echo on ${name} to end` })
    return { sent: sent.digest('hex'), got: got.digest('hex'), sentBytes, gotBytes }
  })()
  return { id: s.id, opener: name, gotBytes: () => gotBytes, done }
}

const delta = (after: Session['stats'], before: Session['stats']): Session['stats'] => ({
  strayClosed: after.strayClosed - before.strayClosed,
  strayNeverOpened: after.strayNeverOpened - before.strayNeverOpened,
  strayBytes: after.strayBytes - before.strayBytes,
  strayResets: after.strayResets - before.strayResets,
})

for (const tr of transports) {
  t.test(tr.name, async (t: Test) => {
    const conn = await tr.connect()
    const client = new Session(conn.client, { client: true })
    const server = new Session(conn.server, { client: false })
    t.teardown(async () => {
      client.destroy()
      server.destroy()
      await conn.close()
    })
    // What each session received, read off its own socket: the peer's frames and ours.
    const intoServer = new FrameLog(conn.server)
    const intoClient = new FrameLog(conn.client)
    const strays = { client: [] as StrayFrame[], server: [] as StrayFrame[] }
    client.on('stray', f => strays.client.push(f))
    server.on('stray', f => strays.server.push(f))
    client.on('stream', echo)
    server.on('stream', echo)

    // Streams that are over before the busy phase: 1 and 2 closed by FIN both ways, 3 reset.
    t.equal((await roundTrip(client, Buffer.from('one'), 'stream 1')).toString(), 'one')
    t.equal((await roundTrip(server, Buffer.from('two'), 'stream 2')).toString(), 'two')
    const reset = client.open()
    reset.on('error', () => {})
    reset.write('x')
    await waitFor(() => intoServer.frames.some(h => h.streamId === reset.id), { what: 'the SYN of stream 3' })
    reset.destroy()
    t.equal(reset.id, 3)
    await waitFor(() => client.streamCount === 0 && server.streamCount === 0, { what: 'streams 1–3 to leave both maps' })
    const before = { client: client.stats, server: server.stats }
    const strayMark = { client: strays.client.length, server: strays.server.length }

    // The busy phase: streams opened by both sides, echoing until the strays are in.
    let injected = false
    const busy: Busy[] = []
    for (let i = 0; i < BUSY_STREAMS; i++) {
      busy.push(busyStream(client, `client stream ${i + 1}`, () => injected))
      busy.push(busyStream(server, `server stream ${i + 1}`, () => injected))
    }
    await waitFor(() => busy.every(b => b.gotBytes() >= 256 * KiB), { timeoutMs: WAIT_MS, what: 'every busy stream to move 256 KiB' })
    const gotAtInjection = busy.map(b => b.gotBytes())

    // Into the server (even ids are its own; the client has used 1, 3 and the busy odd ids).
    const toServer: Stray[] = [
      stray('closed', wu(1, Flag.RST)),
      stray('closed', wu(1, 0, 64 * KiB)),
      stray('closed', data(1, randomBytes(1000))),
      stray('closed', data(3, Buffer.from('late'), Flag.FIN)),
      stray('closed', wu(2, 0, 4096)),
      stray('closed', data(2, randomBytes(1 * MiB))), // four windows' worth: skipped, never buffered
      stray('never-opened', wu(1001, Flag.RST)), // the frame of issue 14
      stray('never-opened', wu(2002, 0, 100)),
      stray('never-opened', data(1003, Buffer.from('hello'))),
      stray('never-opened', data(2004, randomBytes(300 * KiB))),
      stray('never-opened', data(1005, Buffer.alloc(0), Flag.RST)),
    ]
    // Into the client (odd ids are its own; the server has used 2 and the busy even ids).
    const toClient: Stray[] = [
      stray('closed', wu(2, Flag.RST)),
      stray('closed', data(2, randomBytes(500))),
      stray('closed', wu(1, 0, 1000)),
      stray('closed', data(3, Buffer.from('x'))),
      stray('never-opened', wu(4002, Flag.FIN)),
      stray('never-opened', data(4004, Buffer.from('abc'))),
      stray('never-opened', data(3001, randomBytes(2000))),
    ]
    const write = (socket: Duplex, frames: Stray[]): void => { for (const f of frames) socket.write(f.frame) }
    write(conn.client, toServer.slice(0, 6))
    write(conn.server, toClient.slice(0, 4))
    write(conn.client, toServer.slice(6))
    write(conn.server, toClient.slice(4))

    const answeredBy = (frames: Stray[]): number[] => frames.filter(f => f.answered).map(f => f.id)
    // Only never-opened ids: the logs also hold the RSTs injected the other way for closed ids.
    const resetsFor = (log: FrameLog, frames: Stray[]): number[] => {
      const ids = new Set(frames.filter(f => f.reason === 'never-opened').map(f => f.id))
      return log.resets().filter(id => ids.has(id))
    }
    // The RSTs travel the other way: the server's answers arrive on the client's socket.
    await waitFor(() => resetsFor(intoClient, toServer).length >= 2 && resetsFor(intoServer, toClient).length >= 2,
      { timeoutMs: WAIT_MS, what: 'RSTs for the never-opened Data frames' })
    injected = true

    const results = await Promise.all(busy.map(b => b.done))
    results.forEach((r, i) => {
      const b = busy[i]!
      t.equal(r.got, r.sent, `${b.opener} (id ${b.id}): ${r.sentBytes} bytes echoed intact (sha256)`)
      t.ok(r.gotBytes > gotAtInjection[i]!, `${b.opener}: kept moving after the strays (${gotAtInjection[i]} → ${r.gotBytes})`)
    })

    t.same(resetsFor(intoClient, toServer), answeredBy(toServer), 'the server answered each never-opened Data frame with RST, and no other never-opened frame')
    t.same(resetsFor(intoServer, toClient), answeredBy(toClient), 'the client answered each never-opened Data frame with RST, and no other never-opened frame')
    const rstFrames = intoClient.frames.filter(h => answeredBy(toServer).includes(h.streamId))
    t.same(rstFrames, answeredBy(toServer).map(streamId => ({ type: FrameType.WindowUpdate, flags: Flag.RST, streamId, length: 0 })), 'each answer is a zero-length WindowUpdate|RST')

    // Counters: never-opened counts are exact (each side also drops the other's RST answers,
    // which name ids it never opened); closed counts may include natural late frames.
    const sum = (frames: Stray[], reason: string): Stray[] => frames.filter(f => f.reason === reason)
    const bytes = (frames: Stray[]): number => frames.reduce((n, f) => n + f.bytes, 0)
    for (const [side, session, frames, answers] of [
      ['server', server, toServer, answeredBy(toClient).length],
      ['client', client, toClient, answeredBy(toServer).length],
    ] as const) {
      const d = delta(session.stats, before[side])
      t.equal(d.strayNeverOpened, sum(frames, 'never-opened').length + answers, `${side}: strayNeverOpened counts the injected frames and the peer's RST answers`)
      t.equal(d.strayResets, answeredBy(frames).length, `${side}: strayResets`)
      t.ok(d.strayClosed >= sum(frames, 'closed').length, `${side}: strayClosed ${d.strayClosed} ≥ ${sum(frames, 'closed').length}`)
      t.ok(d.strayBytes >= bytes(frames), `${side}: strayBytes ${d.strayBytes} ≥ ${bytes(frames)}`)
      const seen = strays[side].slice(strayMark[side])
      const missing = frames.filter(f => !seen.some(e => e.header.streamId === f.id && e.reason === f.reason && e.reset === f.answered && e.header.length === f.frame.readUInt32BE(8)))
      t.same(missing.map(f => f.id), [], `${side}: the 'stray' event reported every injected frame with its reason`)
    }

    // Both sessions keep serving: new streams both ways, pings both ways.
    const fresh = randomBytes(200 * KiB)
    t.equal((await roundTrip(client, fresh, 'a new client stream')).equals(fresh), true, 'a new client-opened stream echoes')
    t.equal((await roundTrip(server, fresh, 'a new server stream')).equals(fresh), true, 'a new server-opened stream echoes')
    t.ok(await withTimeout(client.ping(), { what: 'client ping' }) >= 0, 'the client pings')
    t.ok(await withTimeout(server.ping(), { what: 'server ping' }) >= 0, 'the server pings')
    t.equal(client.closed || server.closed, false, 'both sessions are open')
    t.same(intoServer.goAways(), [], 'no GoAway to the server')
    t.same(intoClient.goAways(), [], 'no GoAway to the client')
  })
}
