/**
 * MuxStream: one yamux stream as a Node Duplex.
 *
 * Flow control is the Duplex's own buffering: the receive window is re-granted only as the
 * application reads (in _read), so a reader that stops stops its sender through the protocol
 * and never holds more than its window. On the send side a chunk's write callback is held
 * until the last byte has been handed to the session's writer, so write() returns false when
 * the peer's window or the socket is full, and 'drain' follows when it is not.
 *
 * A stream never touches the socket: the Session gives it a StreamLink, and calls it through
 * the symbol-keyed methods of internal.ts, which are not part of the API.
 */
import { Duplex } from 'node:stream'
import { performance } from 'node:perf_hooks'
import { RecvWindowExceededError, StreamResetError, WindowOverflowError } from '../errors.js'
import { Flag, FrameType, INITIAL_STREAM_WINDOW, MAX_UINT32 } from './frame.js'
import { abort, addSendCredit, emitFrame, endOfData, receiveData, receiveFlags, reserveRecv } from './internal.js'
import type { ReceiveBufferPool } from './receive-buffers.js'
import { OWN_COPY_MAX, ReceiveGather } from './receive-gather.js'

/** Where a stream is in its life (PROTOCOL.md's stream states). */
export enum StreamState {
  /** Opened locally, SYN not yet sent. */
  Init,
  /** SYN sent, no ACK yet. */
  SynSent,
  /** SYN received, ACK not yet sent. */
  SynReceived,
  /** Both sides may send. */
  Established,
  /** We sent FIN; the peer may still send. */
  LocalClose,
  /** The peer sent FIN; we may still send. */
  RemoteClose,
  /** Both FINs exchanged. */
  Closed,
  /** Reset by either side. */
  Reset,
}

/** @internal What a stream may ask of its session (one object per session, shared by its streams). */
export interface StreamLink {
  readonly maxSendFrameSize: number
  readonly maxStreamWindow: number
  readonly windowAutoTuning: boolean
  /** The stream has a frame to send: queue it for the single writer. */
  schedule (stream: MuxStream): void
  /** Write one frame now; only during the stream's turn in a flush. */
  writeFrame (type: FrameType, flags: number, streamId: number, length: number, payload?: Buffer): void
  /** Queue a window update (ahead of data). */
  sendWindowUpdate (streamId: number, flags: number, delta: number): void
  /** Queue an RST (ahead of data). */
  sendReset (streamId: number): void
  /** Forget the stream: it is closed or reset. */
  release (stream: MuxStream): void
  /** Latest measured round-trip time in ms, 0 when unknown. */
  rtt (): number
  /** Where large received frames are gathered, reused once written on (see writeCallbackFor). */
  readonly receiveBuffers: ReceiveBufferPool
}

/** Payload views smaller than this share of their backing buffer are copied before being buffered. */
const COMPACT_RATIO = 2
const EMPTY = Buffer.alloc(0)

/**
 * One yamux stream, as a Node Duplex whose buffers are the flow-control windows: reading
 * returns credit to the peer, and writes wait (write() returns false) while the send window is 0.
 * `end()` sends FIN (half-close); `destroy()` before both sides finished sends RST.
 */
export class MuxStream extends Duplex {
  /** The stream id: odd when the client opened it, even when the server did. */
  readonly id: number
  readonly #link: StreamLink
  #state: StreamState

  /** Credit the peer still has to send to us. */
  #recvWindow = INITIAL_STREAM_WINDOW
  /** Our receive window's current size (grows by auto-tuning). */
  #recvMax = INITIAL_STREAM_WINDOW
  #lastGrantAt = 0
  /** Credit we still have to send to the peer. */
  #sendWindow = INITIAL_STREAM_WINDOW

  /** SYN or ACK waiting to ride on this stream's next frame. */
  #pendingFlags = 0
  /** The chunk being sent, how far, and its write callback (held until fully handed off). */
  #out: Buffer | undefined
  #outOffset = 0
  #outCallback: ((err?: Error | null) => void) | undefined
  #finCallback: ((err?: Error | null) => void) | undefined
  #localFin = false
  #remoteFin = false
  #resetByPeer = false
  /** Bytes of the Data frame being received that were reserved against the window but have not arrived: not consumed either. */
  #arriving = 0
  /** Made when a frame first needs gathering (split across reads, or from a reused read buffer). */
  #gather: ReceiveGather | undefined

  /** @internal Streams are created by Session.open() and the 'stream' event, never directly. */
  constructor (id: number, link: StreamLink, state: StreamState.Init | StreamState.SynReceived) {
    super({
      allowHalfOpen: true,
      readableHighWaterMark: INITIAL_STREAM_WINDOW,
      writableHighWaterMark: 64 * 1024,
    })
    this.id = id
    this.#link = link
    this.#state = state
    this.#pendingFlags = state === StreamState.Init ? Flag.SYN : Flag.ACK
    link.schedule(this)
  }

  /** Where the stream is in its life. */
  get state (): StreamState { return this.#state }
  /** Bytes the peer may still send before it must wait for credit. */
  get recvWindow (): number { return this.#recvWindow }
  /** Current size of the receive window (256 KiB, more after auto-tuning). */
  get recvWindowMax (): number { return this.#recvMax }
  /** Bytes we may still send before the peer grants more. */
  get sendWindow (): number { return this.#sendWindow }

  /**
   * The "chunk written" contract. A chunk this stream emitted may be a view of a buffer the
   * session reuses for later frames. A consumer that writes the chunk on to a socket, and
   * keeps no other reference to it, may pass the returned function as that write's callback
   * (call this once per chunk): when the socket reports the write done, the buffer may be
   * reused. Undefined when the chunk's buffer is not reused. A chunk nobody reports this way
   * keeps its buffer out of reuse: it is garbage-collected instead, never overwritten.
   */
  writeCallbackFor (chunk: Buffer): ((err?: Error | null) => void) | undefined {
    return this.#link.receiveBuffers.writeCallback(chunk)
  }

  // ---- Writable side ----

  override _write (chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.#state === StreamState.Reset) return callback(new StreamResetError(this.id))
    if (chunk.length === 0) return callback()
    this.#out = chunk
    this.#outOffset = 0
    this.#outCallback = callback
    this.#link.schedule(this)
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this._write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map(c => c.chunk)), 'binary', callback)
  }

  override _final (callback: (err?: Error | null) => void): void {
    if (this.#state === StreamState.Reset) return callback(new StreamResetError(this.id))
    this.#finCallback = callback
    this.#link.schedule(this)
  }

  /** @internal The writer's turn: at most one frame, and whether more is ready (so turns go round-robin). */
  [emitFrame] (): boolean {
    const out = this.#out
    if (out !== undefined) {
      if (this.#sendWindow === 0) return false
      const n = Math.min(out.length - this.#outOffset, this.#sendWindow, this.#link.maxSendFrameSize)
      const payload = n === out.length ? out : out.subarray(this.#outOffset, this.#outOffset + n)
      this.#link.writeFrame(FrameType.Data, this.#takeFlags(), this.id, n, payload)
      this.#sendWindow -= n
      this.#outOffset += n
      if (this.#outOffset === out.length) {
        const cb = this.#outCallback!
        this.#out = undefined
        this.#outCallback = undefined
        cb() // may call _write again synchronously with the next buffered chunk
      }
      return this.#hasFrameToSend()
    }
    if (this.#finCallback !== undefined) {
      // FIN rides on a zero-length window update, never on the last Data frame: libp2p drops
      // the payload of Data|FIN when its own side is closed (YAMUX-NOTES.md).
      const cb = this.#finCallback
      this.#finCallback = undefined
      this.#link.writeFrame(FrameType.WindowUpdate, this.#takeFlags() | Flag.FIN, this.id, 0)
      this.#localFin = true
      this.#state = this.#remoteFin ? StreamState.Closed : StreamState.LocalClose
      cb()
      this.#releaseIfClosed()
      return false
    }
    if (this.#pendingFlags !== 0) {
      this.#link.writeFrame(FrameType.WindowUpdate, this.#takeFlags(), this.id, 0)
    }
    return false
  }

  #hasFrameToSend (): boolean {
    if (this.#out !== undefined) return this.#sendWindow > 0
    return this.#finCallback !== undefined || this.#pendingFlags !== 0
  }

  #takeFlags (): number {
    const flags = this.#pendingFlags
    if (flags !== 0) {
      this.#pendingFlags = 0
      if (flags & Flag.SYN) this.#state = StreamState.SynSent
      else if (flags & Flag.ACK && this.#state === StreamState.SynReceived) this.#state = StreamState.Established
    }
    return flags
  }

  /** @internal */
  [addSendCredit] (delta: number): void {
    const wasBlocked = this.#sendWindow === 0
    this.#sendWindow += delta
    if (this.#sendWindow > MAX_UINT32) throw new WindowOverflowError(this.id)
    if (wasBlocked && this.#out !== undefined) this.#link.schedule(this)
  }

  // ---- Readable side ----

  /** @internal */
  [reserveRecv] (length: number): void {
    if (length > this.#recvWindow) throw new RecvWindowExceededError(this.id, length, this.#recvWindow)
    this.#recvWindow -= length
    this.#arriving = length
  }

  /**
   * @internal
   * A piece of Data payload, already counted by reserveRecv. A `transient` piece is a view of
   * a read buffer the socket reuses, valid only during this call: it is always copied.
   */
  [receiveData] (payload: Buffer, transient: boolean): void {
    this.#arriving -= payload.length
    if (this.#remoteFin || this.#state === StreamState.Reset) return
    let g = this.#gather
    if (this.#arriving === 0 && g?.busy !== true) {
      if (!transient) return this.#pushWhole(payload)
      // A small whole frame from a reused read buffer: its own copy, nothing to gather.
      if (payload.length <= OWN_COPY_MAX) return this.#pushGathered(Buffer.from(payload))
    }
    g ??= this.#gather = new ReceiveGather(this.#link.receiveBuffers, chunk => this.#pushGathered(chunk))
    g.add(payload, this.#arriving)
  }

  /** A whole frame in one piece, nothing gathered: passed on without a copy. */
  #pushWhole (payload: Buffer): void {
    let chunk = payload
    // A small view pins its whole socket chunk; copy it if it is going to sit in our buffer.
    if ((this.readableLength > 0 || !this.readableFlowing) && chunk.length * COMPACT_RATIO < chunk.buffer.byteLength) {
      chunk = Buffer.from(chunk)
    }
    if (!this.destroyed) this.push(chunk)
  }

  #pushGathered (chunk: Buffer): void {
    if (!this.#remoteFin && this.#state !== StreamState.Reset && !this.destroyed) this.push(chunk)
  }

  /** @internal The current Data frame is complete: hand over what was gathered of it. */
  [endOfData] (): void {
    this.#gather?.flush()
  }

  /** @internal ACK, FIN and RST from a Data or WindowUpdate frame (applied after its payload). */
  [receiveFlags] (flags: number): void {
    if (flags & Flag.ACK && this.#state === StreamState.SynSent) {
      this.#state = StreamState.Established
      // The peer has the stream: a caller that holds data back until then (a load-balancing
      // group, which may still move the visitor to another member before this) goes on.
      this.emit('established')
    }
    if (flags & Flag.RST) {
      this.#resetByPeer = true
      this.#state = StreamState.Reset
      this.#link.release(this)
      this.destroy(new StreamResetError(this.id))
      return
    }
    if (flags & Flag.FIN && !this.#remoteFin) {
      this.#remoteFin = true
      this.#state = this.#localFin ? StreamState.Closed : StreamState.RemoteClose
      this.push(null)
      this.#releaseIfClosed()
    }
  }

  override _read (): void {
    this.#grantCredit()
    // Node calls _read again only after a push. When the credit is not due yet (or the peer
    // has nothing more to send), end this read with an empty push so that the next
    // consumption calls _read, and grants the credit, instead of stalling both sides.
    if (!this.#remoteFin && this.#state !== StreamState.Reset && !this.destroyed) this.push(EMPTY)
  }

  /** Re-grant what the application consumed (hashicorp: max - buffered - window, sent at >= max/2). */
  #grantCredit (): void {
    if (this.#remoteFin || this.#state === StreamState.Reset) return
    // Whatever is buffered, gathered or still arriving of the current frame is not consumed yet.
    let delta = this.#recvMax - this.readableLength - (this.#gather?.held ?? 0) - this.#arriving - this.#recvWindow
    if (delta < this.#recvMax / 2) return
    if (this.#link.windowAutoTuning) {
      // Half a window consumed within 4 RTTs means the window, not the reader, is the limit.
      const now = performance.now()
      const rtt = this.#link.rtt()
      if (rtt > 0 && now - this.#lastGrantAt < 4 * rtt && this.#recvMax < this.#link.maxStreamWindow) {
        const grown = Math.min(this.#recvMax * 2, this.#link.maxStreamWindow)
        delta += grown - this.#recvMax
        this.#recvMax = grown
      }
      this.#lastGrantAt = now
    }
    this.#recvWindow += delta
    this.#link.sendWindowUpdate(this.id, this.#takeFlags(), delta)
  }

  // ---- Teardown ----

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.#state === StreamState.Init) {
      // SYN never sent: the peer has not heard of this id, and an RST (queued ahead of data)
      // would reach it as a stray frame for an id it never saw opened, only to be dropped.
      this.#state = StreamState.Reset
    } else if (this.#state !== StreamState.Closed && this.#state !== StreamState.Reset) {
      // Destroyed before both sides finished: tell the peer at once.
      this.#state = StreamState.Reset
      this.#link.sendReset(this.id)
    }
    if (!this.#resetByPeer) this.#link.release(this)
    this.#out = undefined
    this.#outCallback = undefined
    const fin = this.#finCallback
    this.#finCallback = undefined
    if (fin !== undefined) fin(err ?? new StreamResetError(this.id, `stream ${this.id} was destroyed before FIN was sent`))
    callback(err)
  }

  /** @internal The session is going away: reset without sending anything. */
  [abort] (err: Error | undefined): void {
    if (this.#state !== StreamState.Closed) this.#state = StreamState.Reset
    this.#resetByPeer = true // nothing more goes on the wire
    this.destroy(err)
  }

  #releaseIfClosed (): void {
    if (this.#localFin && this.#remoteFin) this.#link.release(this)
  }
}
