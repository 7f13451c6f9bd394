/**
 * Errors of the HTTP and TLS routing layer. Each carries a stable `code` (PROTOCOL.md's error
 * table) and, where a visitor gets an answer, the HTTP `status` the relay sends back.
 */
import { TunnelError } from '../errors.js'

/** A visitor's request that the relay answers with an HTTP error status and then closes. */
export class HttpError extends TunnelError {
  /** The HTTP status to answer with. */
  readonly status: number = 400
}

/** Malformed request head: request line, header syntax, Host or body framing. Answered with 400. */
export class BadRequestError extends HttpError {
  override readonly status = 400
  constructor (message: string) {
    super('MPORT_ERR_BAD_REQUEST', message)
  }
}

/** Request head over the size or header-count limit. Answered with 431. */
export class HeadersTooLargeError extends HttpError {
  override readonly status = 431
  constructor (readonly limit: number, what: string) {
    super('MPORT_ERR_HEADERS_TOO_LARGE', `${what} exceeds the limit of ${limit}`)
  }
}

/** The first bytes on the shared TLS port are a TLS handshake record but not a readable ClientHello. */
export class InvalidClientHelloError extends TunnelError {
  constructor (message: string) {
    super('MPORT_ERR_INVALID_CLIENT_HELLO', `invalid TLS ClientHello: ${message}`)
  }
}

/** A requested subdomain or custom hostname breaks DNS label rules. */
export class InvalidHostnameError extends TunnelError {
  constructor (readonly hostname: string, reason: string) {
    super('MPORT_ERR_INVALID_HOSTNAME', `invalid name ${JSON.stringify(hostname)}: ${reason}`)
  }
}

/** A requested subdomain is reserved by the relay. */
export class ReservedNameError extends TunnelError {
  constructor (readonly hostname: string) {
    super('MPORT_ERR_NAME_RESERVED', `the name "${hostname}" is reserved on this relay; pick another one`)
  }
}
