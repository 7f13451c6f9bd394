/**
 * How an error reaches an API caller: the HTTP status for each stable code, and the
 * `{ status, code, message }` the error handler sends. The errors themselves (mport/errors) carry
 * no status: the same NotFoundError is a 404 here and a message with its code in `mport-relay users`.
 */
import type { FastifyError } from 'fastify'
import { MportError, type ErrorCode } from 'mport/errors'

/**
 * The HTTP status of every code the API answers with. A code not listed (a database failure, a
 * mux or tunnel error that escaped a route) is an internal error: 500 with MPORT_ERR_INTERNAL,
 * and the details go to the log only.
 */
export const API_STATUS: Readonly<Partial<Record<ErrorCode, number>>> = {
  // store
  MPORT_ERR_INVALID_INPUT: 400,
  MPORT_ERR_NOT_FOUND: 404,
  MPORT_ERR_USER_EXISTS: 409,
  MPORT_ERR_RESERVATION_TAKEN: 409,
  // mux layer's config check: a config reload refused (the file fails validation)
  MPORT_ERR_INVALID_CONFIG: 422,
  // tunnel: plan limits and the failed-login limiter
  MPORT_ERR_QUOTA_EXCEEDED: 429,
  MPORT_ERR_RATE_LIMITED: 429,
  // api
  MPORT_ERR_UNAUTHENTICATED: 401,
  MPORT_ERR_FORBIDDEN: 403,
  MPORT_ERR_UNAVAILABLE: 503,
  MPORT_ERR_DOWNLOAD_MISSING: 404,
  MPORT_ERR_INTERNAL: 500,
}

/** The HTTP status the API answers `err` with: its code's entry in API_STATUS, else 500. */
export function statusFor (err: unknown): number {
  return (err instanceof MportError ? API_STATUS[err.code] : undefined) ?? 500
}

/** Status, stable code and message for any error reaching the handler. */
export function toHttpError (err: FastifyError | MportError | Error): { status: number, code: string, message: string } {
  if (err instanceof MportError) {
    const status = API_STATUS[err.code]
    if (status !== undefined) return { status, code: err.code, message: err.message }
    return internal
  }
  const f = err as FastifyError
  if (f.validation !== undefined) {
    return { status: 400, code: 'MPORT_ERR_INVALID_INPUT', message: `invalid request: ${f.message}` }
  }
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
    // Fastify's own 4xx (malformed JSON, unsupported media type, body too large): the request was at fault.
    const code: ErrorCode = f.statusCode === 404 ? 'MPORT_ERR_NOT_FOUND' : 'MPORT_ERR_INVALID_INPUT'
    return { status: f.statusCode, code, message: f.message }
  }
  return internal
}

const internal = { status: 500, code: 'MPORT_ERR_INTERNAL', message: 'internal error' } as const
