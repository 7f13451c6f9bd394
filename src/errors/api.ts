/**
 * Errors of the relay's REST API (packages/mport-relay/src/api). The API answers every 4xx/5xx
 * with `{ "error": { "code", "message" } }`; the status for each code is in api/status.ts.
 * Also the replay errors of the client's inspector API (mport-connect), an API of the same kind.
 */
import { MportError, type ErrorLayer } from './base.js'

/** An error of the REST API. */
export class ApiError extends MportError {
  static override readonly layer: ErrorLayer = 'api'
}

/** No credentials, unknown or expired credentials, or a wrong name/password at login. */
export class UnauthenticatedError extends ApiError {
  constructor (message = 'authentication required: send "Authorization: Bearer <token>"') {
    super('MPORT_ERR_UNAUTHENTICATED', message)
  }
}

/** Authenticated, but not allowed to do this. */
export class ForbiddenError extends ApiError {
  constructor (message = 'this needs the admin role') {
    super('MPORT_ERR_FORBIDDEN', message)
  }
}

/** The relay did not wire this feature into the API. */
export class UnavailableError extends ApiError {
  constructor (what: string) {
    super('MPORT_ERR_UNAVAILABLE', `${what} is not available on this relay`)
  }
}

/** A file the relay hands out (GET /dl/…) is not there: its client bundle was not built, or the executable cannot be made on this host; `how` says what to do. */
export class DownloadMissingError extends ApiError {
  constructor (file: string, how: string) {
    super('MPORT_ERR_DOWNLOAD_MISSING', `${file} is not available on this relay: ${how}`)
  }
}

/** An unexpected failure; details go to the log, not to the caller. */
export class InternalError extends ApiError {
  constructor (message = 'internal error') {
    super('MPORT_ERR_INTERNAL', message)
  }
}

/** A replay's edits are malformed (an unknown field, a bad method, path or header, not JSON); the inspector answers 400. */
export class InvalidReplayError extends ApiError {
  constructor (message: string) {
    super('MPORT_ERR_INVALID_REPLAY', message)
  }
}

/** A recorded request cannot be sent again as it was (its body was over the cap, or it was an Upgrade or CONNECT); the inspector answers 409. */
export class ReplayUnavailableError extends ApiError {
  constructor (message: string) {
    super('MPORT_ERR_REPLAY_UNAVAILABLE', message)
  }
}
