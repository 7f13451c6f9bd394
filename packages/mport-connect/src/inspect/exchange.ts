/**
 * One recorded HTTP exchange (a request and its response) and the capped body buffer its
 * bodies are kept in. What the JSON API returns is built from these (exchange-json.ts).
 */
import type { FrameSummary } from './websocket-frames.js'

/** A body kept up to a cap; the rest is counted, not kept. */
export class CappedBody {
  readonly #cap: number
  readonly #parts: Buffer[] = []
  #kept = 0
  /** Every byte of the body, kept or not. */
  size = 0

  constructor (cap: number) {
    this.#cap = cap
  }

  /** Bytes kept (at most the cap). */
  get kept (): number { return this.#kept }
  /** True when part of the body was not kept. */
  get truncated (): boolean { return this.size > this.#kept }

  /** Adds a chunk; returns how many bytes were kept (copied: the chunk's buffer may be reused). */
  add (chunk: Buffer): number {
    this.size += chunk.length
    const room = this.#cap - this.#kept
    if (room <= 0) return 0
    const part = Buffer.from(chunk.subarray(0, room))
    this.#parts.push(part)
    this.#kept += part.length
    return part.length
  }

  bytes (): Buffer {
    if (this.#parts.length > 1) this.#parts.splice(0, this.#parts.length, Buffer.concat(this.#parts))
    return this.#parts[0] ?? Buffer.alloc(0)
  }
}

/** A request or response as recorded. */
export interface RecordedMessage {
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly httpVersion: string
  /** Bytes of the head on the wire. */
  readonly headSize: number
  readonly body: CappedBody
}

/** A recorded request: method and target with the head and body. */
export interface RecordedRequest extends RecordedMessage {
  readonly method: string
  readonly url: string
}

/** A recorded response: status and reason with the head and body. */
export interface RecordedResponse extends RecordedMessage {
  readonly status: number
  readonly reason: string
}

/**
 * `pending` (waiting for or reading the response), `complete`, `upgraded` (a WebSocket or
 * CONNECT tunnel after the response), `aborted` (the connection ended first), `unparsed` (the
 * bytes stopped being HTTP the recorder can follow; recording stopped for the connection).
 */
export type ExchangeState = 'pending' | 'complete' | 'upgraded' | 'aborted' | 'unparsed'

/** The times of an exchange on the inspector's clock (ms); offsets from `start` in the API. */
export interface ExchangeTimes {
  /** The first byte of the request head. */
  readonly start: number
  requestEnd?: number
  /** The first byte of the response head. */
  firstByte?: number
  end?: number
}

/** WebSocket frames seen after an upgrade: counts and the latest few headers. */
export interface WebSocketSummary {
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  /** The latest frames, oldest first (bounded). */
  readonly recent: FrameSummary[]
}

/** One recorded exchange: the request, its response once it came, times, state, WebSocket frames after an upgrade. */
export interface Exchange {
  /** 1, 2, … in the order requests started (ids are never reused). */
  readonly id: number
  readonly tunnel: string
  /** The local service, `host:port`. */
  readonly local: string
  /** The visitor as the relay reported it, `addr:port`; `replay` for a replay. */
  readonly visitor: string
  /** The visitor connection (exchanges of one keep-alive connection share it). */
  readonly connection: number
  /** Wall-clock time the request started (ms since the epoch). */
  readonly startedAt: number
  readonly times: ExchangeTimes
  readonly request: RecordedRequest
  response?: RecordedResponse
  state: ExchangeState
  /** Why the exchange is `aborted` or `unparsed`. */
  error?: string
  websocket?: WebSocketSummary
  /** The exchange this one replayed. */
  replayOf?: number
}

/** Bytes an exchange holds in memory, for the ring's byte bound (bodies kept, heads, a fixed overhead). */
export function exchangeBytes (e: Exchange): number {
  const frames = e.websocket === undefined ? 0 : e.websocket.recent.length * 64
  return 512 + e.request.headSize + e.request.body.kept + (e.response === undefined ? 0 : e.response.headSize + e.response.body.kept) + frames
}
