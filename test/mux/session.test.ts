// Session behaviour over every transport of the matrix (pipe, tcp, tcp-reversed, tls,
// tls-reversed), as hashicorp yamux runs its session tests over testConnTypes: open/accept,
// data riding with SYN, checksummed echo on 1 and 100 streams, half-close, reset, ping,
// GoAway, destroy, stream bookkeeping, keepalive, accept backlog and stream limits.
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import t, { type Test } from 'tap'
import {
  DuplicateStreamError, KeepAliveTimeoutError, MportError, RemoteGoAwayError, SessionClosedError, StreamLimitError,
} from '../../src/errors.js'
import type { MuxConfig } from '../../src/mux/config.js'
import { decodeHeader, encodeHeader, Flag, FrameType, HEADER_LENGTH, type FrameHeader } from '../../src/mux/frame.js'
import { Session } from '../../src/mux/session.js'
import { StreamState, type MuxStream } from '../../src/mux/stream.js'
import { sha256 } from '../helpers/digest.js'
import { duplexPair } from '../helpers/duplex-pair.js'
import { readAll as readAllWithin } from '../helpers/read-all.js'
import { transports, type Connected, type TransportCase } from '../helpers/transports.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

const KiB = 1024
const MiB = 1024 * KiB
const WAIT_MS = 20_000

interface Pair { client: Session, server: Session, conn: Connected }

/** Connects a transport and starts a session on each end; everything is torn down with the test. */
async function setup (t: Test, tr: TransportCase, clientOpts: Partial<MuxConfig> = {}, serverOpts: Partial<MuxConfig> = {}): Promise<Pair> {
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

/** Reads a stream to its end (bounded). */
const readAll = (s: Duplex, what: string): Promise<Buffer> => readAllWithin(s, what, WAIT_MS)

/** The error a stream is destroyed with (bounded); a clean end rejects. */
function streamError (s: MuxStream, what: string): Promise<Error> {
  return withTimeout(new Promise<Error>((resolve, reject) => {
    s.once('error', resolve)
    s.once('close', () => setImmediate(() => reject(new Error(`${what}: closed without an error`))))
  }), { timeoutMs: WAIT_MS, what })
}

/** Resolves with the error the session ended with (undefined for a clean end). */
async function sessionEnded (s: Session, what: string): Promise<Error | undefined> {
  if (s.closed) return s.error
  const [err] = await nextEvent<[Error | undefined]>(s, 'close', { timeoutMs: WAIT_MS, what })
  return err
}

/** Streams must not fail unless a test says so. */
function noErrors (t: Test, s: MuxStream, who: string): MuxStream {
  s.on('error', err => t.fail(`${who} stream ${s.id} failed: ${err.message}`))
  return s
}

/** Echoes everything back and ends when the peer ends. */
function echo (s: MuxStream): void {
  s.on('error', () => {})
  s.pipe(s)
}

/** Splits bytes into complete frames (headers plus Data payloads); a trailing partial frame is left out. */
function frames (bytes: Buffer): Array<{ h: FrameHeader, payload: Buffer }> {
  const out: Array<{ h: FrameHeader, payload: Buffer }> = []
  let off = 0
  while (bytes.length - off >= HEADER_LENGTH) {
    const h = decodeHeader(bytes, off)
    const bodyLength = h.type === FrameType.Data ? h.length : 0
    if (bytes.length - off - HEADER_LENGTH < bodyLength) break
    out.push({ h, payload: bytes.subarray(off + HEADER_LENGTH, off + HEADER_LENGTH + bodyLength) })
    off += HEADER_LENGTH + bodyLength
  }
  return out
}

/** Opens `count` streams on `opener`, sends `size` random bytes on each to an echoing `acceptor`, checks every byte back. */
async function echoRoundTrip (t: Test, opener: Session, acceptor: Session, count: number, size: number): Promise<void> {
  acceptor.on('stream', echo)
  const results = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const data = randomBytes(size)
    const s = opener.open()
    const back = readAll(s, `echo of ${size} bytes on stream ${i + 1}/${count}`)
    s.end(data)
    const got = await back
    return { sent: sha256(data), got: sha256(got), length: got.length }
  }))
  const bad = results.filter(r => r.sent !== r.got || r.length !== size)
  t.equal(bad.length, 0, `all ${count} streams echoed ${size} bytes intact (sha256)`)
  await waitFor(() => opener.streamCount === 0 && acceptor.streamCount === 0, { timeoutMs: WAIT_MS, what: 'echo streams to leave both session maps' })
  acceptor.off('stream', echo)
}

for (const tr of transports) {
  t.test(tr.name, async t => {
    t.test('open and accept through the stream event, ids by role', async t => {
      const { client, server } = await setup(t, tr)
      const fromClient = nextEvent<[MuxStream]>(server, 'stream', { what: 'the server stream event' })
      const c1 = noErrors(t, client.open(), 'client')
      c1.end('hello from the client')
      const [s1] = await fromClient
      t.equal(c1.id, 1, 'the client opens odd ids from 1')
      t.equal(s1.id, 1, 'the server sees the same id')
      t.equal((await readAll(s1, 'client data')).toString(), 'hello from the client')

      const fromServer = nextEvent<[MuxStream]>(client, 'stream', { what: 'the client stream event' })
      const s2 = noErrors(t, server.open(), 'server')
      s2.end('hello from the server')
      const [c2] = await fromServer
      t.equal(s2.id, 2, 'the server opens even ids from 2')
      t.equal(c2.id, 2)
      t.equal((await readAll(c2, 'server data')).toString(), 'hello from the server')
      t.equal(client.open().id, 3, 'ids step by 2')
    })

    t.test('open and accept through accept()', async t => {
      const { client, server } = await setup(t, tr)
      const early = server.accept() // waiting before the SYN arrives
      const a = noErrors(t, client.open(), 'client')
      a.end('first')
      const b = noErrors(t, client.open(), 'client')
      b.end('second')
      const first = await withTimeout(early, { what: 'accept() of the first stream' })
      const second = await withTimeout(server.accept(), { what: 'accept() of the second stream' })
      t.same([first.id, second.id], [1, 3], 'accepted in opening order')
      t.equal((await readAll(first, 'first stream')).toString(), 'first')
      t.equal((await readAll(second, 'second stream')).toString(), 'second')
    })

    t.test('data written in the opening tick rides with the SYN', async t => {
      // No RTT ping either way, so the SYN is the first frame on the wire.
      const { client, server, conn } = await setup(t, tr, { windowAutoTuning: false }, { windowAutoTuning: false })
      const wire: Buffer[] = []
      conn.server.on('data', (c: Buffer) => wire.push(c)) // sniffs what reaches the server session
      const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
      const s = noErrors(t, client.open(), 'client')
      s.write('ride along')
      const [peer] = await accepted
      const first = frames(Buffer.concat(wire))[0]
      t.ok(first, 'a frame reached the server')
      t.same(first?.h, { type: FrameType.Data, flags: Flag.SYN, streamId: 1, length: 10 }, 'the first frame is Data|SYN carrying the payload')
      t.equal(first?.payload.toString(), 'ride along')
      t.same(Buffer.concat(wire).subarray(0, HEADER_LENGTH), encodeHeader({ type: FrameType.Data, flags: Flag.SYN, streamId: 1, length: 10 }), 'header bytes on the wire')
      s.end()
      t.equal((await readAll(peer, 'the stream payload')).toString(), 'ride along')
    })

    t.test('echo 4 MiB on 1 stream, each side opening (sha256)', async t => {
      const { client, server } = await setup(t, tr)
      await echoRoundTrip(t, client, server, 1, 4 * MiB)
      await echoRoundTrip(t, server, client, 1, 4 * MiB)
    })

    t.test('echo on 100 concurrent streams, each side opening (sha256)', async t => {
      const { client, server } = await setup(t, tr)
      await echoRoundTrip(t, client, server, 100, 40 * KiB)
      await echoRoundTrip(t, server, client, 100, 40 * KiB)
    })

    for (const first of ['opener', 'acceptor'] as const) {
      t.test(`FIN half-close: the ${first} ends first, the other side keeps sending`, async t => {
        const { client, server } = await setup(t, tr)
        const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
        const c = noErrors(t, client.open(), 'client')
        c.write('hi')
        const [s] = await accepted
        noErrors(t, s, 'server')
        const [early, late] = first === 'opener' ? [c, s] : [s, c]
        const earlyGot = readAll(early, 'data after our FIN')
        const lateGot = readAll(late, 'data before the FIN')
        early.end('bye')
        const lateData = await lateGot
        t.equal(lateData.toString(), first === 'opener' ? 'hibye' : 'bye', 'the FIN arrives after the data')
        t.equal(early.state, StreamState.LocalClose, 'FIN sender is LocalClose')
        t.equal(late.state, StreamState.RemoteClose, 'FIN receiver is RemoteClose')
        const more = randomBytes(512 * KiB) // more than a window: credit keeps flowing after our FIN
        late.end(more)
        const earlyData = await earlyGot
        t.equal(sha256(earlyData), sha256(first === 'opener' ? more : Buffer.concat([Buffer.from('hi'), more])), 'data sent after the peer FIN arrives intact')
        await waitFor(() => c.state === StreamState.Closed && s.state === StreamState.Closed, { what: 'both sides Closed' })
        await waitFor(() => client.streamCount === 0 && server.streamCount === 0, { what: 'the stream to leave both maps' })
      })
    }

    for (const resetter of ['client', 'server'] as const) {
      t.test(`RST from the ${resetter}: the other side fails with MPORT_ERR_STREAM_RESET`, async t => {
        const { client, server } = await setup(t, tr)
        const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
        const c = client.open()
        c.write('before the reset')
        const [s] = await accepted
        const [local, remote] = resetter === 'client' ? [c, s] : [s, c]
        local.on('error', err => t.fail(`the resetting side must not fail: ${err.message}`))
        const failed = streamError(remote, 'the reset to reach the reader')
        remote.resume()
        local.destroy()
        const err = await failed
        t.type(err, MportError)
        t.match(err, { code: 'MPORT_ERR_STREAM_RESET', name: 'StreamResetError' })
        t.equal(remote.state, StreamState.Reset)
        t.equal(local.state, StreamState.Reset)
        await waitFor(() => client.streamCount === 0 && server.streamCount === 0, { what: 'the reset stream to leave both maps' })
      })
    }

    t.test('ping returns a positive RTT', async t => {
      const { client, server } = await setup(t, tr)
      const rtt = await withTimeout(client.ping(), { what: 'client ping' })
      t.ok(rtt > 0, `client RTT ${rtt} ms is positive`)
      t.equal(client.rtt, rtt, 'the rtt getter holds the last measurement')
      t.ok(await withTimeout(server.ping(), { what: 'server ping' }) > 0, 'server RTT is positive')
    })

    t.test('close() sends GoAway: open streams finish, no new streams on either side', async t => {
      const { client, server } = await setup(t, tr)
      const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
      const c = noErrors(t, client.open(), 'client')
      c.write('before')
      const [s] = await accepted
      noErrors(t, s, 'server')
      const goaway = nextEvent<[number]>(server, 'goaway', { what: 'the GoAway at the server' })
      const closing = client.close()
      t.same(await goaway, [0], 'GoAway(normal) reaches the server')
      t.throws(() => client.open(), { code: 'MPORT_ERR_SESSION_CLOSED' }, 'the closing side opens nothing')
      t.throws(() => server.open(), { code: 'MPORT_ERR_SESSION_CLOSED' }, 'the side that got GoAway opens nothing')
      t.equal(client.closed, false, 'the session waits for its open stream')

      const tail = randomBytes(MiB)
      const atServer = readAll(s, 'server side of the stream')
      const atClient = readAll(c, 'client side of the stream')
      c.end(tail)
      s.end('done')
      t.equal(sha256(await atServer), sha256(Buffer.concat([Buffer.from('before'), tail])), 'the open stream keeps transferring')
      t.equal((await atClient).toString(), 'done')
      await withTimeout(closing, { timeoutMs: WAIT_MS, what: 'close() to resolve' })
      t.equal(await sessionEnded(client, 'the client to close'), undefined, 'the client closed cleanly')
      t.equal(await sessionEnded(server, 'the server to close'), undefined, 'the server closed cleanly')
    })

    for (const [label, err, code] of [
      ['an internal error', new Error('boom'), 2],
      ['a protocol error', new DuplicateStreamError(99), 1],
    ] as const) {
      t.test(`destroy(${label}) ends the peer with RemoteGoAwayError(${code})`, async t => {
        const { client, server } = await setup(t, tr)
        const accepted = nextEvent<[MuxStream]>(server, 'stream', { what: 'the stream' })
        const c = client.open()
        c.write('x')
        c.on('error', () => {})
        const [s] = await accepted
        const streamFailed = streamError(s, 'the peer stream to fail with the session')
        const clientClose = nextEvent<[Error | undefined]>(client, 'close', { what: 'the client close event' })
        client.destroy(err)
        t.equal((await clientClose)[0], err, 'the local close event carries the error')
        const remote = await sessionEnded(server, 'the server to end')
        t.type(remote, RemoteGoAwayError)
        t.match(remote, { code: 'MPORT_ERR_REMOTE_GOAWAY', remoteCode: code })
        const se = await streamFailed
        t.type(se, SessionClosedError)
        t.match(se, { code: 'MPORT_ERR_SESSION_CLOSED' })
        t.throws(() => server.open(), { code: 'MPORT_ERR_SESSION_CLOSED' })
        await t.rejects(server.accept(), { code: 'MPORT_ERR_SESSION_CLOSED' })
        t.equal(server.streamCount, 0)
      })
    }

    t.test('stream count returns to 0 after streams finish or reset', async t => {
      const { client, server } = await setup(t, tr)
      server.on('stream', s => {
        s.on('error', () => {})
        if (s.id % 4 === 1) s.pipe(s)
        else s.resume().once('data', () => s.destroy())
      })
      const done = Array.from({ length: 40 }, () => {
        const s = client.open()
        s.on('error', () => {}).resume()
        s.end(randomBytes(3000))
        return new Promise<void>(resolve => s.once('close', () => resolve()))
      })
      t.ok(client.streamCount > 0, 'streams are counted while open')
      await withTimeout(Promise.all(done), { timeoutMs: WAIT_MS, what: 'all 40 streams to close' })
      await waitFor(() => client.streamCount === 0 && server.streamCount === 0, {
        timeoutMs: WAIT_MS, what: 'both session maps to empty',
      })
      t.equal(client.streamCount, 0)
      t.equal(server.streamCount, 0)
    })

    t.test('keepalive ends a session whose peer neither reads nor answers', async t => {
      const conn = await tr.connect()
      t.teardown(() => conn.close())
      // Nothing is attached to conn.server: it never reads, never answers a ping.
      const client = new Session(conn.client, { client: true, keepAliveInterval: 50, keepAliveTimeout: 200 })
      t.teardown(() => client.destroy())
      const err = await sessionEnded(client, 'the keepalive to declare the peer dead')
      t.type(err, KeepAliveTimeoutError)
      t.match(err, { code: 'MPORT_ERR_KEEPALIVE_TIMEOUT' })
    })

    t.test('accept backlog overflow: SYNs beyond acceptBacklog are reset', async t => {
      const { client, server } = await setup(t, tr, {}, { acceptBacklog: 4 })
      // No 'stream' listener and no accept(): streams queue in the backlog.
      const opened = Array.from({ length: 7 }, () => {
        const s = client.open()
        s.write('knock')
        return s
      })
      const refused = await Promise.all(opened.slice(4).map(s => streamError(s, `stream ${s.id} to be refused`)))
      for (const err of refused) t.match(err, { code: 'MPORT_ERR_STREAM_RESET' })
      t.same(opened.slice(4).map(s => s.state), [StreamState.Reset, StreamState.Reset, StreamState.Reset])
      const accepted = []
      for (let i = 0; i < 4; i++) accepted.push(await withTimeout(server.accept(), { what: `backlog stream ${i + 1}` }))
      t.same(accepted.map(s => s.id), [1, 3, 5, 7], 'the first four SYNs wait in the backlog')
      for (const [i, s] of accepted.entries()) {
        noErrors(t, s, 'server')
        s.end()
        noErrors(t, opened[i]!, 'client').end()
        t.equal((await readAll(s, 'a backlog stream')).toString(), 'knock', 'a backlog stream keeps its data')
      }
      opened.slice(0, 4).forEach(s => s.resume())
      await waitFor(() => server.streamCount === 0 && client.streamCount === 0, { what: 'all streams to leave the maps' })
    })

    t.test('maxConcurrentStreams: open() beyond it throws until a stream finishes', async t => {
      const { client, server } = await setup(t, tr, { maxConcurrentStreams: 2 })
      server.on('stream', echo)
      const a = noErrors(t, client.open(), 'client')
      const b = noErrors(t, client.open(), 'client')
      t.throws(() => client.open(), StreamLimitError)
      t.throws(() => client.open(), { code: 'MPORT_ERR_STREAM_LIMIT' })
      a.end('a')
      t.equal((await readAll(a, 'stream a')).toString(), 'a')
      await waitFor(() => client.streamCount === 1, { what: 'stream a to be released' })
      const c = noErrors(t, client.open(), 'client')
      t.equal(c.id, 5, 'a slot frees up when a stream finishes')
      b.end('b')
      c.end('c')
      t.equal((await readAll(b, 'stream b')).toString(), 'b')
      t.equal((await readAll(c, 'stream c')).toString(), 'c')
      await waitFor(() => client.streamCount === 0 && server.streamCount === 0, { what: 'streams to drain' })
    })

    t.test('maxConcurrentStreams at the acceptor resets SYNs beyond it', async t => {
      const { client, server } = await setup(t, tr, {}, { maxConcurrentStreams: 2 })
      server.on('stream', s => s.on('error', () => {}).resume())
      const opened = [client.open(), client.open(), client.open()]
      opened.forEach(s => s.write('x'))
      const err = await streamError(opened[2]!, 'the third SYN to be reset')
      t.match(err, { code: 'MPORT_ERR_STREAM_RESET' })
      t.equal(opened[0]!.destroyed, false, 'streams within the limit stay open')
      t.equal(opened[1]!.destroyed, false)
      await waitFor(() => server.streamCount === 2, { what: 'the server to hold 2 streams' })
      for (const s of opened.slice(0, 2)) s.on('error', () => {}).destroy()
    })
    t.end()
  })
}

t.test('keepalive over a frozen pipe ends the session; the peer sees the transport go', async t => {
  const [a, b] = duplexPair()
  const client = new Session(a, { client: true, keepAliveInterval: 50, keepAliveTimeout: 200 })
  const server = new Session(b, { client: false, keepAliveInterval: 0 })
  t.teardown(() => { client.destroy(); server.destroy(); a.destroy(); b.destroy() })
  t.ok(await withTimeout(client.ping(), { what: 'a first ping while the pipe flows' }) > 0)
  a.freeze() // from here on nothing is delivered either way: the server is alive but unreachable
  b.freeze()
  const err = await sessionEnded(client, 'the keepalive to fail')
  t.type(err, KeepAliveTimeoutError)
  t.match(err, { code: 'MPORT_ERR_KEEPALIVE_TIMEOUT' })
  const serverErr = await sessionEnded(server, 'the server to see the connection go')
  t.match(serverErr, { code: 'MPORT_ERR_TRANSPORT' })
})
