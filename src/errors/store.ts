/**
 * Errors of the relay's persistent store (packages/mport-relay/src/store). They say what went
 * wrong, not how to present it: the REST API maps codes to HTTP statuses (api/status.ts).
 */
import { MportError, type ErrorLayer } from './base.js'

/** An error of the store. */
export class StoreError extends MportError {
  static override readonly layer: ErrorLayer = 'store'
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
  constructor (message: string, readonly field?: string) {
    super('MPORT_ERR_INVALID_INPUT', message)
  }
}

/** The user, token, reservation or tunnel does not exist (or is not the caller's). */
export class NotFoundError extends StoreError {
  constructor (readonly what: string, readonly id?: string) {
    super('MPORT_ERR_NOT_FOUND', id === undefined ? `${what} not found` : `${what} ${JSON.stringify(id)} not found`)
  }
}

/** Creating a user with a `userName` that another user has; the API answers 409. */
export class UserExistsError extends StoreError {
  constructor (readonly userName: string) {
    super('MPORT_ERR_USER_EXISTS', `a user named "${userName}" already exists`)
  }
}

/** The subdomain or port (`kind`, `value`) is already reserved by someone; the API answers 409. */
export class ReservationTakenError extends StoreError {
  constructor (readonly kind: string, readonly value: string) {
    super('MPORT_ERR_RESERVATION_TAKEN', `${kind} "${value}" is already reserved`)
  }
}
