/** What every SQL aggregate shares: the database handle, the clock, row ids and error shapes. */
import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'

/** The handle and clock an aggregate runs its queries with. */
export interface SqlContext {
  readonly db: Kysely<Database>
  readonly now: () => number
}

/** A fresh row id: `<prefix>_` and 96 random bits. */
export function newId (prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`
}

/** A UNIQUE violation on SQLite or PostgreSQL (SQLSTATE 23505). */
export function isUniqueViolation (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown, message?: unknown }
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    (typeof e.message === 'string' && e.message.includes('UNIQUE constraint failed'))
}

/** A nullable time column as a number (pg returns BIGINT as a string at run time). */
export function toTime (v: number | null): number | null {
  return v === null ? null : Number(v)
}
