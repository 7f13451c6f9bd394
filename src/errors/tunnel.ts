/**
 * Errors of the tunnel layer: the control protocol, connecting to the relay (TLS, pinning),
 * opening tunnels and claiming their names, and plan limits. PROTOCOL.md documents the
 * transport as part of this layer, so its errors are tunnel errors too.
 */
import { ErrorCodes, MportError, type ErrorCode, type ErrorLayer } from './base.js'

/** An error of the tunnel layer (src/tunnel, src/transport); `code` travels in control-protocol error replies. */
export class TunnelError extends MportError {
  static override readonly layer: ErrorLayer = 'tunnel'
}

/**
 * A handshake step did not finish within `timeoutMs`: TLS on the relay's listener, or on the
 * client connect + TLS, or the relay's `challenge`, `welcome` or answer to `open`. Never sent on the wire.
 */
export class HandshakeTimeoutError extends TunnelError {
  constructor (readonly timeoutMs: number, what = 'handshake') {
    super('MPORT_ERR_HANDSHAKE_TIMEOUT', `${what} did not complete within ${timeoutMs} ms`)
  }
}

/**
 * A `hello` or `challenge` carries a control-protocol version other than ours (`theirs` is the
 * value received); the client does not retry after it.
 */
export class VersionMismatchError extends TunnelError {
  constructor (readonly theirs: unknown, readonly ours: number) {
    super('MPORT_ERR_VERSION_MISMATCH', `peer speaks control protocol version ${String(theirs)}, this side speaks ${ours}`)
  }
}

/**
 * A control message or visitor-stream header is malformed (not a JSON object, unknown `t`,
 * a missing or out-of-range member) or arrives out of order.
 */
export class InvalidMessageError extends TunnelError {
  constructor (message: string) {
    super('MPORT_ERR_INVALID_MESSAGE', message)
  }
}

/**
 * A control message or visitor-stream header declares a `length` (bytes) above its `limit`;
 * checked on the length prefix, before the body is read. Encoders raise it too rather than send.
 */
export class MessageTooLargeError extends TunnelError {
  constructor (readonly length: number, readonly limit: number) {
    super('MPORT_ERR_MESSAGE_TOO_LARGE', `control message of ${length} bytes exceeds the limit of ${limit}`)
  }
}

/**
 * The relay does not know the token id or the proof is wrong. Counts towards the relay's
 * per-address failure limit; the client does not retry.
 */
export class AuthFailedError extends TunnelError {
  constructor (message = 'authentication failed: wrong or revoked token') {
    super('MPORT_ERR_AUTH_FAILED', message)
  }
}

/**
 * Too many attempts: a source address over the failed-authentication limit, a visitor over a
 * tunnel's connection rate, or an API login over the failure limit. `retryAfterMs` is set only
 * where it is known (on the raising side; the wire does not carry it).
 */
export class RateLimitedError extends TunnelError {
  constructor (message: string, readonly retryAfterMs?: number) {
    super('MPORT_ERR_RATE_LIMITED', message)
  }
}

/** Relay side: a visitor's address is not allowed by the tunnel's IP filter (`allowIp`/`denyIp`); the connection is refused. */
export class VisitorFilteredError extends TunnelError {
  constructor (readonly address: string) {
    super('MPORT_ERR_VISITOR_FILTERED', `${address} is not allowed by the tunnel's IP filter`)
  }
}

/** `open` asked for a non-zero public `port` outside the relay's allowed range. */
export class PortNotAllowedError extends TunnelError {
  constructor (readonly port: number, range: string) {
    super('MPORT_ERR_PORT_NOT_ALLOWED', `port ${port} is not allowed on this relay (allowed: ${range})`)
  }
}

/** `open` asked for a `port` that is taken, or port 0 found no free port in the range (`port` undefined). */
export class PortInUseError extends TunnelError {
  constructor (readonly port: number | undefined, message = `port ${port} is already in use`) {
    super('MPORT_ERR_PORT_IN_USE', message)
  }
}

/** `open` used a tunnel name that another tunnel of the same lease already has. */
export class DuplicateTunnelError extends TunnelError {
  constructor (readonly tunnel: string) {
    super('MPORT_ERR_DUPLICATE_TUNNEL', `a tunnel named "${tunnel}" is already open on this connection`)
  }
}

/** The lease already holds `limit` (`maxTunnelsPerClient`) tunnels. */
export class TunnelLimitError extends TunnelError {
  constructor (readonly limit: number) {
    super('MPORT_ERR_TUNNEL_LIMIT', `at most ${limit} tunnels per client`)
  }
}

/**
 * Client side: the TCP connect or TLS handshake to `address` failed or timed out, or the relay
 * did not negotiate ALPN `mport/1`. The client retries with backoff.
 */
export class RelayUnreachableError extends TunnelError {
  constructor (readonly address: string, reason: string, options?: ErrorOptions) {
    super('MPORT_ERR_RELAY_UNREACHABLE', `cannot reach relay ${address}: ${reason}`, options)
  }
}

/**
 * Client side: the relay certificate's SHA-256 fingerprint (`actual`) differs from the pinned
 * or first-use-remembered one (`expected`). The client does not retry: this may be an impostor.
 */
export class CertificateMismatchError extends TunnelError {
  constructor (readonly expected: string, readonly actual: string) {
    super('MPORT_ERR_CERT_MISMATCH', `relay certificate fingerprint ${actual} does not match the expected ${expected}`)
  }
}

/**
 * Client side: no CA vouches for the relay certificate and nothing pins it; the message names
 * the `fingerprint` to pin. The client does not retry.
 */
export class CertificateUntrustedError extends TunnelError {
  constructor (reason: string, readonly fingerprint: string) {
    super('MPORT_ERR_CERT_UNTRUSTED', `relay certificate is not trusted (${reason}); its fingerprint is ${fingerprint}: pin it with --fingerprint ${fingerprint}`)
  }
}

/**
 * Client side: dialing the local `target` for a visitor stream was refused or timed out; the
 * client resets that stream and the relay resets the visitor's connection.
 */
export class LocalUnreachableError extends TunnelError {
  constructor (readonly target: string, reason: string, options?: ErrorOptions) {
    super('MPORT_ERR_LOCAL_UNREACHABLE', `local service ${target} refused the connection: ${reason}`, options)
  }
}

/** A requested subdomain or hostname is held by another client's lease. */
export class NameTakenError extends TunnelError {
  /** `holder` says who holds it, when the relay may tell (another client of the same user). */
  constructor (readonly hostname: string, holder = 'another client') {
    super('MPORT_ERR_NAME_TAKEN', `the name ${hostname} is already in use by ${holder}`)
  }
}

/**
 * `open` joins a load-balancing group that exists with a `groupKey` other than the one given
 * (or none); compared in constant time, never logged. Not retried: the key is configuration.
 */
export class GroupKeyError extends TunnelError {
  constructor (readonly group: string) {
    super('MPORT_ERR_GROUP_KEY', `wrong or missing group key for load-balancing group "${group}"`)
  }
}

/**
 * `open` joins a load-balancing group whose tunnel differs from the one asked for: another
 * kind, public port, subdomain or hostname. `detail` says what differs.
 */
export class GroupMismatchError extends TunnelError {
  constructor (readonly group: string, detail: string) {
    super('MPORT_ERR_GROUP_MISMATCH', `load-balancing group "${group}" ${detail}`)
  }
}

/** A plan limit is reached (tunnels, connections, monthly bytes, connection rate). */
export class QuotaExceededError extends TunnelError {
  constructor (readonly limit: string, readonly value: number, message?: string) {
    super('MPORT_ERR_QUOTA_EXCEEDED', message ?? `limit reached: ${limit} = ${value}`)
  }
}

/**
 * Client side: the proxy between the client and the relay refused its credentials (HTTP 407, a
 * SOCKS5 username/password failure) or asks for credentials none were given for. The message
 * names the proxy without its credentials. The client does not retry.
 */
export class ProxyAuthFailedError extends TunnelError {
  constructor (readonly proxy: string, reason: string) {
    super('MPORT_ERR_PROXY_AUTH_FAILED', `proxy ${proxy} refused the credentials: ${reason}`)
  }
}

/**
 * Client side: the proxy between the client and the relay would not connect to it: an HTTP
 * status other than 200 to CONNECT (`status`), or a SOCKS5 reply code (`reply`: 2 not allowed
 * by its rules, 5 refused, …). Retried like an unreachable relay; `auto` tries the next transport.
 */
export class ProxyRefusedError extends TunnelError {
  constructor (readonly proxy: string, readonly target: string, reason: string, readonly detail: { status?: number, reply?: number } = {}) {
    super('MPORT_ERR_PROXY_REFUSED', `proxy ${proxy} would not connect to ${target}: ${reason}`)
  }
}

/** Rebuilds the typed error for a code received in a control-protocol error reply. */
export function errorFromWire (code: string, message: string): MportError {
  const known = (ErrorCodes as readonly string[]).includes(code) ? code as ErrorCode : 'MPORT_ERR_INVALID_MESSAGE'
  return new TunnelError(known, message)
}
