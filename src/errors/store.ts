/**
 * Errors of the persistent store. Each has a stable `code` (PROTOCOL.md's error table) and the
 * HTTP `status` the REST API answers with when the error reaches it.
 */
import { MportError } from './base.js'

export class StoreError extends MportError {
  /** HTTP status the REST API maps this error to. */
  readonly status: number = 500
}

/** The database cannot be opened, reached or written, or its URL is not supported. */
export class DatabaseError extends StoreError {
  constructor (message: string, options?: ErrorOptions) {
    super('MPORT_ERR_DATABASE', message, options)
  }
}

/** The database was migrated by a newer mport than this one. */
export class SchemaTooNewError extends StoreError {
  constructor (readonly found: number, readonly known: number) {
    super('MPORT_ERR_SCHEMA_TOO_NEW', `the database schema is at version ${found}, this mport knows up to ${known}: upgrade mport`)
  }
}

/** A value breaks a rule the store enforces (name syntax, password length, port range, …). */
export class InvalidInputError extends StoreError {
  override readonly status = 400
  constructor (message: string, readonly field?: string) {
    super('MPORT_ERR_INVALID_INPUT', message)
  }
}

/** The user, token, reservation or tunnel does not exist (or is not the caller's). */
export class NotFoundError extends StoreError {
  override readonly status = 404
  constructor (readonly what: string, readonly id?: string) {
    super('MPORT_ERR_NOT_FOUND', id === undefined ? `${what} not found` : `${what} ${JSON.stringify(id)} not found`)
  }
}

export class UserExistsError extends StoreError {
  override readonly status = 409
  constructor (readonly userName: string) {
    super('MPORT_ERR_USER_EXISTS', `a user named "${userName}" already exists`)
  }
}

export class ReservationTakenError extends StoreError {
  override readonly status = 409
  constructor (readonly kind: string, readonly value: string) {
    super('MPORT_ERR_RESERVATION_TAKEN', `${kind} "${value}" is already reserved`)
  }
}

/** A plan limit is reached (tunnels, connections, monthly bytes, connection rate). */
export class QuotaExceededError extends StoreError {
  override readonly status = 429
  constructor (readonly limit: string, readonly value: number, message?: string) {
    super('MPORT_ERR_QUOTA_EXCEEDED', message ?? `limit reached: ${limit} = ${value}`)
  }
}
