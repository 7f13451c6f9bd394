/** Reservations: subdomains and ports a user holds, unique across the relay. */
import type { Selectable } from 'kysely'
import { NotFoundError, ReservationTakenError } from 'mport/errors'
import type { ReservationsTable } from '../schema.js'
import type { Reservation, ReservationKind, Store } from '../types.js'
import { normalizeReservation } from '../validate.js'
import { isUniqueViolation, newId, type SqlContext } from './common.js'
import type { SqlUsers } from './users.js'

export class SqlReservations implements Pick<Store, 'reserve' | 'listReservations' | 'findReservation' | 'release'> {
  readonly #ctx: SqlContext
  readonly #users: SqlUsers

  constructor (ctx: SqlContext, users: SqlUsers) {
    this.#ctx = ctx
    this.#users = users
  }

  async reserve (userId: string, kind: ReservationKind, value: string): Promise<Reservation> {
    const v = normalizeReservation(kind, value)
    await this.#users.requireUser(userId)
    const row: ReservationsTable = { id: newId('res'), user_id: userId, kind, value: v, created_at: this.#ctx.now() }
    try {
      await this.#ctx.db.insertInto('reservations').values(row).execute()
    } catch (err) {
      if (isUniqueViolation(err)) throw new ReservationTakenError(kind, v)
      throw err
    }
    return toReservation(row)
  }

  async listReservations (userId?: string): Promise<Reservation[]> {
    let q = this.#ctx.db.selectFrom('reservations').selectAll()
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const rows = await q.orderBy('kind').orderBy('value').execute()
    return rows.map(toReservation)
  }

  async findReservation (kind: ReservationKind, value: string): Promise<Reservation | undefined> {
    let v: string
    try { v = normalizeReservation(kind, value) } catch { return undefined }
    const row = await this.#ctx.db.selectFrom('reservations').selectAll().where('kind', '=', kind).where('value', '=', v).executeTakeFirst()
    return row && toReservation(row)
  }

  async release (id: string, userId?: string): Promise<Reservation> {
    let q = this.#ctx.db.selectFrom('reservations').selectAll().where('id', '=', id)
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const row = await q.executeTakeFirst()
    if (row === undefined) throw new NotFoundError('reservation', id)
    await this.#ctx.db.deleteFrom('reservations').where('id', '=', id).execute()
    return toReservation(row)
  }
}

function toReservation (r: Selectable<ReservationsTable>): Reservation {
  return { id: r.id, userId: r.user_id, kind: r.kind, value: r.value, createdAt: Number(r.created_at) }
}
