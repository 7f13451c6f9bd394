/** Rules for values the store accepts; each failure is an InvalidInputError naming the field. */
import { InvalidInputError } from 'mport/errors'
import type { ReservationKind, Role } from './types.js'

/** Lower-case letter first, then lower-case letters, digits, `-`, `_` or `.`; 2–32 characters. */
export const USER_NAME = /^[a-z][a-z0-9._-]{1,31}$/
/** Fewest characters a password may have. */
export const MIN_PASSWORD = 8
/** Most characters a password may have (bounds the scrypt input). */
export const MAX_PASSWORD = 1024
/** One DNS label, lower case. */
export const SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

export function checkUserName (name: string): void {
  if (!USER_NAME.test(name)) {
    throw new InvalidInputError(`user name ${JSON.stringify(name)} must be 2-32 characters: a lower-case letter, then lower-case letters, digits, ".", "_" or "-"`, 'name')
  }
}

export function checkPassword (password: string): void {
  if (password.length < MIN_PASSWORD) throw new InvalidInputError(`password must have at least ${MIN_PASSWORD} characters`, 'password')
  if (password.length > MAX_PASSWORD) throw new InvalidInputError(`password must have at most ${MAX_PASSWORD} characters`, 'password')
}

export function checkRole (role: string): asserts role is Role {
  if (role !== 'admin' && role !== 'user') throw new InvalidInputError(`role must be "admin" or "user", not ${JSON.stringify(role)}`, 'role')
}

export function checkTokenName (name: string): void {
  if (name.trim() === '' || name.length > 64) throw new InvalidInputError('token name must be 1-64 characters and not blank', 'name')
}

/** The canonical stored form of a reservation value. */
export function normalizeReservation (kind: ReservationKind, value: string): string {
  if (kind === 'subdomain') {
    const v = value.toLowerCase()
    if (!SUBDOMAIN.test(v)) throw new InvalidInputError(`subdomain ${JSON.stringify(value)} must be one DNS label: 1-63 letters, digits or "-", not starting or ending with "-"`, 'value')
    return v
  }
  if (kind === 'port') {
    if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
      throw new InvalidInputError(`port ${JSON.stringify(value)} must be an integer from 1 to 65535`, 'value')
    }
    return String(Number(value))
  }
  throw new InvalidInputError(`reservation kind must be "subdomain" or "port", not ${JSON.stringify(kind)}`, 'kind')
}

export function checkLimit (key: string, value: number | null): void {
  if (value !== null && (!Number.isSafeInteger(value) || value < 0)) {
    throw new InvalidInputError(`limit ${key} must be a non-negative integer or null`, key)
  }
}
