// MuxStream flow control and lifecycle: a stalled reader among busy streams is held to its
// window, a sender without credit blocks until a WindowUpdate, window auto-tuning grows only
// when the link's RTT (not the reader) limits throughput, half-close states, zero-length writes.
// Assertions are on bytes, windows and states, never on timing.
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import t, { type Test } from 'tap'
import type { MuxConfig } from '../../src/mux/config.js'
import { encodeHeader, Flag, FrameType, INITIAL_STREAM_WINDOW } from '../../src/mux/frame.js'
import { Session } from '../../src/mux/session.js'
import { StreamState, type MuxStream } from '../../src/mux/stream.js'
import { sha256 } from '../helpers/digest.js'
import { duplexPair, type DuplexPairOptions } from '../helpers/duplex-pair.js'
import { FrameLog } from '../helpers/frame-log.js'
import { readAll as readAllWithin } from '../helpers/read-all.js'
import { tcpTransport, type TransportCase, pipeTransport } from '../helpers/transports.js'
import { nextEvent, sleep, turns, waitFor, withTimeout } from '../helpers/wait.js'

const KiB = 1024
const MiB = 1024 * KiB
const WAIT_MS = 20_000

const readAll = (s: Duplex, what: string): Promise<Buffer> => readAllWithin(s, what, WAIT_MS)

function noErrors (t: Test, s: MuxStream, who: string): MuxStream {
  s.on('error', err => t.fail(`${who} stream ${s.id} failed: ${err.message}`))
  return s
}

async function sessions (t: Test, tr: TransportCase, clientOpts: Partial<MuxConfig> = {}, serverOpts: Partial<MuxConfig> = {}) {
  const conn = await tr.connect()
  const client = new Session(conn.client, { client: true, ...clientOpts })
  const server = new Session(conn.server, { client: false, ...serverOpts })
  t.teardown(async () => {
    client.destroy()
    server.destroy()
    await conn.close()
  })
  return { client, server, conn }
}

for (const tr of [pipeTransport(), tcpTransport()]) {
  t.test(`${tr.name}: a stalled reader is held to its window while 8 other streams run at full speed`, async t => {
    const { client, server, conn } = await sessions(t, tr, {}, { windowAutoTuning: false })
    const BUSY = 8
    const BUSY_SIZE = 3 * MiB
    const STALLED_SIZE = MiB
    const busyData = Array.from({ length: BUSY }, () => randomBytes(BUSY_SIZE))
    const stalledData = randomBytes(STALLED_SIZE)

    const received = new Map<number, Promise<Buffer>>()
    let stalled: MuxStream | undefined
    let maxStalledBuffered = 0
    let overWindow = 0
    server.on('stream', s => {
      noErrors(t, s, 'server').end() // the server only receives
      if (s.id === 2 * BUSY + 1) stalled = s // the last one opened: nobody reads it for now
      else received.set(s.id, readAll(s, `busy stream ${s.id}`))
    })
    const wire = new FrameLog(conn.server) // what the client session wrote
    // Runs after the session's own 'data' listener: every push into the stalled stream has happened.
    conn.server.on('data', () => {
      if (stalled === undefined) return
      maxStalledBuffered = Math.max(maxStalledBuffered, stalled.readableLength)
      if (stalled.readableLength > stalled.recvWindowMax) overWindow++
    })

    const busy = busyData.map(data => {
      const s = noErrors(t, client.open(), 'client')
      s.end(data)
      return s
    })
    const sender = noErrors(t, client.open(), 'client')
    const writeResults: boolean[] = []
    for (let off = 0; off < STALLED_SIZE; off += 16 * KiB) writeResults.push(sender.write(stalledData.subarray(off, off + 16 * KiB)))
    sender.end()

    const got = await Promise.all(busy.map(s => received.get(s.id) ?? waitAndGet(received, s.id)))
    t.same(got.map(sha256), busyData.map(sha256), 'all 8 busy streams completed intact while one reader stalled')

    await waitFor(() => sender.sendWindow === 0, { what: 'the stalled sender to use up its window' })
    t.ok(stalled, 'the stalled stream was accepted')
    const st = stalled!
    t.equal(sender.sendWindow, 0, "the sender's window is exhausted")
    t.ok(writeResults.includes(false), 'write() returned false')
    t.equal(writeResults.at(-1), false, 'the last write() was refused')
    t.equal(st.readableLength, INITIAL_STREAM_WINDOW, 'the stalled reader buffers exactly one window')
    t.equal(st.recvWindow, 0, 'and has no credit left to give')
    t.equal(st.recvWindowMax, INITIAL_STREAM_WINDOW)
    t.equal(overWindow, 0, 'the stalled buffer never exceeded recvWindowMax')
    t.ok(maxStalledBuffered <= st.recvWindowMax, `max buffered ${maxStalledBuffered} <= ${st.recvWindowMax}`)
    t.equal(wire.dataBytes.get(st.id), INITIAL_STREAM_WINDOW, 'exactly one window of the stalled stream went over the wire')
    t.ok(sender.writableLength >= STALLED_SIZE - INITIAL_STREAM_WINDOW, 'the rest waits in the sender, not in the receiver')

    const rest = await readAll(st, 'the stalled stream after it resumes')
    t.equal(sha256(rest), sha256(stalledData), 'after resuming, all data of the stalled stream arrives intact')
    t.equal(overWindow, 0, 'never over the window while draining either')
    await waitFor(() => client.streamCount === 0 && server.streamCount === 0, { what: 'all streams to close' })
  })
}

/** A stream accepted after its sender finished: wait until the server saw it. */
async function waitAndGet (m: Map<number, Promise<Buffer>>, id: number): Promise<Buffer> {
  await waitFor(() => m.has(id), { what: `stream ${id} to be accepted` })
  return await m.get(id)!
}

t.test('a peer that grants no credit: write() returns false and drain follows only the WindowUpdate', async t => {
  const [a, raw] = duplexPair()
  const client = new Session(a, { client: true, windowAutoTuning: false })
  t.teardown(() => { client.destroy(); raw.destroy() })
  const wire = new FrameLog(raw)
  const s = noErrors(t, client.open(), 'client')

  const chunk = Buffer.alloc(16 * KiB, 0x61)
  let drains = 0
  let drained = false
  s.on('drain', () => { drains++; drained = true })
  /** Writes until write() refuses (bounded by the 64 KiB highWaterMark); returns the last result. */
  const fill = (): boolean => {
    for (let i = 0; i < 64; i++) if (!s.write(chunk)) return false
    return true
  }
  // Write through the first window, waiting for 'drain' whenever write() refuses.
  for (let i = 0; i < 64 && s.sendWindow > 0; i++) {
    drained = false
    t.equal(fill(), false, 'write() refuses once 64 KiB are queued')
    await waitFor(() => drained || s.sendWindow === 0, { what: "'drain' or an exhausted window" })
  }
  // The window is used up; queue more than it allows.
  const lastWrite = fill()
  await waitFor(() => wire.dataBytes.get(1) === INITIAL_STREAM_WINDOW, { what: 'the first window to reach the wire' })
  t.equal(s.sendWindow, 0, 'the send window is exhausted')
  t.equal(lastWrite, false, 'write() returned false')
  t.ok(s.writableLength > 0, 'bytes wait in the stream')
  const drainsAtStall = drains
  await turns(20)
  await sleep(50) // a generous chance for a wrong 'drain'; what is asserted is that none came
  t.equal(drains, drainsAtStall, "no 'drain' without credit")
  t.equal(wire.dataBytes.get(1), INITIAL_STREAM_WINDOW, 'not one byte beyond the window was sent')

  const afterCredit = new Promise(resolve => s.once('drain', resolve))
  raw.write(encodeHeader({ type: FrameType.WindowUpdate, flags: Flag.ACK, streamId: 1, length: 64 * KiB }))
  await withTimeout(afterCredit, { what: "'drain' after the WindowUpdate" })
  await waitFor(() => wire.dataBytes.get(1) === INITIAL_STREAM_WINDOW + 64 * KiB, { what: 'the credited bytes on the wire' })
  t.equal(s.sendWindow, 0, 'exactly the credited 64 KiB went out')
  t.ok(drains > drainsAtStall, "'drain' came after the credit")
  const dataFrames = wire.frames.filter(h => h.type === FrameType.Data)
  t.ok(dataFrames.every(h => h.length <= client.config.maxSendFrameSize), 'frames respect maxSendFrameSize')
  t.equal(dataFrames[0]?.flags, Flag.SYN, 'the first Data frame carries the SYN')
})

t.test('window auto-tuning over a delayed link', async t => {
  const delayed: DuplexPairOptions = { delayMs: 4 }
  const MAX = 2 * MiB

  t.test('grows recvWindowMax above 256 KiB, never above maxStreamWindow', async t => {
    const { client, server } = await sessions(t, pipeTransport(delayed), {}, { windowAutoTuning: true, maxStreamWindow: MAX })
    const data = randomBytes(8 * MiB)
    let maxWindow = 0
    const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the bulk stream' })
    const s = noErrors(t, client.open(), 'client')
    s.end(data)
    const [r] = await accepted
    noErrors(t, r, 'server')
    r.on('data', () => { maxWindow = Math.max(maxWindow, r.recvWindowMax) })
    t.equal(sha256(await readAll(r, 'the 8 MiB bulk transfer')), sha256(data), 'bulk data intact')
    t.ok(server.rtt > 0, `the server measured an RTT (${server.rtt.toFixed(1)} ms)`)
    t.ok(maxWindow > INITIAL_STREAM_WINDOW, `recvWindowMax grew to ${maxWindow}`)
    t.ok(maxWindow <= MAX, `and stayed within maxStreamWindow (${MAX})`)
  })

  t.test('without auto-tuning the window stays at 262144', async t => {
    const { client, server } = await sessions(t, pipeTransport(delayed), {}, { windowAutoTuning: false, maxStreamWindow: MAX })
    const data = randomBytes(2 * MiB)
    const windows = new Set<number>()
    const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the bulk stream' })
    const s = noErrors(t, client.open(), 'client')
    s.end(data)
    const [r] = await accepted
    noErrors(t, r, 'server')
    r.on('data', () => windows.add(r.recvWindowMax))
    t.equal(sha256(await readAll(r, 'the 2 MiB bulk transfer')), sha256(data), 'bulk data intact')
    t.same([...windows], [262144], 'recvWindowMax is 262144 throughout')
    t.ok(s.sendWindow <= 262144, 'the sender never got more than one window of credit')
  })
  t.end()
})

t.test('half-close state transitions', async t => {
  for (const first of ['opener', 'acceptor'] as const) {
    t.test(`the ${first} sends FIN first`, async t => {
      const { client, server, conn } = await sessions(t, pipeTransport())
      // States are sampled synchronously: over a pipe the ACK follows within the same turn.
      let acceptorAtAccept: StreamState | undefined
      let openerWhenSynArrived: StreamState | undefined
      server.once('stream', s => { acceptorAtAccept = s.state })
      conn.server.once('data', () => { openerWhenSynArrived = c.state }) // after the server session handled the SYN
      const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
      const c = noErrors(t, client.open(), 'client')
      t.equal(c.state, StreamState.Init, 'a new stream is Init until its SYN is sent')
      c.write('syn')
      const [s] = await accepted
      noErrors(t, s, 'server')
      t.equal(openerWhenSynArrived, StreamState.SynSent, 'the opener is SynSent while its SYN is unanswered')
      t.equal(acceptorAtAccept, StreamState.SynReceived, 'the acceptor is SynReceived until it ACKs')
      await waitFor(() => c.state === StreamState.Established && s.state === StreamState.Established, { what: 'both sides Established' })

      const [early, late] = first === 'opener' ? [c, s] : [s, c]
      const lateEnded = readAll(late, 'the FIN')
      early.end()
      await waitFor(() => early.state === StreamState.LocalClose, { what: 'LocalClose after our FIN' })
      const before = (await lateEnded).toString()
      t.equal(before, first === 'opener' ? 'syn' : '', 'data before the FIN arrived')
      t.equal(late.state, StreamState.RemoteClose, 'RemoteClose after the peer FIN')
      t.equal(late.writable, true, 'the other direction stays writable')
      const earlyGot = readAll(early, 'the reverse direction')
      late.end('still talking')
      t.equal((await earlyGot).toString(), first === 'opener' ? 'still talking' : 'synstill talking')
      await waitFor(() => c.state === StreamState.Closed && s.state === StreamState.Closed, { what: 'both sides Closed' })
      await waitFor(() => client.streamCount === 0 && server.streamCount === 0, { what: 'both maps to empty' })
    })
  }

  t.test('reset moves both sides to Reset from any state', async t => {
    const { client, server } = await sessions(t, pipeTransport())
    const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
    const c = client.open()
    c.on('error', () => {})
    c.write('x')
    c.end() // LocalClose
    const [stream] = await accepted
    stream.on('error', () => {}).resume()
    await waitFor(() => c.state === StreamState.LocalClose && stream.state === StreamState.RemoteClose, { what: 'LocalClose / RemoteClose' })
    const closed = nextEvent(stream, 'close', { what: 'the server side to close' })
    c.destroy()
    await closed
    t.equal(c.state, StreamState.Reset)
    t.equal(stream.state, StreamState.Reset)
  })
  t.end()
})

t.test('zero-length writes and zero-length Data frames', async t => {
  t.test('empty writes complete and send no Data bytes', async t => {
    const [a, b] = duplexPair()
    const client = new Session(a, { client: true, windowAutoTuning: false })
    const server = new Session(b, { client: false, windowAutoTuning: false })
    t.teardown(() => { client.destroy(); server.destroy() })
    const wire = new FrameLog(b)
    const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'a stream opened by an empty write' })
    const c = noErrors(t, client.open(), 'client')
    const wrote = new Promise<void>((resolve, reject) => c.write(Buffer.alloc(0), err => err ? reject(err) : resolve()))
    await withTimeout(wrote, { what: 'the empty write callback' })
    const [s] = await accepted
    noErrors(t, s, 'server')
    t.same(wire.frames[0], { type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 1, length: 0 }, 'an empty write still opens the stream (SYN on a WindowUpdate)')
    const got = readAll(s, 'the stream data')
    c.write('abc')
    c.write(Buffer.alloc(0))
    c.write('')
    c.end('def')
    t.equal((await got).toString(), 'abcdef', 'empty writes do not disturb the byte stream')
    t.equal(wire.dataBytes.get(1), 6, 'only the 6 real bytes were framed')
    t.equal(c.sendWindow, INITIAL_STREAM_WINDOW - 6, 'only real bytes use the window')
  })

  t.test('a peer may open, send and close with zero-length Data frames', async t => {
    const [a, raw] = duplexPair()
    const server = new Session(a, { client: false })
    t.teardown(() => { server.destroy(); raw.destroy() })
    const wire = new FrameLog(raw)
    const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'a stream opened by Data|SYN of length 0' })
    raw.write(encodeHeader({ type: FrameType.Data, flags: Flag.SYN, streamId: 1, length: 0 }))
    const [s] = await accepted
    noErrors(t, s, 'server')
    const got = readAll(s, 'the FIN')
    raw.write(Buffer.concat([
      encodeHeader({ type: FrameType.Data, flags: 0, streamId: 1, length: 0 }),
      encodeHeader({ type: FrameType.Data, flags: 0, streamId: 1, length: 2 }), Buffer.from('ok'),
      encodeHeader({ type: FrameType.Data, flags: Flag.FIN, streamId: 1, length: 0 }),
    ]))
    t.equal((await got).toString(), 'ok')
    t.equal(s.state, StreamState.RemoteClose)
    s.end()
    await waitFor(() => wire.frames.some(h => h.streamId === 1 && (h.flags & Flag.FIN) !== 0), { what: 'our FIN on the wire' })
    t.equal(server.closed, false, 'the session is fine')
    t.equal(server.streamCount, 0, 'the stream is released after both FINs')
  })

  t.test('the payload of a Data|FIN frame is delivered before the end', async t => {
    const [a, raw] = duplexPair()
    const server = new Session(a, { client: false })
    t.teardown(() => { server.destroy(); raw.destroy() })
    const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
    raw.write(Buffer.concat([
      encodeHeader({ type: FrameType.Data, flags: Flag.SYN | Flag.FIN, streamId: 1, length: 4 }), Buffer.from('last'),
    ]))
    const [s] = await accepted
    noErrors(t, s, 'server')
    t.equal((await readAll(s, 'the payload and the FIN')).toString(), 'last')
    t.equal(s.state, StreamState.RemoteClose)
  })
  t.end()
})
