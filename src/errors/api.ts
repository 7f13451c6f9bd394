/**
 * Errors of the REST API. Each has a stable `code` (PROTOCOL.md's error table) and its HTTP
 * `status`; the API answers every 4xx/5xx with `{ "error": { "code", "message" } }`.
 */
import { MportError } from './base.js'

export class ApiError extends MportError {
  readonly status: number = 400
}

/** No credentials, unknown or expired credentials, or a wrong name/password at login (401). */
export class UnauthenticatedError extends ApiError {
  override readonly status = 401
  constructor (message = 'authentication required: send "Authorization: Bearer <token>"') {
    super('MPORT_ERR_UNAUTHENTICATED', message)
  }
}

/** Authenticated, but not allowed to do this (403). */
export class ForbiddenError extends ApiError {
  override readonly status = 403
  constructor (message = 'this needs the admin role') {
    super('MPORT_ERR_FORBIDDEN', message)
  }
}

/** The relay did not wire this feature into the API (503). */
export class UnavailableError extends ApiError {
  override readonly status = 503
  constructor (what: string) {
    super('MPORT_ERR_UNAVAILABLE', `${what} is not available on this relay`)
  }
}

/** An unexpected failure; details go to the log, not to the caller (500). */
export class InternalError extends ApiError {
  override readonly status = 500
  constructor (message = 'internal error') {
    super('MPORT_ERR_INTERNAL', message)
  }
}
