/**
 * Typed errors. Every error mport raises on purpose is an MportError with a stable string
 * `code` (listed in PROTOCOL.md's error table; test/errors.test.ts fails on drift).
 * ProtocolError subclasses also carry the GoAway code sent to the peer.
 */

import { ErrorCodes, MportError, type ErrorCode } from './errors/base.js'

export * from './errors/base.js'
export * from './errors/store.js'
export * from './errors/api.js'

/** Wire codes of GoAway frames (duplicated from frame.ts to keep this module dependency-free). */
const GOAWAY_PROTOCOL_ERROR = 1
const GOAWAY_INTERNAL_ERROR = 2

/** The peer broke the protocol: the session ends with GoAway(goAway). */
export class ProtocolError extends MportError {
  readonly goAway: number = GOAWAY_PROTOCOL_ERROR
}

export class InvalidVersionError extends ProtocolError {
  constructor (readonly version: number) {
    super('MPORT_ERR_INVALID_VERSION', `unsupported yamux version ${version} (expected 0)`)
  }
}

export class InvalidFrameTypeError extends ProtocolError {
  constructor (readonly frameType: number) {
    super('MPORT_ERR_INVALID_FRAME_TYPE', `unknown frame type ${frameType}`)
  }
}

export class FrameTooLargeError extends ProtocolError {
  constructor (readonly length: number, readonly limit: number) {
    super('MPORT_ERR_FRAME_TOO_LARGE', `frame length ${length} exceeds the limit of ${limit} bytes`)
  }
}

export class InvalidStreamIdError extends ProtocolError {
  constructor (readonly streamId: number, reason: string) {
    super('MPORT_ERR_INVALID_STREAM_ID', `invalid stream id ${streamId}: ${reason}`)
  }
}

export class UnknownStreamError extends ProtocolError {
  constructor (readonly streamId: number) {
    super('MPORT_ERR_UNKNOWN_STREAM', `frame for stream ${streamId}, which was never opened`)
  }
}

export class DuplicateStreamError extends ProtocolError {
  constructor (readonly streamId: number) {
    super('MPORT_ERR_DUPLICATE_STREAM', `SYN for stream ${streamId}, which is already open`)
  }
}

export class RecvWindowExceededError extends ProtocolError {
  constructor (readonly streamId: number, readonly length: number, readonly window: number) {
    super('MPORT_ERR_RECV_WINDOW_EXCEEDED', `stream ${streamId}: ${length} bytes of data exceed the receive window of ${window}`)
  }
}

export class WindowOverflowError extends ProtocolError {
  constructor (readonly streamId: number) {
    super('MPORT_ERR_WINDOW_OVERFLOW', `stream ${streamId}: window update overflows the 32-bit send window`)
  }
}

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
export class RemoteGoAwayError extends MportError {
  constructor (readonly remoteCode: number) {
    super('MPORT_ERR_REMOTE_GOAWAY', `peer sent GoAway with code ${remoteCode} (${goAwayName(remoteCode)})`)
  }
}

export class KeepAliveTimeoutError extends MportError {
  readonly goAway = GOAWAY_INTERNAL_ERROR
  constructor (readonly timeoutMs: number) {
    super('MPORT_ERR_KEEPALIVE_TIMEOUT', `peer did not answer a keepalive ping within ${timeoutMs} ms`)
  }
}

export class SessionClosedError extends MportError {
  constructor (message = 'session is closed', options?: ErrorOptions) {
    super('MPORT_ERR_SESSION_CLOSED', message, options)
  }
}

/** The underlying connection failed or ended before the session did. */
export class TransportError extends MportError {
  constructor (message: string, options?: ErrorOptions) {
    super('MPORT_ERR_TRANSPORT', message, options)
  }
}

export class StreamResetError extends MportError {
  constructor (readonly streamId: number, message = `stream ${streamId} was reset by the peer`) {
    super('MPORT_ERR_STREAM_RESET', message)
  }
}

export class StreamLimitError extends MportError {
  constructor (readonly limit: number) {
    super('MPORT_ERR_STREAM_LIMIT', `cannot open more than ${limit} concurrent streams`)
  }
}

export class InvalidConfigError extends MportError {
  constructor (readonly key: string, message: string) {
    super('MPORT_ERR_INVALID_CONFIG', `invalid config "${key}": ${message}`)
  }
}

// ---- Tunnel layer ----

/** A tunnel-layer error; `code` travels in control-protocol error replies. */
export class TunnelError extends MportError {}

export class HandshakeTimeoutError extends TunnelError {
  constructor (readonly timeoutMs: number, what = 'handshake') {
    super('MPORT_ERR_HANDSHAKE_TIMEOUT', `${what} did not complete within ${timeoutMs} ms`)
  }
}

export class VersionMismatchError extends TunnelError {
  constructor (readonly theirs: unknown, readonly ours: number) {
    super('MPORT_ERR_VERSION_MISMATCH', `peer speaks control protocol version ${String(theirs)}, this side speaks ${ours}`)
  }
}

export class InvalidMessageError extends TunnelError {
  constructor (message: string) {
    super('MPORT_ERR_INVALID_MESSAGE', message)
  }
}

export class MessageTooLargeError extends TunnelError {
  constructor (readonly length: number, readonly limit: number) {
    super('MPORT_ERR_MESSAGE_TOO_LARGE', `control message of ${length} bytes exceeds the limit of ${limit}`)
  }
}

export class AuthFailedError extends TunnelError {
  constructor (message = 'authentication failed: wrong or revoked token') {
    super('MPORT_ERR_AUTH_FAILED', message)
  }
}

export class RateLimitedError extends TunnelError {
  constructor (message: string, readonly retryAfterMs?: number) {
    super('MPORT_ERR_RATE_LIMITED', message)
  }
}

export class PortNotAllowedError extends TunnelError {
  constructor (readonly port: number, range: string) {
    super('MPORT_ERR_PORT_NOT_ALLOWED', `port ${port} is not allowed on this relay (allowed: ${range})`)
  }
}

export class PortInUseError extends TunnelError {
  constructor (readonly port: number | undefined, message = `port ${port} is already in use`) {
    super('MPORT_ERR_PORT_IN_USE', message)
  }
}

export class DuplicateTunnelError extends TunnelError {
  constructor (readonly tunnel: string) {
    super('MPORT_ERR_DUPLICATE_TUNNEL', `a tunnel named "${tunnel}" is already open on this connection`)
  }
}

export class TunnelLimitError extends TunnelError {
  constructor (readonly limit: number) {
    super('MPORT_ERR_TUNNEL_LIMIT', `at most ${limit} tunnels per client`)
  }
}

export class RelayUnreachableError extends TunnelError {
  constructor (readonly address: string, reason: string, options?: ErrorOptions) {
    super('MPORT_ERR_RELAY_UNREACHABLE', `cannot reach relay ${address}: ${reason}`, options)
  }
}

export class CertificateMismatchError extends TunnelError {
  constructor (readonly expected: string, readonly actual: string) {
    super('MPORT_ERR_CERT_MISMATCH', `relay certificate fingerprint ${actual} does not match the expected ${expected}`)
  }
}

export class CertificateUntrustedError extends TunnelError {
  constructor (reason: string, readonly fingerprint: string) {
    super('MPORT_ERR_CERT_UNTRUSTED', `relay certificate is not trusted (${reason}); its fingerprint is ${fingerprint}: pin it with --fingerprint ${fingerprint}`)
  }
}

export class LocalUnreachableError extends TunnelError {
  constructor (readonly target: string, reason: string, options?: ErrorOptions) {
    super('MPORT_ERR_LOCAL_UNREACHABLE', `local service ${target} refused the connection: ${reason}`, options)
  }
}

/** Rebuilds the typed error for a code received in a control-protocol error reply. */
export function errorFromWire (code: string, message: string): MportError {
  const known = (ErrorCodes as readonly string[]).includes(code) ? code as ErrorCode : 'MPORT_ERR_INVALID_MESSAGE'
  return new TunnelError(known, message)
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
