/**
 * Session: one yamux session over any Node Duplex (net.Socket, tls.TLSSocket, an in-memory pair).
 *
 * The session owns the socket: it reads it through a FrameDecoder and dispatches frames to its
 * streams, and writes it only through its FrameWriter (writer.ts). The socket is never paused
 * for data: every stream's window bounds what the peer may send.
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import {
  DuplicateStreamError, goAwayCodeFor, InvalidStreamIdError, MportError, RemoteGoAwayError,
  SessionClosedError, StreamLimitError, TransportError,
} from '../errors.js'
import { verifyMuxConfig, type MuxConfig } from './config.js'
import { FrameDecoder, type FrameSink } from './decoder.js'
import { Flag, FrameType, GoAwayCode, MAX_UINT32, type FrameHeader } from './frame.js'
import { abort, addSendCredit, endOfData, receiveData, receiveFlags, reserveRecv } from './internal.js'
import { Pinger } from './ping.js'
import type { ChunkSource } from './chunk-source.js'
import { ReceiveBufferPool } from './receive-buffers.js'
import { MuxStream, StreamState, type StreamLink } from './stream.js'
import { neverOpened, type SessionStats, type StrayFrame } from './stray.js'
import { FrameWriter } from './writer.js'

/** Options of a Session: which end it is, plus any MuxConfig settings to override. */
export interface SessionOptions extends Partial<MuxConfig> {
  /** Client sessions open odd stream ids, servers even ones. */
  client: boolean
  /**
   * Where the socket's bytes come from when it reads into a reused buffer (net.Socket's
   * `onread`); by default the session listens for 'data'.
   */
  input?: ChunkSource
  /**
   * Where streams gather large received frames; sessions given the same pool share its idle
   * buffers (a relay's client sessions do). By default each session has its own.
   */
  receiveBuffers?: ReceiveBufferPool
}

/** The events a Session emits, with their arguments. */
export interface SessionEvents {
  /** A stream opened by the peer (when no listener is attached, streams wait for accept()). */
  stream: [stream: MuxStream]
  /** The peer sent GoAway: no new streams. */
  goaway: [code: number]
  /** The session ended; `err` is set when it ended because of an error. */
  close: [err?: Error]
  /** The session ended because of an error; emitted only when a listener is attached. */
  error: [err: Error]
  /**
   * A frame for a stream that is not open was dropped (counted in `stats`): a debug hook.
   * Listeners run inside the frame decoder and must not throw.
   */
  stray: [frame: StrayFrame]
  /** A ping was answered: the round-trip time in ms (keepalive pings included), for metrics. */
  rtt: [rttMs: number]
}

/**
 * A yamux session over one connection: opens and accepts MuxStreams, keeps the connection
 * alive with pings, and ends with GoAway. It owns the socket; the only writer to it is its own.
 */
export class Session extends EventEmitter<SessionEvents> {
  /** The settings in effect: the options over defaultMuxConfig, verified. */
  readonly config: Readonly<MuxConfig>
  /** True for the client end (odd stream ids). */
  readonly client: boolean
  readonly #socket: Duplex
  readonly #input: ChunkSource | undefined
  readonly #decoder: FrameDecoder
  readonly #writer: FrameWriter
  readonly #pinger: Pinger
  readonly #streams = new Map<number, MuxStream>()
  readonly #link: StreamLink
  #nextId: number
  #maxRemoteId = 0
  readonly #stats: SessionStats = { strayClosed: 0, strayNeverOpened: 0, strayBytes: 0, strayResets: 0 }

  // Accept side.
  #backlog: MuxStream[] = []
  #acceptWaiters: Array<{ resolve (s: MuxStream): void, reject (e: Error): void }> = []

  // The Data frame being received, undefined when its stream is gone (payload is dropped).
  #receiving: MuxStream | undefined

  #localGoAway = false
  #remoteGoAway = false
  #closing: Promise<void> | undefined
  #closeTimer: NodeJS.Timeout | undefined
  #destroyed = false
  #error: Error | undefined

  constructor (socket: Duplex, options: SessionOptions) {
    super()
    const { client, input, receiveBuffers, ...rest } = options
    this.config = verifyMuxConfig(rest)
    this.client = client
    this.#nextId = client ? 1 : 2
    this.#socket = socket
    this.#input = input
    this.#decoder = new FrameDecoder(this.#sink, this.config.maxFrameSize)
    const writer = this.#writer = new FrameWriter(socket, {
      writeBufferSize: this.config.writeBufferSize,
      maxControlBacklog: this.config.maxControlBacklog,
      onOverflow: err => this.destroy(err),
    })
    this.#pinger = new Pinger({
      send: value => writer.queueControl(FrameType.Ping, Flag.SYN, 0, value),
      onDead: err => this.destroy(err),
      keepAliveInterval: this.config.keepAliveInterval,
      keepAliveTimeout: this.config.keepAliveTimeout,
      maxPingsPerSecond: this.config.maxPingsPerSecond,
      onRtt: rtt => this.emit('rtt', rtt),
    })
    this.#link = {
      maxSendFrameSize: this.config.maxSendFrameSize,
      maxStreamWindow: this.config.maxStreamWindow,
      windowAutoTuning: this.config.windowAutoTuning,
      schedule: s => writer.schedule(s),
      writeFrame: (type, flags, id, length, payload) => writer.writeFrame(type, flags, id, length, payload),
      // Plain credit can wait for the end of this event-loop turn: many streams' updates then
      // share one socket write instead of one write each.
      sendWindowUpdate: (id, flags, delta) => writer.queueControl(FrameType.WindowUpdate, flags, id, delta, flags === 0),
      sendReset: id => writer.queueControl(FrameType.WindowUpdate, Flag.RST, id, 0),
      release: s => this.#release(s),
      rtt: () => this.#pinger.rtt,
      receiveBuffers: receiveBuffers ?? new ReceiveBufferPool(),
    }
    if (input !== undefined) input.attach(this.#onSocketData)
    else socket.on('data', this.#onSocketData)
    socket.on('end', () => this.#onSocketGone())
    socket.on('close', () => this.#onSocketGone())
    socket.on('error', (err: Error) => this.destroy(new TransportError(`connection failed: ${err.message}`, { cause: err })))
    if (this.config.windowAutoTuning) void this.#pinger.ping() // RTT for window auto-tuning
  }

  /** Latest measured round-trip time in ms (0 until a ping was answered). */
  get rtt (): number { return this.#pinger.rtt }
  /** Open streams, both directions. */
  get streamCount (): number { return this.#streams.size }
  /** True once the session has ended (destroyed, or closed and its streams finished). */
  get closed (): boolean { return this.#destroyed }
  /** The error that ended the session, if any. */
  get error (): Error | undefined { return this.#error }
  /** A snapshot of the session's counters (frames dropped for streams that are not open). */
  get stats (): SessionStats { return { ...this.#stats } }

  /** Opens a new stream; data written before the next tick rides with its SYN. */
  open (): MuxStream {
    if (this.#destroyed || this.#localGoAway) throw new SessionClosedError('session is closed', { cause: this.#error })
    if (this.#remoteGoAway) throw new SessionClosedError('peer sent GoAway: no new streams')
    if (this.#streams.size >= this.config.maxConcurrentStreams) throw new StreamLimitError(this.config.maxConcurrentStreams)
    const id = this.#nextId
    if (id > MAX_UINT32) throw new SessionClosedError('stream ids exhausted')
    this.#nextId += 2
    const stream = new MuxStream(id, this.#link, StreamState.Init)
    this.#streams.set(id, stream)
    return stream
  }

  /** Resolves with the next stream opened by the peer (when no 'stream' listener takes it). */
  accept (): Promise<MuxStream> {
    const s = this.#backlog.shift()
    if (s !== undefined) return Promise.resolve(s)
    if (this.#destroyed) return Promise.reject(new SessionClosedError('session is closed', { cause: this.#error }))
    return new Promise((resolve, reject) => this.#acceptWaiters.push({ resolve, reject }))
  }

  /** Measures the round-trip time in ms. */
  ping (): Promise<number> {
    return this.#pinger.ping()
  }

  /**
   * Graceful close: GoAway(normal), no new streams either way, open streams may finish for up
   * to `closeTimeout` ms, then the connection is ended.
   */
  close (): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closing = new Promise<void>(resolve => {
      if (this.#destroyed) return resolve()
      this.once('close', () => resolve())
      this.#sendGoAway(GoAwayCode.Normal)
      for (const s of this.#backlog.splice(0)) s.destroy()
      this.#closeTimer = setTimeout(() => this.destroy(), this.config.closeTimeout)
      this.#closeTimer.unref()
      this.#finishCloseIfIdle()
    })
    return this.#closing
  }

  /** Ends the session at once: GoAway with a code for `err`, open streams fail. */
  destroy (err?: Error): void {
    if (this.#destroyed) return
    // One GoAway per session, and never one in answer to the peer's GoAway.
    if (err !== undefined && !(err instanceof RemoteGoAwayError) && !this.#localGoAway && this.#socket.writable) {
      this.#sendGoAway(goAwayCodeFor(err))
    }
    this.#destroyed = true
    this.#error = err
    clearTimeout(this.#closeTimer)
    this.#pinger.stop(new SessionClosedError('session is closed', { cause: err }))
    this.#writer.stop() // the GoAway goes out; nothing else will
    const streamErr = err === undefined ? undefined : new SessionClosedError(`session closed: ${err.message}`, { cause: err })
    // Streams never accepted first and without an error: nobody listens for one on them.
    for (const s of this.#backlog.splice(0)) s[abort](undefined)
    for (const s of this.#streams.values()) s[abort](streamErr)
    this.#streams.clear()
    for (const w of this.#acceptWaiters.splice(0)) w.reject(new SessionClosedError('session is closed', { cause: err }))
    const socket = this.#socket
    if (this.#input !== undefined) this.#input.detach()
    else socket.off('data', this.#onSocketData)
    if (socket.writable) {
      socket.end()
      setTimeout(() => socket.destroy(), 2000).unref() // a peer that never reads must not pin the socket
    } else {
      socket.destroy()
    }
    this.emit('close', err)
    if (err !== undefined && this.listenerCount('error') > 0) this.emit('error', err)
  }

  // ---- Reading ----

  readonly #onSocketData = (chunk: Buffer): void => {
    try {
      this.#pinger.onActivity()
      this.#decoder.push(chunk)
    } catch (err) {
      this.destroy(err instanceof MportError ? err : new TransportError(`internal error: ${(err as Error).message}`, { cause: err }))
    }
  }

  #onSocketGone (): void {
    if (this.#destroyed) return
    // A connection that ends after a clean GoAway with nothing open is a normal close.
    const clean = (this.#remoteGoAway || this.#localGoAway) && this.#streams.size === 0
    this.destroy(clean ? undefined : new TransportError('connection closed by peer'))
  }

  /** What the decoder calls: kept off the session's own surface. */
  readonly #sink: FrameSink = {
    onFrame: h => {
      switch (h.type) {
        case FrameType.WindowUpdate: return this.#onWindowUpdate(h)
        case FrameType.Ping: return this.#onPing(h)
        case FrameType.GoAway: return this.#onGoAway(h)
      }
    },
    onDataHeader: h => {
      const s = this.#streamFor(h)
      if (s !== undefined) s[reserveRecv](h.length)
      this.#receiving = s
    },
    onDataPayload: (_h, payload) => {
      this.#receiving?.[receiveData](payload, this.#input !== undefined)
    },
    onDataEnd: h => {
      const s = this.#receiving
      this.#receiving = undefined
      if (s === undefined) return
      s[endOfData]()
      if ((h.flags & ~Flag.SYN) !== 0) s[receiveFlags](h.flags)
    },
  }

  #onWindowUpdate (h: FrameHeader): void {
    const s = this.#streamFor(h)
    if (s === undefined) return
    if (h.length > 0) s[addSendCredit](h.length)
    if ((h.flags & ~Flag.SYN) !== 0) s[receiveFlags](h.flags)
  }

  #onPing (h: FrameHeader): void {
    if (h.streamId !== 0) throw new InvalidStreamIdError(h.streamId, 'Ping frames use stream 0')
    if (h.flags & Flag.SYN) {
      this.#pinger.onPing()
      this.#writer.queueControl(FrameType.Ping, Flag.ACK, 0, h.length)
    } else if (h.flags & Flag.ACK) {
      this.#pinger.onAck(h.length)
    }
  }

  #onGoAway (h: FrameHeader): void {
    if (h.streamId !== 0) throw new InvalidStreamIdError(h.streamId, 'GoAway frames use stream 0')
    this.#remoteGoAway = true
    this.emit('goaway', h.length)
    if (h.length !== GoAwayCode.Normal) return this.destroy(new RemoteGoAwayError(h.length))
    for (const w of this.#acceptWaiters.splice(0)) w.reject(new SessionClosedError('peer sent GoAway: no new streams'))
  }

  /** The stream a Data/WindowUpdate frame is for; creates it on SYN; undefined means drop the frame. */
  #streamFor (h: FrameHeader): MuxStream | undefined {
    const id = h.streamId
    if (id === 0) throw new InvalidStreamIdError(0, 'Data and WindowUpdate frames need a stream')
    const s = this.#streams.get(id)
    if ((h.flags & Flag.SYN) === 0) {
      if (s === undefined) this.#onStray(h)
      return s
    }
    if (s !== undefined) throw new DuplicateStreamError(id)
    if ((id % 2 === 1) === this.client) throw new InvalidStreamIdError(id, `a ${this.client ? 'server' : 'client'} must open ${this.client ? 'even' : 'odd'} ids`)
    if (id > this.#maxRemoteId) this.#maxRemoteId = id
    return this.#acceptIncoming(id)
  }

  /**
   * A frame without SYN for a stream that is not open (stray.ts): dropped, counted and
   * reported, never an error. Data for a never-opened id is answered with RST (unless it
   * carries RST itself), so a confused sender fails that one stream; nothing else changes.
   */
  #onStray (h: FrameHeader): void {
    const stats = this.#stats
    const never = neverOpened(h.streamId, { client: this.client, nextId: this.#nextId, maxRemoteId: this.#maxRemoteId })
    const isData = h.type === FrameType.Data
    const reset = never && isData && (h.flags & Flag.RST) === 0
    if (never) stats.strayNeverOpened++
    else stats.strayClosed++
    if (isData) stats.strayBytes += h.length
    if (reset) {
      stats.strayResets++
      this.#writer.queueControl(FrameType.WindowUpdate, Flag.RST, h.streamId, 0)
    }
    if (this.listenerCount('stray') > 0) this.emit('stray', { header: h, reason: never ? 'never-opened' : 'closed', reset })
  }

  #acceptIncoming (id: number): MuxStream | undefined {
    const refuse = this.#localGoAway || this.#destroyed ||
      this.#streams.size >= this.config.maxConcurrentStreams ||
      (this.listenerCount('stream') === 0 && this.#acceptWaiters.length === 0 && this.#backlog.length >= this.config.acceptBacklog)
    if (refuse) {
      this.#writer.queueControl(FrameType.WindowUpdate, Flag.RST, id, 0)
      return undefined
    }
    const stream = new MuxStream(id, this.#link, StreamState.SynReceived)
    this.#streams.set(id, stream)
    const waiter = this.#acceptWaiters.shift()
    if (waiter !== undefined) waiter.resolve(stream)
    else if (this.listenerCount('stream') > 0) this.emit('stream', stream)
    else this.#backlog.push(stream)
    return stream
  }

  #release (s: MuxStream): void {
    if (this.#streams.get(s.id) === s) this.#streams.delete(s.id)
    const i = this.#backlog.indexOf(s)
    if (i >= 0) {
      this.#backlog.splice(i, 1)
      // Never accepted, so nobody can listen: a peer's RST must not become an uncaught 'error'.
      s.on('error', () => {})
    }
    if (this.#closing !== undefined) this.#finishCloseIfIdle()
  }

  #finishCloseIfIdle (): void {
    if (this.#streams.size > 0 || this.#destroyed) return
    // Let the GoAway and last frames reach the socket before ending it.
    process.nextTick(() => { if (this.#streams.size === 0) this.destroy() })
  }

  #sendGoAway (code: number): void {
    this.#localGoAway = true
    this.#writer.queueControl(FrameType.GoAway, 0, 0, code)
  }
}
