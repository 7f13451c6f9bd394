/**
 * Runs @chainsafe/libp2p-yamux (7.x, it-pipe duplex API) over a real net.Socket, so interop
 * tests can put mport's Session on one end of a loopback TCP connection and the independent
 * implementation on the other.
 *
 * - socket → muxer.sink: the socket's async iterator, without destroy-on-return (libp2p calls
 *   return() on its source when it closes, and must still be able to flush its GoAway).
 * - muxer.source → socket: every chunk written, waiting for 'drain' when write() returns false.
 * - A ComponentLogger that records libp2p's error-level log lines, so tests can assert that
 *   libp2p saw no protocol or internal error.
 * - A WireTap on both directions of the libp2p end, decoded with mport's own FrameDecoder, so
 *   tests can assert on (and failure messages can show) the frames actually exchanged.
 */
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { format } from 'node:util'
import { yamux } from '@chainsafe/libp2p-yamux'
import { FrameDecoder, type FrameSink } from '../../src/mux/decoder.js'
import { Flag, FrameType, formatHeader, type FrameHeader } from '../../src/mux/frame.js'

/** A Uint8Array or a Uint8ArrayList (libp2p uses uint8arraylist@2 internally; duck-typed here). */
export type Chunk = Uint8Array | { subarray (): Uint8Array, readonly byteLength: number }

/** The parts of a libp2p YamuxStream (AbstractStream) the tests use. */
export interface Libp2pStream {
  readonly id: string
  /** 'open' | 'closing' | 'closed' | 'aborted' | 'reset' */
  readonly status: string
  readonly readStatus: string
  readonly writeStatus: string
  readonly source: AsyncIterable<Chunk>
  sink (source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void>
  close (): Promise<void>
  closeWrite (): Promise<void>
  closeRead (): Promise<void>
  abort (err: Error): void
}

/** The parts of a libp2p YamuxMuxer the tests use. */
export interface Libp2pMuxer {
  newStream (): Libp2pStream
  ping (): Promise<number>
  close (): Promise<void>
  abort (err: Error): void
  isClosed (): boolean
  readonly streams: Libp2pStream[]
}

export interface Libp2pYamuxOptions {
  /** The yamux client (odd stream ids); in libp2p terms direction 'outbound'. */
  client: boolean
  onIncomingStream?: (stream: Libp2pStream) => void
  enableKeepAlive?: boolean
  keepAliveInterval?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
  initialStreamWindowSize?: number
  maxStreamWindowSize?: number
  maxMessageSize?: number
}

/** Frames seen on one direction of the connection. */
export class WireTap implements FrameSink {
  /** Every non-Data frame, and Data frames that carry flags. */
  readonly frames: FrameHeader[] = []
  /** When each of `frames` was seen (performance.now(), ms). */
  readonly times: number[] = []
  dataFrames = 0
  dataBytes = 0
  error: Error | undefined
  readonly #decoder = new FrameDecoder(this, 0xffff_ffff)

  push (chunk: Buffer): void {
    if (this.error !== undefined) return
    try {
      this.#decoder.push(chunk)
    } catch (err) {
      this.error = err as Error
    }
  }

  onFrame (h: FrameHeader): void { this.#record(h) }
  onDataHeader (h: FrameHeader): void {
    this.dataFrames++
    this.dataBytes += h.length
    if (h.flags !== 0) this.#record(h)
  }

  #record (h: FrameHeader): void {
    this.frames.push(h)
    this.times.push(performance.now())
  }

  onDataPayload (): void {}
  onDataEnd (): void {}

  /** GoAway codes, in order. */
  get goAways (): number[] {
    return this.frames.filter(h => h.type === FrameType.GoAway).map(h => h.length)
  }

  /** Ids of streams that were reset. */
  get resets (): number[] {
    return this.frames.filter(h => (h.flags & Flag.RST) !== 0).map(h => h.streamId)
  }

  /** The last `n` recorded frames, one per line, for failure messages. */
  tail (n = 20): string {
    return this.frames.slice(-n).map(formatHeader).join('\n')
  }
}

export interface Libp2pPeer {
  readonly muxer: Libp2pMuxer
  readonly socket: Socket
  /** libp2p's error-level log lines (protocol errors, aborts, failed pings). */
  readonly errors: string[]
  /** Frames libp2p received (sent by the peer). */
  readonly received: WireTap
  /** Frames libp2p sent. */
  readonly sent: WireTap
  /** Settles when both pumps (socket → muxer, muxer → socket) are finished. */
  readonly done: Promise<void>
}

interface LoggerFn {
  (formatter: unknown, ...args: unknown[]): void
  error (formatter: unknown, ...args: unknown[]): void
  trace (formatter: unknown, ...args: unknown[]): void
  enabled: boolean
  newScope (name: string): LoggerFn
}

function recordingLogger (errors: string[], name: string): LoggerFn {
  const log = (() => {}) as unknown as LoggerFn
  log.error = (formatter: unknown, ...args: unknown[]) => { errors.push(`${name}: ${format(formatter, ...args)}`) }
  log.trace = () => {}
  log.enabled = false
  log.newScope = (scope: string) => recordingLogger(errors, `${name}:${scope}`)
  return log
}

/** The bytes of a chunk from libp2p (a Uint8Array or a Uint8ArrayList), as a Buffer. */
export function toBuffer (chunk: Chunk): Buffer {
  const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Starts a libp2p yamux muxer on `socket`. */
export function runLibp2pYamux (socket: Socket, options: Libp2pYamuxOptions): Libp2pPeer {
  const { client, onIncomingStream, ...config } = options
  const errors: string[] = []
  const received = new WireTap()
  const sent = new WireTap()
  const factory = yamux(config)({ logger: { forComponent: (name: string) => recordingLogger(errors, name) } })
  const muxer = factory.createStreamMuxer({
    direction: client ? 'outbound' : 'inbound',
    onIncomingStream: s => onIncomingStream?.(s as unknown as Libp2pStream),
  }) as unknown as Libp2pMuxer & {
    sink (source: AsyncIterable<Uint8Array>): Promise<void>
    source: AsyncIterable<Chunk>
  }
  if (typeof muxer.ping !== 'function') throw new Error('unexpected @chainsafe/libp2p-yamux API: muxer has no ping()')

  socket.on('error', (err: Error) => { errors.push(`socket: ${err.message}`) })

  async function * fromSocket (): AsyncGenerator<Uint8Array> {
    for await (const chunk of socket.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      received.push(chunk)
      yield chunk
    }
  }

  async function toSocket (): Promise<void> {
    for await (const chunk of muxer.source) {
      if (socket.destroyed || !socket.writable) continue // keep draining libp2p's queue
      const buf = toBuffer(chunk)
      sent.push(buf)
      if (!socket.write(buf)) await drainOrClose(socket)
    }
    if (!socket.destroyed && socket.writable) socket.end()
  }

  const done = Promise.all([
    muxer.sink(fromSocket()).catch((err: Error) => { errors.push(`sink: ${err.message}`) }),
    toSocket().catch((err: Error) => { errors.push(`source: ${err.message}`) }),
  ]).then(() => {})

  return { muxer, socket, errors, received, sent, done }
}

function drainOrClose (socket: Socket): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => {
      socket.off('drain', done)
      socket.off('close', done)
      resolve()
    }
    socket.on('drain', done)
    socket.on('close', done)
  })
}
