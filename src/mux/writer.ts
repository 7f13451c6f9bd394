/**
 * FrameWriter: the one writer of a session's socket.
 *
 * Frames go out from one flush per tick: control frames (ping answers, window updates, RSTs,
 * GoAway) first, so that a ping is never answered behind bulk data, then one frame per ready
 * stream, round-robin, until the socket holds `writeBufferSize` bytes; then the writer waits
 * for 'drain'. Headers and small payloads are packed into a slab so that one socket write
 * carries many frames.
 */
import type { Duplex } from 'node:stream'
import { ControlBacklogError } from '../errors.js'
import { FrameType, HEADER_LENGTH, writeHeader } from './frame.js'
import { emitFrame } from './internal.js'

/** A stream with frames to send when its turn comes. */
export interface FrameSource {
  readonly destroyed: boolean
  /** Writes at most one frame with FrameWriter.writeFrame(); returns whether it has more to send now. */
  [emitFrame] (): boolean
}

export interface FrameWriterOptions {
  /** Bytes handed to the socket before the writer waits for 'drain'. */
  writeBufferSize: number
  /** Control frames that may wait for a peer that does not read. */
  maxControlBacklog: number
  /** Told (on a later tick) when the control backlog overflowed: the session must end. */
  onOverflow (err: ControlBacklogError): void
}

/** Payloads up to this size are copied next to their header so one socket write carries both. */
const COALESCE_LIMIT = 2048
const SLAB_SIZE = 64 * 1024

export class FrameWriter {
  readonly #socket: Duplex
  readonly #opts: FrameWriterOptions
  #control: Buffer[] = []
  #ready: FrameSource[] = []
  #readyHead = 0
  readonly #queued = new Set<FrameSource>()
  #flushScheduled = false
  #lazyFlushScheduled = false
  #waitingDrain = false
  #stopped = false
  /** Small frames are gathered here; bytes before #slabStart were handed to the socket and are never overwritten. */
  #slab = Buffer.allocUnsafe(SLAB_SIZE)
  #slabStart = 0
  #slabPos = 0

  constructor (socket: Duplex, opts: FrameWriterOptions) {
    this.#socket = socket
    this.#opts = opts
    socket.on('drain', this.#onDrain)
  }

  /**
   * Queues a frame without a body ahead of all Data. A `lazy` frame (plain window credit) may
   * wait for the end of this event-loop turn, so that many streams' updates share one write.
   */
  queueControl (type: FrameType, flags: number, streamId: number, length: number, lazy = false): void {
    if (this.#stopped) return
    // The GoAway that reports an overflow must not be refused by the same limit.
    if (this.#control.length >= this.#opts.maxControlBacklog && type !== FrameType.GoAway) {
      // Throwing here would surface in the caller's context; report it on the next tick instead.
      const err = new ControlBacklogError(this.#opts.maxControlBacklog)
      process.nextTick(() => this.#opts.onOverflow(err))
      return
    }
    const frame = Buffer.allocUnsafe(HEADER_LENGTH)
    writeHeader(frame, 0, { type, flags, streamId, length })
    this.#control.push(frame)
    if (lazy) this.#scheduleLazyFlush()
    else this.#scheduleFlush()
  }

  /** `source` has a frame to send: it gets a turn in the next flush. */
  schedule (source: FrameSource): void {
    if (this.#stopped || this.#queued.has(source)) return
    this.#queued.add(source)
    this.#ready.push(source)
    this.#scheduleFlush()
  }

  /** Writes one frame now; only for a FrameSource during its turn. */
  writeFrame (type: FrameType, flags: number, streamId: number, length: number, payload?: Buffer): void {
    this.#reserve(HEADER_LENGTH)
    writeHeader(this.#slab, this.#slabPos, { type, flags, streamId, length })
    this.#slabPos += HEADER_LENGTH
    if (payload === undefined) return
    if (payload.length <= COALESCE_LIMIT) {
      this.#reserve(payload.length)
      payload.copy(this.#slab, this.#slabPos)
      this.#slabPos += payload.length
    } else {
      this.#commitSlab()
      this.#socket.write(payload)
    }
  }

  /** Writes the queued control frames (a final GoAway) and drops everything else for good. */
  stop (): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#flushNow()
    this.#ready = []
    this.#readyHead = 0
    this.#queued.clear()
    this.#control = []
    this.#socket.off('drain', this.#onDrain)
  }

  #scheduleFlush (): void {
    if (this.#flushScheduled || this.#waitingDrain) return
    this.#flushScheduled = true
    process.nextTick(this.#flush)
  }

  #scheduleLazyFlush (): void {
    if (this.#flushScheduled || this.#lazyFlushScheduled || this.#waitingDrain) return
    this.#lazyFlushScheduled = true
    setImmediate(this.#lazyFlush)
  }

  readonly #lazyFlush = (): void => {
    this.#lazyFlushScheduled = false
    if (!this.#flushScheduled) this.#flush()
  }

  readonly #onDrain = (): void => {
    this.#waitingDrain = false
    this.#flush()
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false
    if (this.#waitingDrain || this.#stopped) return
    this.#flushNow()
  }

  #flushNow (): void {
    const socket = this.#socket
    if (!socket.writable) return
    const limit = Math.max(this.#opts.writeBufferSize, socket.writableHighWaterMark)
    socket.cork()
    try {
      for (const frame of this.#control) this.#put(frame)
      this.#control = []
      if (!this.#stopped) this.#takeTurns(socket, limit)
      this.#commitSlab()
    } finally {
      socket.uncork()
    }
    if (socket.writableNeedDrain) this.#waitingDrain = true
    else if (this.#readyHead < this.#ready.length || this.#control.length > 0) this.#scheduleFlush()
  }

  /** One frame per ready source, round-robin, until the socket holds `limit` bytes. */
  #takeTurns (socket: Duplex, limit: number): void {
    while (this.#readyHead < this.#ready.length && socket.writableLength + this.#slabPos - this.#slabStart < limit) {
      const s = this.#ready[this.#readyHead++]!
      if (!s.destroyed && s[emitFrame]()) this.#ready.push(s)
      else this.#queued.delete(s)
    }
    if (this.#readyHead === this.#ready.length) {
      this.#ready = []
      this.#readyHead = 0
    } else if (this.#readyHead > 1024) {
      this.#ready = this.#ready.slice(this.#readyHead)
      this.#readyHead = 0
    }
  }

  #put (bytes: Buffer): void {
    this.#reserve(bytes.length)
    bytes.copy(this.#slab, this.#slabPos)
    this.#slabPos += bytes.length
  }

  #reserve (n: number): void {
    if (this.#slab.length - this.#slabPos >= n) return
    this.#commitSlab()
    this.#slab = Buffer.allocUnsafe(Math.max(SLAB_SIZE, n))
    this.#slabStart = 0
    this.#slabPos = 0
  }

  #commitSlab (): void {
    if (this.#slabPos === this.#slabStart) return
    this.#socket.write(this.#slab.subarray(this.#slabStart, this.#slabPos))
    this.#slabStart = this.#slabPos
  }
}
