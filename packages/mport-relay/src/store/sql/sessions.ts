/** REST API login sessions: only the SHA-256 of the session token (`mps_…`) is stored. */
import { createHash, randomBytes } from 'node:crypto'
import type { Session, Store, User } from '../types.js'
import { newId, type SqlContext } from './common.js'

export class SqlSessions implements Pick<Store, 'createSession' | 'resolveSession' | 'deleteSession'> {
  readonly #ctx: SqlContext

  constructor (ctx: SqlContext) {
    this.#ctx = ctx
  }

  async createSession (userId: string, ttlMs: number, address?: string): Promise<{ session: Session, raw: string }> {
    const raw = 'mps_' + randomBytes(24).toString('base64url')
    const now = this.#ctx.now()
    const session: Session = { id: newId('ses'), userId, createdAt: now, expiresAt: now + ttlMs }
    await this.#ctx.db.insertInto('sessions').values({
      id: session.id, user_id: userId, token_hash: sha256(raw), created_at: now, expires_at: session.expiresAt, last_used_at: null, address: address ?? null,
    }).execute()
    // Expired sessions go when new ones come: no timer needed.
    await this.#ctx.db.deleteFrom('sessions').where('expires_at', '<=', now).execute()
    return { session, raw }
  }

  async resolveSession (raw: string): Promise<{ user: User, session: Session } | undefined> {
    const now = this.#ctx.now()
    const row = await this.#ctx.db.selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.id', 'sessions.user_id', 'sessions.created_at', 'sessions.expires_at'])
      .select(['users.name', 'users.role', 'users.created_at as u_created_at'])
      .where('sessions.token_hash', '=', sha256(raw))
      .where('sessions.expires_at', '>', now)
      .where('users.disabled_at', 'is', null)
      .executeTakeFirst()
    if (row === undefined) return undefined
    await this.#ctx.db.updateTable('sessions').set({ last_used_at: now }).where('id', '=', row.id).execute()
    return {
      user: { id: row.user_id, name: row.name, role: row.role, createdAt: Number(row.u_created_at), disabledAt: null },
      session: { id: row.id, userId: row.user_id, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at) },
    }
  }

  async deleteSession (raw: string): Promise<boolean> {
    const r = await this.#ctx.db.deleteFrom('sessions').where('token_hash', '=', sha256(raw)).executeTakeFirst()
    return Number(r.numDeletedRows) > 0
  }

  /** Ends every session of `userId` (when the user is disabled). */
  async deleteUserSessions (userId: string): Promise<void> {
    await this.#ctx.db.deleteFrom('sessions').where('user_id', '=', userId).execute()
  }
}

function sha256 (s: string): string {
  return createHash('sha256').update(s).digest('base64url')
}
