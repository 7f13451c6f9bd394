/**
 * Errors of the multiplexer. ProtocolError subclasses carry the GoAway code the session sends
 * to the peer; goAwayCodeFor() picks the code for any error that ends a session.
 */
import { MportError, type ErrorLayer } from './base.js'

/** Wire codes of GoAway frames (duplicated from mux/frame.ts: the errors import nothing else of ours). */
const GOAWAY_PROTOCOL_ERROR = 1
const GOAWAY_INTERNAL_ERROR = 2

/** An error of the multiplexer (src/mux): framing, session, streams and their config. */
export class MuxError extends MportError {
  static override readonly layer: ErrorLayer = 'mux'
}

/** The peer broke the protocol: the session ends with GoAway(goAway). */
export class ProtocolError extends MuxError {
/** The GoAway code the session sends before closing (1, protocol error). */
  readonly goAway: number = GOAWAY_PROTOCOL_ERROR
}

/** A frame header's version byte is not 0 (GoAway 1). */
export class InvalidVersionError extends ProtocolError {
  constructor (readonly version: number) {
    super('MPORT_ERR_INVALID_VERSION', `unsupported yamux version ${version} (expected 0)`)
  }
}

/** A frame header's type is not one of Data, WindowUpdate, Ping, GoAway (0–3) (GoAway 1). */
export class InvalidFrameTypeError extends ProtocolError {
  constructor (readonly frameType: number) {
    super('MPORT_ERR_INVALID_FRAME_TYPE', `unknown frame type ${frameType}`)
  }
}

/**
 * A Data frame's length exceeds `maxFrameSize` (`limit`, bytes); raised from the header,
 * before any payload is buffered (GoAway 1).
 */
export class FrameTooLargeError extends ProtocolError {
  constructor (readonly length: number, readonly limit: number) {
    super('MPORT_ERR_FRAME_TOO_LARGE', `frame length ${length} exceeds the limit of ${limit} bytes`)
  }
}

/**
 * A frame names a stream id it may not: Ping or GoAway on a non-zero id, Data or WindowUpdate
 * on id 0, or a SYN with the receiver's own id parity (GoAway 1).
 */
export class InvalidStreamIdError extends ProtocolError {
  constructor (readonly streamId: number, reason: string) {
    super('MPORT_ERR_INVALID_STREAM_ID', `invalid stream id ${streamId}: ${reason}`)
  }
}

/** A SYN arrived for a stream id that is already open (GoAway 1). */
export class DuplicateStreamError extends ProtocolError {
  constructor (readonly streamId: number) {
    super('MPORT_ERR_DUPLICATE_STREAM', `SYN for stream ${streamId}, which is already open`)
  }
}

/**
 * A Data frame's `length` (bytes) is larger than the stream's remaining receive `window`;
 * checked on the header, so the payload is never buffered (GoAway 1).
 */
export class RecvWindowExceededError extends ProtocolError {
  constructor (readonly streamId: number, readonly length: number, readonly window: number) {
    super('MPORT_ERR_RECV_WINDOW_EXCEEDED', `stream ${streamId}: ${length} bytes of data exceed the receive window of ${window}`)
  }
}

/** A WindowUpdate would raise a stream's send window above 2³²−1 bytes (GoAway 1). */
export class WindowOverflowError extends ProtocolError {
  constructor (readonly streamId: number) {
    super('MPORT_ERR_WINDOW_OVERFLOW', `stream ${streamId}: window update overflows the 32-bit send window`)
  }
}

/** The peer sent more than `limit` (`maxPingsPerSecond`) ping requests within one second (GoAway 1). */
export class PingFloodError extends ProtocolError {
  constructor (readonly limit: number) {
    super('MPORT_ERR_PING_FLOOD', `peer sent more than ${limit} pings per second`)
  }
}

/** The peer keeps sending frames that need an answer but does not read the answers. */
export class ControlBacklogError extends ProtocolError {
  constructor (readonly limit: number) {
    super('MPORT_ERR_CONTROL_BACKLOG', `more than ${limit} control frames queued for a peer that does not read them`)
  }
}

/** The peer ended the session with a GoAway carrying an error code. */
export class RemoteGoAwayError extends MuxError {
  constructor (readonly remoteCode: number) {
    super('MPORT_ERR_REMOTE_GOAWAY', `peer sent GoAway with code ${remoteCode} (${goAwayName(remoteCode)})`)
  }
}

/**
 * A keepalive ping went unanswered for `timeoutMs` with nothing else received from the
 * peer; the session ends with GoAway 2 (internal error).
 */
export class KeepAliveTimeoutError extends MuxError {
  readonly goAway = GOAWAY_INTERNAL_ERROR
  constructor (readonly timeoutMs: number) {
    super('MPORT_ERR_KEEPALIVE_TIMEOUT', `peer did not answer a keepalive ping within ${timeoutMs} ms`)
  }
}

/**
 * The session is closed, closing or has received GoAway: `open()`, `accept()` and `ping()`
 * reject with it, and open streams are destroyed with it (its `cause` is the session's error).
 */
export class SessionClosedError extends MuxError {
  constructor (message = 'session is closed', options?: ErrorOptions) {
    super('MPORT_ERR_SESSION_CLOSED', message, options)
  }
}

/** The underlying connection failed or ended before the session did. */
export class TransportError extends MuxError {
  constructor (message: string, options?: ErrorOptions) {
    super('MPORT_ERR_TRANSPORT', message, options)
  }
}

/**
 * The peer reset the stream (RST), including a refused SYN; only this stream fails, the
 * session continues.
 */
export class StreamResetError extends MuxError {
  constructor (readonly streamId: number, message = `stream ${streamId} was reset by the peer`) {
    super('MPORT_ERR_STREAM_RESET', message)
  }
}

/** `open()` was called with `limit` (`maxConcurrentStreams`) streams already open. */
export class StreamLimitError extends MuxError {
  constructor (readonly limit: number) {
    super('MPORT_ERR_STREAM_LIMIT', `cannot open more than ${limit} concurrent streams`)
  }
}

/**
 * A configuration value is unknown, out of range or of the wrong type; `key` names it.
 * Raised by the config verifiers and loaders before anything starts.
 */
export class InvalidConfigError extends MuxError {
  constructor (readonly key: string, message: string) {
    super('MPORT_ERR_INVALID_CONFIG', `invalid config "${key}": ${message}`)
  }
}

function goAwayName (code: number): string {
  return code === 0 ? 'normal' : code === GOAWAY_PROTOCOL_ERROR ? 'protocol error' : code === GOAWAY_INTERNAL_ERROR ? 'internal error' : 'unknown'
}

/** GoAway code to send for a session-ending error: protocol errors name themselves, the rest are internal. */
export function goAwayCodeFor (err: unknown): number {
  if (err instanceof ProtocolError) return err.goAway
  if (err instanceof KeepAliveTimeoutError) return err.goAway
  return GOAWAY_INTERNAL_ERROR
}
