/**
 * Errors of the relay's HTTP and TLS front (src/http): the request-head and ClientHello parsers
 * and the rules for tunnel names.
 */
import { MportError, type ErrorLayer } from './base.js'

/** An error of the HTTP and TLS front. */
export class HttpLayerError extends MportError {
  static override readonly layer: ErrorLayer = 'http'
}

/**
 * A visitor's request that the relay answers with an HTTP error status and then closes.
 *
 * Unlike the store's and the API's errors, this one keeps its `status`: the relay speaks HTTP
 * to the visitor itself, so the status is part of what the parser found (431 exists only for
 * an oversized head), not a choice a caller higher up makes about how to present the error.
 */
export class HttpError extends HttpLayerError {
  /** The HTTP status to answer the visitor with. */
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
export class InvalidClientHelloError extends HttpLayerError {
  constructor (message: string) {
    super('MPORT_ERR_INVALID_CLIENT_HELLO', `invalid TLS ClientHello: ${message}`)
  }
}

/** A requested subdomain or custom hostname breaks DNS label rules. */
export class InvalidHostnameError extends HttpLayerError {
  constructor (readonly hostname: string, reason: string) {
    super('MPORT_ERR_INVALID_HOSTNAME', `invalid name ${JSON.stringify(hostname)}: ${reason}`)
  }
}

/** A requested subdomain is reserved by the relay. */
export class ReservedNameError extends HttpLayerError {
  constructor (readonly hostname: string) {
    super('MPORT_ERR_NAME_RESERVED', `the name "${hostname}" is reserved on this relay; pick another one`)
  }
}
