// Interop with an independent yamux: @chainsafe/libp2p-yamux over real loopback TCP, in both
// roles (mport client ↔ libp2p server, libp2p client ↔ mport server): hundreds of concurrent
// checksummed streams opened by each side, half-close, reset, ping, GoAway and slow readers.
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import { ProtocolError } from '../../src/errors.js'
import { Session } from '../../src/mux/session.js'
import { StreamState, type MuxStream } from '../../src/mux/stream.js'
import { Flag, FrameType, GoAwayCode, INITIAL_STREAM_WINDOW } from '../../src/mux/frame.js'
import type { MuxConfig } from '../../src/mux/config.js'
import {
  runLibp2pYamux, toBuffer, type Libp2pPeer, type Libp2pStream, type Libp2pYamuxOptions,
} from '../helpers/libp2p-yamux.js'
import { sha256 } from '../helpers/digest.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

const KiB = 1024
const MiB = 1024 * KiB
/** Upper bound for any single wait; failures name what was awaited. */
const WAIT_MS = 20_000

// ---- Data: distinct, checksummed payloads without generating megabytes per stream ----

const MAX_PAYLOAD = 2 * MiB
const BASE = randomBytes(MAX_PAYLOAD + 64 * KiB)
const digests = new Map<string, string>()

/** `size` pseudo-random bytes, distinct for each seed below 1024 (a different offset into BASE). */
function payload (seed: number, size: number): Buffer {
  if (size > MAX_PAYLOAD) throw new RangeError(`payload of ${size} B: at most ${MAX_PAYLOAD}`)
  const offset = (seed % 1024) * 64
  return BASE.subarray(offset, offset + size)
}

/** Digest of payload(seed, size), computed once. */
function digestOf (seed: number, size: number): string {
  const key = `${seed % 1024}/${size}`
  let d = digests.get(key)
  if (d === undefined) {
    d = sha256(payload(seed, size))
    digests.set(key, d)
  }
  return d
}

/** Chunks of 1 B … 64 KiB, sizes varying, covering `data`. */
function * chunksOf (data: Buffer): Generator<Buffer> {
  const sizes = [64 * KiB, 1, 17 * KiB, 64 * KiB - 1, 3000, 40 * KiB]
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - off)
    yield data.subarray(off, off + n)
    off += n
  }
}

interface Received { bytes: number, sha: string }

// ---- Bounded waits ----

/** Rejects with a message naming `what` (plus diagnostics) if `p` does not settle in time. */
const within = <T>(p: Promise<T>, what: string, diag?: () => string, ms = WAIT_MS): Promise<T> => withTimeout(p, { what, diag, timeoutMs: ms })

/** Polls `cond` until it holds; bounded. */
const until = (cond: () => boolean, what: string, diag?: () => string, ms = WAIT_MS): Promise<void> => waitFor(cond, { what, diag, timeoutMs: ms })

/**
 * Waits for `p` while `progress()` keeps changing: fails if it stalls for `stallMs` or the whole
 * wait exceeds `capMs`. For bulk transfers whose speed depends on how busy the machine is.
 */
async function whileProgressing<T> (p: Promise<T>, progress: () => number, what: string, diag: () => string,
  stallMs = WAIT_MS, capMs = 90_000): Promise<T> {
  const start = Date.now()
  let last = progress()
  let lastChange = start
  let timer: NodeJS.Timeout | undefined
  const watchdog = new Promise<never>((_resolve, reject) => {
    timer = setInterval(() => {
      const now = Date.now()
      const current = progress()
      if (current !== last) { last = current; lastChange = now }
      if (now - lastChange > stallMs || now - start > capMs) {
        const why = now - lastChange > stallMs ? `no progress for ${stallMs} ms` : `not done after ${capMs} ms`
        reject(new Error(`${why} waiting for ${what} (progress ${current})\n${diag()}`))
      }
    }, 100)
  })
  try {
    return await Promise.race([p, watchdog])
  } finally {
    clearInterval(timer)
  }
}

/** Marks `p` as handled, so that when a test fails early its pending I/O cannot surface as an unhandled rejection. */
function handled<T> (p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

// ---- Stream I/O on both implementations ----

/** Reads an mport stream to its end (flowing mode; never destroys it, unlike for-await). */
function readMport (s: MuxStream, onBytes?: (n: number) => void): Promise<Received> {
  return handled(new Promise((resolve, reject) => {
    const h = createHash('sha256')
    let bytes = 0
    s.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      h.update(chunk)
      onBytes?.(chunk.length)
    })
    s.once('end', () => resolve({ bytes, sha: h.digest('hex') }))
    s.once('error', reject)
    s.once('close', () => { if (!s.readableEnded) reject(new Error(`mport stream ${s.id} closed before its end`)) })
  }))
}

/** Writes `data` honouring backpressure, then optionally ends (FIN). */
function writeMport (s: MuxStream, data: Buffer, end = true): Promise<void> {
  return handled((async () => {
    for (const chunk of chunksOf(data)) {
      if (!s.write(chunk)) await drainOf(s)
    }
    if (end) {
      s.end()
      if (!s.writableFinished) await once(s, 'finish')
    }
  })())
}

function drainOf (s: MuxStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      s.off('drain', onDrain)
      s.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(s.errored ?? new Error(`mport stream ${s.id} closed while waiting for drain`))
    s.on('drain', onDrain)
    s.on('close', onClose)
  })
}

function readLibp2p (s: Libp2pStream, onBytes?: (n: number) => void): Promise<Received> {
  return handled((async () => {
    const h = createHash('sha256')
    let bytes = 0
    for await (const chunk of s.source) {
      const buf = toBuffer(chunk)
      bytes += buf.length
      h.update(buf)
      onBytes?.(buf.length)
    }
    return { bytes, sha: h.digest('hex') }
  })())
}

/** Chunks of `data` for a libp2p sink; with a gate, the first `gateAt` bytes go out, then it waits. */
async function * libp2pChunks (data: Buffer, gate?: Promise<void>, gateAt = 0): AsyncGenerator<Uint8Array> {
  if (gate !== undefined) {
    yield * chunksOf(data.subarray(0, gateAt))
    await gate
    data = data.subarray(gateAt)
  }
  yield * chunksOf(data)
}

// ---- A loopback TCP connection with mport on one end and libp2p-yamux on the other ----

interface Role {
  name: string
  /** mport is the yamux client (odd ids) and dials; libp2p is the server. */
  mportClient: boolean
}

const ROLES: Role[] = [
  { name: 'mport client ↔ libp2p server', mportClient: true },
  { name: 'libp2p client ↔ mport server', mportClient: false },
]

interface Pair {
  session: Session
  peer: Libp2pPeer
  /** Streams opened by libp2p, in order of arrival at mport. */
  incoming: MuxStream[]
  /** Streams opened by mport, in order of arrival at libp2p. */
  libp2pIncoming: Libp2pStream[]
  /** Frames on the wire, for failure messages. */
  diag: () => string
}

interface PairOptions {
  mport?: Partial<MuxConfig>
  libp2p?: Omit<Libp2pYamuxOptions, 'client' | 'onIncomingStream'>
  onMportStream?: (s: MuxStream) => void
  onLibp2pStream?: (s: Libp2pStream) => void
}

async function connectPair (t: Test, role: Role, opts: PairOptions = {}): Promise<Pair> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await within(once(server, 'listening'), 'the TCP listener')
  const { port } = server.address() as net.AddressInfo
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const dialer = net.connect(port, '127.0.0.1')
  await within(once(dialer, 'connect'), 'the TCP connection')
  const [acceptedSocket] = await within(accepted, 'the accepted TCP connection')
  for (const s of [dialer, acceptedSocket]) s.setNoDelay(true)
  const mportSocket = role.mportClient ? dialer : acceptedSocket
  const libp2pSocket = role.mportClient ? acceptedSocket : dialer

  const incoming: MuxStream[] = []
  const libp2pIncoming: Libp2pStream[] = []
  const peer = runLibp2pYamux(libp2pSocket, {
    ...opts.libp2p,
    client: !role.mportClient,
    onIncomingStream: s => {
      libp2pIncoming.push(s)
      opts.onLibp2pStream?.(s)
    },
  })
  const session = new Session(mportSocket, { client: role.mportClient, ...opts.mport })
  session.on('stream', s => {
    incoming.push(s)
    opts.onMportStream?.(s)
  })
  const diag = (): string =>
    `mport → libp2p (last frames):\n${peer.received.tail()}\nlibp2p → mport (last frames):\n${peer.sent.tail()}\n` +
    `libp2p errors: ${JSON.stringify(peer.errors)}; mport session error: ${session.error?.message ?? 'none'}`

  t.teardown(async () => {
    session.destroy()
    peer.muxer.abort(new Error('test teardown'))
    mportSocket.destroy()
    libp2pSocket.destroy()
    server.close()
    await within(peer.done, 'libp2p pumps to stop at teardown', diag, 5_000)
  })
  return { session, peer, incoming, libp2pIncoming, diag }
}

/** Nothing on the wire or in either implementation reports a protocol or internal error. */
function assertHealthy (t: Test, pair: Pair): void {
  t.same(pair.peer.errors, [], 'libp2p logged no error')
  t.equal(pair.session.closed, false, 'mport session is open')
  t.equal(pair.peer.muxer.isClosed(), false, 'libp2p muxer is open')
  t.same(pair.peer.sent.goAways, [], 'libp2p sent no GoAway')
  t.same(pair.peer.received.goAways, [], 'mport sent no GoAway')
  t.equal(pair.peer.sent.error, undefined, 'libp2p → mport bytes decode as yamux')
  t.equal(pair.peer.received.error, undefined, 'mport → libp2p bytes decode as yamux')
}

/** libp2p drops the payload of Data|FIN when its own side is closed: mport must never send one. */
function assertNoDataFin (t: Test, pair: Pair): void {
  const dataFin = pair.peer.received.frames.filter(h => h.type === FrameType.Data && (h.flags & Flag.FIN) !== 0)
  t.equal(dataFin.length, 0, 'mport sent FIN only on window updates')
}

// ---- Tests ----

/**
 * Each side opens `n` streams at once; on every stream both sides send `size` distinct bytes
 * (payload(2 * id + 1) from mport, payload(2 * id) from libp2p), then FIN, and read to the end.
 */
async function exchange (t: Test, role: Role, n: number, size: number, opts: Pick<PairOptions, 'mport' | 'libp2p'> = {}): Promise<Pair> {
  const mportGot = new Map<number, Promise<Received>>()
  const libp2pGot = new Map<number, Promise<Received>>()
  const writes: Array<Promise<void>> = []
  let received = 0 // payload bytes read by both sides: the progress of the transfer
  const count = (bytes: number): void => { received += bytes }
  const serveMport = (s: MuxStream): void => {
    mportGot.set(s.id, readMport(s, count))
    writes.push(writeMport(s, payload(2 * s.id + 1, size)))
  }
  const serveLibp2p = (s: Libp2pStream): void => {
    const id = Number(s.id)
    libp2pGot.set(id, readLibp2p(s, count))
    writes.push(handled(s.sink(libp2pChunks(payload(2 * id, size)))))
  }
  const pair = await connectPair(t, role, { ...opts, onMportStream: serveMport, onLibp2pStream: serveLibp2p })
  const { session, peer } = pair

  for (let i = 0; i < n; i++) {
    serveMport(session.open())
    serveLibp2p(peer.muxer.newStream())
  }
  // Pings both ways while the streams move data: control frames must not be starved.
  // (libp2p queues its frames behind its data, so these take as long as the machine is busy.)
  const progress = (): number => received
  const [mportRtt, libp2pRtt] = await whileProgressing(Promise.all([session.ping(), peer.muxer.ping()]), progress, 'pings under load', pair.diag)
  t.ok(mportRtt > 0, `mport ping answered under load (${mportRtt.toFixed(2)} ms)`)
  t.ok(libp2pRtt >= 0, 'libp2p ping answered under load')

  await whileProgressing(until(() => mportGot.size === 2 * n && libp2pGot.size === 2 * n, 'every stream to arrive', undefined, 90_000),
    progress, `all ${2 * n} streams to reach each side`, pair.diag)
  t.equal(mportGot.size, 2 * n, `mport saw ${2 * n} streams`)
  t.equal(libp2pGot.size, 2 * n, `libp2p saw ${2 * n} streams`)
  await whileProgressing(Promise.all(writes), progress, `all ${writes.length} writers to finish`, pair.diag)
  const results = await whileProgressing(Promise.all([...mportGot.values(), ...libp2pGot.values()]), progress,
    `all readers to reach the end (${4 * n * size} B in total)`, pair.diag)
  t.equal(results.length, 4 * n)
  t.equal(received, 4 * n * size, 'every payload byte was read')

  let bad = 0
  for (const [id, r] of mportGot) {
    const got = await r
    if (got.bytes !== size || got.sha !== digestOf(2 * id, size)) bad++
  }
  for (const [id, r] of libp2pGot) {
    const got = await r
    if (got.bytes !== size || got.sha !== digestOf(2 * id + 1, size)) bad++
  }
  t.equal(bad, 0, `all ${4 * n} directions delivered ${size} intact bytes`)
  t.equal(peer.received.dataBytes, 2 * n * size, 'mport sent exactly the payload bytes')
  t.equal(peer.sent.dataBytes, 2 * n * size, 'libp2p sent exactly the payload bytes')

  await until(() => session.streamCount === 0, 'mport forgets all closed streams', () => `${session.streamCount} left\n${pair.diag()}`)
  await until(() => peer.muxer.streams.length === 0, 'libp2p forgets all closed streams', pair.diag)
  t.same(peer.received.resets, [], 'mport reset no stream')
  t.same(peer.sent.resets, [], 'libp2p reset no stream')
  assertNoDataFin(t, pair)
  assertHealthy(t, pair)
  return pair
}

t.test('hundreds of concurrent streams opened by each side, checksummed both ways', async t => {
  for (const role of ROLES) {
    t.test(role.name, async t => { await exchange(t, role, 200, 1 * MiB) })
  }
})

t.test('config variants: big frames, fixed windows, small libp2p frames', async t => {
  const variants: Array<{ name: string, opts: Pick<PairOptions, 'mport' | 'libp2p'> }> = [
    {
      name: '1 MiB frames both ways, libp2p windows up to 32 MiB',
      opts: { mport: { maxSendFrameSize: 1 * MiB }, libp2p: { maxMessageSize: 1 * MiB, maxStreamWindowSize: 32 * MiB } },
    },
    {
      name: 'mport without window auto-tuning, libp2p windows fixed at 256 KiB',
      opts: { mport: { windowAutoTuning: false }, libp2p: { maxStreamWindowSize: INITIAL_STREAM_WINDOW } },
    },
    {
      name: 'small frames: 1 KiB from libp2p, 1 KiB from mport',
      opts: { mport: { maxSendFrameSize: 1 * KiB }, libp2p: { maxMessageSize: 1 * KiB } },
    },
  ]
  for (const role of ROLES) {
    for (const v of variants) {
      t.test(`${role.name}: ${v.name}`, async t => { await exchange(t, role, 8, 512 * KiB, v.opts) })
    }
  }
})

/** Opens a stream from `opener`'s side and returns both ends once both sides know it. */
async function openBoth (pair: Pair, opener: 'mport' | 'libp2p'): Promise<{ m: MuxStream, l: Libp2pStream }> {
  if (opener === 'mport') {
    const m = pair.session.open() // the SYN goes out on a zero-length window update
    const n = pair.libp2pIncoming.length
    await until(() => pair.libp2pIncoming.length > n, 'libp2p to accept the stream', pair.diag)
    return { m, l: pair.libp2pIncoming[n]! }
  }
  const l = pair.peer.muxer.newStream()
  const n = pair.incoming.length
  await until(() => pair.incoming.length > n, 'mport to accept the stream', pair.diag)
  return { m: pair.incoming[n]!, l }
}

/** A promise and its resolve function. */
function gate (): { promise: Promise<void>, open: () => void } {
  let open!: () => void
  const promise = new Promise<void>(resolve => { open = resolve })
  return { promise, open }
}

const OPENERS = ['mport', 'libp2p'] as const

t.test('half-close: one side sends FIN, the other keeps sending, then closes', async t => {
  const A = 300 * KiB // sent by the side that closes first
  const B = 700 * KiB // sent by the other side: half before, half after it saw the FIN (needs window updates)
  for (const role of ROLES) {
    for (const finFirst of ['mport', 'libp2p'] as const) {
      for (const opener of OPENERS) {
        t.test(`${role.name}: ${finFirst} closes its write side first, stream opened by ${opener}`, async t => {
          const pair = await connectPair(t, role)
          const { m, l } = await openBoth(pair, opener)
          const dataA = payload(11, A)
          const dataB = payload(12, B)
          let mportGot: Promise<Received>
          let libp2pGot: Promise<Received>
          let writers: Promise<unknown>
          if (finFirst === 'mport') {
            const sawFin = gate()
            mportGot = readMport(m)
            libp2pGot = handled(readLibp2p(l).finally(sawFin.open))
            writers = handled(Promise.all([writeMport(m, dataA), l.sink(libp2pChunks(dataB, sawFin.promise, B / 2))]))
            await within(sawFin.promise, 'libp2p to see the FIN from mport', pair.diag)
          } else {
            mportGot = readMport(m)
            libp2pGot = readLibp2p(l)
            const mportWrites = handled((async () => {
              await writeMport(m, dataB.subarray(0, B / 2), false)
              await within(mportGot, 'mport to see the FIN from libp2p', pair.diag)
              t.equal(m.state, StreamState.RemoteClose, 'mport stream is half-closed by the peer')
              await writeMport(m, dataB.subarray(B / 2))
            })())
            writers = handled(Promise.all([l.sink(libp2pChunks(dataA)), mportWrites]))
          }
          await within(writers, 'both writers to finish', pair.diag)
          const [fromMport, fromLibp2p] = await within(Promise.all([libp2pGot, mportGot]), 'both readers to reach the end', pair.diag)
          const [first, second] = finFirst === 'mport' ? [fromMport, fromLibp2p] : [fromLibp2p, fromMport]
          t.same(first, { bytes: A, sha: sha256(dataA) }, `${finFirst}'s bytes before its FIN arrived intact`)
          t.same(second, { bytes: B, sha: sha256(dataB) }, 'the other side\'s bytes, sent before and after the FIN, arrived intact')

          await until(() => m.state === StreamState.Closed && m.destroyed, 'the mport stream to be closed', pair.diag)
          await until(() => l.status === 'closed', 'the libp2p stream to be closed', () => `status ${l.status}\n${pair.diag()}`)
          await until(() => pair.session.streamCount === 0 && pair.peer.muxer.streams.length === 0, 'both sides to forget the stream', pair.diag)
          t.same(pair.peer.received.resets, [], 'mport sent no RST')
          t.same(pair.peer.sent.resets, [], 'libp2p sent no RST')
          assertNoDataFin(t, pair)
          assertHealthy(t, pair)
        })
      }
    }
  }
})

t.test('reset: mport destroy() reaches libp2p as a reset', async t => {
  for (const role of ROLES) {
    for (const opener of OPENERS) {
      t.test(`${role.name}, stream opened by ${opener}`, async t => {
        const pair = await connectPair(t, role)
        const { m, l } = await openBoth(pair, opener)
        let libp2pBytes = 0
        const libp2pRead = readLibp2p(l, n => { libp2pBytes += n })
        // libp2p writes more than the window while mport does not read: its sink waits for credit.
        const libp2pSink = handled(l.sink(libp2pChunks(payload(21, 1 * MiB))))
        m.write(payload(22, 100 * KiB))
        await until(() => libp2pBytes === 100 * KiB, 'libp2p to receive 100 KiB', pair.diag)
        await until(() => m.recvWindow === 0, 'libp2p to fill mport\'s receive window', pair.diag)
        m.destroy()
        t.equal(m.state, StreamState.Reset, 'mport stream is reset')

        const err = await within(libp2pRead.then(() => undefined, (e: Error) => e), 'libp2p\'s read to fail', pair.diag)
        t.equal(err?.name, 'StreamResetError', 'libp2p reader fails with StreamResetError')
        t.equal(l.status, 'reset', 'libp2p stream status is reset')
        await within(libp2pSink.catch(() => {}), 'libp2p\'s blocked write to stop', pair.diag)
        t.same(pair.peer.received.resets, [m.id], 'mport sent one RST, for this stream')
        await until(() => pair.session.streamCount === 0 && pair.peer.muxer.streams.length === 0, 'both sides to forget the stream', pair.diag)
        t.ok(await within(pair.session.ping(), 'a ping after the reset', pair.diag) > 0, 'session still works')
        assertHealthy(t, pair)
      })
    }
  }
})

t.test('reset: libp2p abort() reaches mport as MPORT_ERR_STREAM_RESET', async t => {
  for (const role of ROLES) {
    for (const opener of OPENERS) {
      t.test(`${role.name}, stream opened by ${opener}`, async t => {
        const pair = await connectPair(t, role)
        const { m, l } = await openBoth(pair, opener)
        const release = gate()
        t.teardown(release.open)
        let mportBytes = 0
        m.on('data', (chunk: Buffer) => { mportBytes += chunk.length })
        const mportError = new Promise<Error>(resolve => m.once('error', resolve))
        // mport writes more than the window while libp2p does not read: its writer waits for credit.
        const mportWrite = writeMport(m, payload(31, 1 * MiB)).then(() => undefined, (e: Error) => e)
        void l.sink(libp2pChunks(payload(32, 200 * KiB), release.promise, 100 * KiB)).catch(() => {})
        await until(() => mportBytes === 100 * KiB && m.sendWindow === 0, 'mport to receive 100 KiB and fill libp2p\'s window', pair.diag)
        l.abort(new Error('test abort'))
        release.open()

        const err = await within(mportError, 'the mport stream to error', pair.diag)
        t.match(err, { name: 'StreamResetError', code: 'MPORT_ERR_STREAM_RESET' }, 'mport stream fails with a reset error')
        const writeErr = await within(mportWrite, 'mport\'s blocked write to fail', pair.diag)
        t.match(writeErr, { code: 'MPORT_ERR_STREAM_RESET' }, 'mport\'s pending write fails with the reset')
        t.equal(m.state, StreamState.Reset, 'mport stream state is Reset')
        t.same(pair.peer.sent.resets, [m.id], 'libp2p sent one RST, for this stream')
        await until(() => pair.session.streamCount === 0 && pair.peer.muxer.streams.length === 0, 'both sides to forget the stream', pair.diag)
        t.ok(await within(pair.session.ping(), 'a ping after the reset', pair.diag) > 0, 'session still works')
        t.same(pair.peer.received.resets, [], 'mport did not answer the RST with one')
        assertHealthy(t, pair)
      })
    }
  }
})

t.test('ping: both implementations answer each other, including keepalive and libp2p\'s opening ping', async t => {
  for (const role of ROLES) {
    t.test(role.name, async t => {
      const pair = await connectPair(t, role, {
        mport: { keepAliveInterval: 20, keepAliveTimeout: 5_000 },
        libp2p: { keepAliveInterval: 20 },
      })
      const { session, peer } = pair
      const acks = (frames: typeof peer.sent.frames): number[] =>
        frames.filter(h => h.type === FrameType.Ping && h.flags === Flag.ACK).map(h => h.length)

      // libp2p pings the moment it starts (ping id 0): mport must answer exactly it.
      await until(() => acks(peer.received.frames).includes(0), 'mport to answer libp2p\'s opening ping', pair.diag)

      const mportRtts: number[] = []
      const libp2pRtts: number[] = []
      await within(Promise.all([
        (async () => { for (let i = 0; i < 10; i++) mportRtts.push(await session.ping()) })(),
        (async () => { for (let i = 0; i < 10; i++) libp2pRtts.push(await peer.muxer.ping()) })(),
      ]), '10 pings each way', pair.diag)
      t.ok(mportRtts.every(rtt => rtt > 0), `mport pings resolve with RTT > 0 (${mportRtts.map(r => r.toFixed(2)).join(', ')} ms)`)
      t.ok(session.rtt > 0, 'session.rtt is set')
      t.equal(libp2pRtts.length, 10, 'libp2p pings resolve')
      t.ok(libp2pRtts.every(rtt => rtt >= 0), 'libp2p RTTs are non-negative (Date.now resolution)')

      // Keepalive on both sides every 20 ms: each answers the other's pings many times over.
      const mportAcks = acks(peer.received.frames).length
      const libp2pAcks = acks(peer.sent.frames).length
      await until(() => acks(peer.received.frames).length >= mportAcks + 5 && acks(peer.sent.frames).length >= libp2pAcks + 5,
        '5 more keepalive pings answered each way', pair.diag)
      // Every ping is answered with its own value, once.
      const synValues = (frames: typeof peer.sent.frames): number[] =>
        frames.filter(h => h.type === FrameType.Ping && h.flags === Flag.SYN).map(h => h.length)
      const libp2pPings = synValues(peer.sent.frames)
      const mportAnswers = acks(peer.received.frames)
      t.same(mportAnswers, libp2pPings.slice(0, mportAnswers.length), 'mport answered libp2p\'s pings in order with their values')
      const mportPings = synValues(peer.received.frames)
      const libp2pAnswers = acks(peer.sent.frames)
      t.same(libp2pAnswers, mportPings.slice(0, libp2pAnswers.length), 'libp2p answered mport\'s pings in order with their values')
      assertHealthy(t, pair)
    })
  }
})

t.test('GoAway: mport close() ends a libp2p session cleanly', async t => {
  for (const role of ROLES) {
    t.test(role.name, async t => {
      const pair = await connectPair(t, role)
      const { session, peer } = pair
      // Use the session first: one stream each way, completed.
      for (const opener of OPENERS) {
        const { m, l } = await openBoth(pair, opener)
        const got = handled(Promise.all([readMport(m), readLibp2p(l)]))
        await within(Promise.all([writeMport(m, payload(41, 64 * KiB)), l.sink(libp2pChunks(payload(42, 64 * KiB)))]), 'writes', pair.diag)
        await within(got, 'reads', pair.diag)
      }
      await until(() => session.streamCount === 0 && peer.muxer.streams.length === 0, 'both sides to forget the streams', pair.diag)

      const closeErr: Array<Error | undefined> = []
      session.on('close', err => closeErr.push(err))
      await within(session.close(), 'mport close() to resolve', pair.diag)
      t.same(closeErr, [undefined], 'mport session closed without error')
      t.equal(session.error, undefined)
      t.equal(session.closed, true)
      await within(peer.done, 'libp2p to stop', pair.diag)
      t.equal(peer.muxer.isClosed(), true, 'libp2p muxer closed')
      t.same(peer.received.goAways, [GoAwayCode.Normal], 'mport sent GoAway(normal)')
      t.ok(peer.sent.goAways.every(code => code === GoAwayCode.Normal), 'libp2p sent no error GoAway')
      t.same(peer.errors, [], 'libp2p logged no error')
      t.throws(() => peer.muxer.newStream(), { name: 'MuxerClosedError' }, 'libp2p refuses new streams')
    })
  }
})

t.test('GoAway: mport close() with a stream still open ends both sides without a protocol error', async t => {
  // libp2p treats any GoAway as the end of the connection: it resets its streams locally (no
  // RST on the wire) and closes. mport's close() must still resolve, and its stream must fail
  // rather than hang.
  for (const role of ROLES) {
    t.test(role.name, async t => {
      const pair = await connectPair(t, role)
      const { session, peer } = pair
      const { m, l } = await openBoth(pair, 'mport')
      const libp2pRead = readLibp2p(l).then(() => undefined, (e: Error) => e)
      const mportFailed = new Promise<Error | undefined>(resolve => {
        m.once('error', resolve)
        m.once('close', () => resolve(undefined))
      })
      m.write(payload(45, 100 * KiB))
      await within(session.close(), 'mport close() to resolve', pair.diag)
      const err = await within(libp2pRead, 'libp2p\'s read to end', pair.diag)
      t.equal(err?.name, 'StreamResetError', 'libp2p reset its stream on GoAway')
      const mErr = await within(mportFailed, 'the mport stream to end', pair.diag)
      t.ok(mErr === undefined || ['MPORT_ERR_SESSION_CLOSED', 'MPORT_ERR_STREAM_RESET'].includes((mErr as { code?: string }).code ?? ''),
        `the mport stream failed with a session/stream error (${(mErr as { code?: string } | undefined)?.code ?? 'no error'})`)
      t.equal(m.destroyed, true, 'the mport stream is gone')
      t.equal(session.closed, true, 'the mport session is closed')
      t.notOk(session.error instanceof ProtocolError, `no protocol error (${session.error?.message ?? 'no error'})`)
      await within(peer.done, 'libp2p to stop', pair.diag)
      t.same(peer.received.goAways, [GoAwayCode.Normal], 'mport sent GoAway(normal) only')
      t.ok(peer.sent.goAways.every(code => code === GoAwayCode.Normal), 'libp2p sent no error GoAway')
      t.same(peer.errors, [], 'libp2p logged no error')
    })
  }
})

t.test('GoAway: libp2p close() ends an mport session cleanly, after closing an open stream', async t => {
  for (const role of ROLES) {
    t.test(role.name, async t => {
      const pair = await connectPair(t, role)
      const { session, peer } = pair
      // An open stream whose mport side echoes and closes when libp2p closes: libp2p's close()
      // closes it gracefully (FIN both ways) before its GoAway.
      const { m, l } = await openBoth(pair, 'libp2p')
      m.pipe(m)
      const echoed = readLibp2p(l)
      void l.sink(libp2pChunks(payload(51, 100 * KiB))).catch(() => {})
      const got = await within(echoed, 'the echo', pair.diag)
      t.same(got, { bytes: 100 * KiB, sha: digestOf(51, 100 * KiB) }, 'echo intact')

      const goaway: number[] = []
      const closeErr: Array<Error | undefined> = []
      session.on('goaway', code => goaway.push(code))
      session.on('close', err => closeErr.push(err))
      await within(peer.muxer.close(), 'libp2p close() to resolve', pair.diag)
      await until(() => session.closed, 'the mport session to close', pair.diag)
      t.same(goaway, [GoAwayCode.Normal], 'mport saw GoAway(normal)')
      t.same(closeErr, [undefined], 'mport session closed without error')
      t.equal(session.error, undefined)
      t.same(peer.sent.goAways, [GoAwayCode.Normal], 'libp2p sent GoAway(normal)')
      t.same(peer.received.goAways, [], 'mport sent no GoAway back')
      t.same(peer.received.resets, [], 'mport reset nothing')
      t.equal(m.state, StreamState.Closed, 'the stream was closed gracefully')
      t.throws(() => session.open(), { code: 'MPORT_ERR_SESSION_CLOSED' }, 'mport refuses new streams')
      await within(peer.done, 'libp2p to stop', pair.diag)
      t.same(peer.errors, [], 'libp2p logged no error')
    })
  }
})

t.test('slow libp2p reader: mport stops at the window and buffers no more than its highWaterMark', async t => {
  const TOTAL = 2 * MiB
  const MAX_CHUNK = 64 * KiB // chunksOf() never writes more at once
  for (const role of ROLES) {
    for (const opener of OPENERS) {
      t.test(`${role.name}, stream opened by ${opener}`, async t => {
        const pair = await connectPair(t, role)
        const { m, l } = await openBoth(pair, opener)
        const data = payload(61, TOTAL)
        let accepted = 0
        const writer = handled((async () => {
          for (const chunk of chunksOf(data)) {
            accepted += chunk.length
            if (!m.write(chunk)) await drainOf(m)
          }
          m.end()
        })())
        await until(() => m.sendWindow === 0 && m.writableNeedDrain, 'mport\'s send window to reach 0 with the writer blocked', pair.diag)
        // A ping round trip: any credit libp2p might have sent has arrived by now.
        await within(pair.session.ping(), 'a ping', pair.diag)
        t.equal(m.sendWindow, 0, 'send window is 0')
        t.equal(pair.peer.received.dataBytes, INITIAL_STREAM_WINDOW, 'exactly the 256 KiB window went on the wire')
        t.ok(m.writableLength <= m.writableHighWaterMark + MAX_CHUNK,
          `mport buffers ${m.writableLength} B, at most highWaterMark (${m.writableHighWaterMark}) + one chunk`)
        t.ok(accepted <= INITIAL_STREAM_WINDOW + m.writableLength, `the writer was held back (accepted ${accepted} of ${TOTAL})`)
        t.ok(accepted < TOTAL, 'the writer is blocked')

        const got = await within(readLibp2p(l), 'the libp2p reader to read everything', pair.diag)
        await within(writer, 'the mport writer to finish', pair.diag)
        t.same(got, { bytes: TOTAL, sha: sha256(data) }, 'all bytes intact after the reader resumed')
        t.equal(pair.peer.received.dataBytes, TOTAL, 'no byte sent twice')
        assertNoDataFin(t, pair)
        assertHealthy(t, pair)
      })
    }
  }
})

t.test('slow mport reader: libp2p stops at the window and mport holds exactly the window', async t => {
  const TOTAL = 2 * MiB
  for (const role of ROLES) {
    for (const opener of OPENERS) {
      t.test(`${role.name}, stream opened by ${opener}`, async t => {
        const pair = await connectPair(t, role)
        const { m, l } = await openBoth(pair, opener)
        const data = payload(71, TOTAL)
        let sinkDone = false
        const sink = handled(l.sink(libp2pChunks(data)).finally(() => { sinkDone = true }))
        await until(() => m.recvWindow === 0, 'mport\'s receive window to fill', pair.diag)
        await within(pair.session.ping(), 'a ping', pair.diag)
        t.equal(m.recvWindow, 0, 'receive window is 0')
        t.equal(m.readableLength, INITIAL_STREAM_WINDOW, 'mport holds exactly the window, unread')
        t.equal(pair.peer.sent.dataBytes, INITIAL_STREAM_WINDOW, 'libp2p sent exactly the window')
        t.equal(sinkDone, false, 'libp2p\'s writer is waiting for credit')

        const got = await within(readMport(m), 'the mport reader to read everything', pair.diag)
        await within(sink, 'the libp2p writer to finish', pair.diag)
        t.same(got, { bytes: TOTAL, sha: sha256(data) }, 'all bytes intact after the reader resumed')
        t.equal(pair.peer.sent.dataBytes, TOTAL, 'no byte sent twice')
        assertHealthy(t, pair)
      })
    }
  }
})

t.test('empty streams: opened and closed at once, without a byte of data', async t => {
  const N = 20
  for (const role of ROLES) {
    t.test(role.name, async t => {
      const ended: Array<Promise<Received>> = []
      const pair = await connectPair(t, role, {
        // Each side closes its write side as soon as it sees the stream, and reads to the end.
        onMportStream: s => { ended.push(readMport(s)); s.end() },
        onLibp2pStream: s => { ended.push(readLibp2p(s)); void handled(s.sink([])) },
      })
      for (let i = 0; i < N; i++) {
        const m = pair.session.open()
        ended.push(readMport(m))
        m.end() // SYN and FIN together, on one window update
        const l = pair.peer.muxer.newStream()
        ended.push(readLibp2p(l))
        void handled(l.sink([]))
      }
      await until(() => ended.length === 4 * N, `${2 * N} streams to reach the other side`, pair.diag)
      const results = await within(Promise.all(ended), 'every stream to end on both sides', pair.diag)
      t.ok(results.every(r => r.bytes === 0), 'no data on any stream')
      const synFin = pair.peer.received.frames.filter(h => h.type === FrameType.WindowUpdate && h.flags === (Flag.SYN | Flag.FIN))
      t.equal(synFin.length, N, 'mport opened and closed each of its streams with one SYN|FIN window update')
      await until(() => pair.session.streamCount === 0 && pair.peer.muxer.streams.length === 0, 'both sides to forget every stream', pair.diag)
      t.same(pair.peer.received.resets, [], 'mport reset nothing')
      t.same(pair.peer.sent.resets, [], 'libp2p reset nothing')
      assertHealthy(t, pair)
    })
  }
})

t.test('stream limits: a refused SYN is answered with RST, both ways, and the session goes on', async t => {
  for (const role of ROLES) {
    t.test(`${role.name}: libp2p refuses mport's third stream (maxInboundStreams 2)`, async t => {
      const pair = await connectPair(t, role, { libp2p: { maxInboundStreams: 2 } })
      const streams = [pair.session.open(), pair.session.open(), pair.session.open()]
      const refused = streams[2]!
      const err = await within(new Promise<Error>(resolve => refused.once('error', resolve)), 'the third stream to be refused', pair.diag)
      t.match(err, { code: 'MPORT_ERR_STREAM_RESET' }, 'the refused stream fails with a reset')
      t.same(pair.peer.sent.resets, [refused.id], 'libp2p sent RST for the third stream only')
      t.equal(pair.libp2pIncoming.length, 2, 'libp2p accepted two')
      // The accepted ones still work: one round trip each.
      for (const [i, l] of pair.libp2pIncoming.entries()) {
        const m = streams[i]!
        const got = readMport(m)
        void handled(l.sink(libp2pChunks(payload(80 + i, 10 * KiB))))
        await within(writeMport(m, Buffer.alloc(0)), 'mport FIN', pair.diag)
        t.same(await within(got, 'the reply', pair.diag), { bytes: 10 * KiB, sha: digestOf(80 + i, 10 * KiB) }, `stream ${m.id} works`)
      }
      assertHealthy(t, pair)
    })

    t.test(`${role.name}: mport refuses libp2p's third stream (maxConcurrentStreams 2)`, async t => {
      const pair = await connectPair(t, role, { mport: { maxConcurrentStreams: 2 } })
      const streams = [pair.peer.muxer.newStream(), pair.peer.muxer.newStream(), pair.peer.muxer.newStream()]
      const reads = streams.map(l => readLibp2p(l).then(() => undefined, (e: Error) => e))
      const err = await within(reads[2]!, 'the third stream to be refused', pair.diag)
      t.equal(err?.name, 'StreamResetError', 'libp2p\'s refused stream fails with StreamResetError')
      t.equal(streams[2]!.status, 'reset')
      t.same(pair.peer.received.resets, [Number(streams[2]!.id)], 'mport sent RST for the third stream only')
      t.equal(pair.incoming.length, 2, 'mport accepted two')
      for (const [i, m] of pair.incoming.entries()) {
        void handled(streams[i]!.sink([]))
        await within(writeMport(m, payload(90 + i, 10 * KiB)), 'mport write', pair.diag)
        t.equal(await within(reads[i]!, 'the reply', pair.diag), undefined, `stream ${m.id} ended cleanly`)
      }
      assertHealthy(t, pair)
    })
  }
})
