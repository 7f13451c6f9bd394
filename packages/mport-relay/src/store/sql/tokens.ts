/**
 * API tokens: a user's named bearer credentials. Only tokenId(raw) and tokenKey(raw) are
 * stored; the raw token is returned once, at creation.
 */
import { timingSafeEqual } from 'node:crypto'
import type { Selectable } from 'kysely'
import { generateToken, tokenId, tokenKey } from 'mport/relay'
import { InvalidInputError, NotFoundError } from 'mport/errors'
import type { ApiTokensTable } from '../schema.js'
import type { ApiToken, Store, User } from '../types.js'
import { checkTokenName } from '../validate.js'
import { newId, toTime, type SqlContext } from './common.js'
import type { SqlUsers } from './users.js'

export class SqlTokens implements Pick<Store, 'createToken' | 'listTokens' | 'revokeToken' | 'credential' | 'resolveToken' | 'touchToken'> {
  readonly #ctx: SqlContext
  readonly #users: SqlUsers

  constructor (ctx: SqlContext, users: SqlUsers) {
    this.#ctx = ctx
    this.#users = users
  }

  async createToken (userId: string, name: string, opts: { expiresAt?: number | null } = {}): Promise<{ token: ApiToken, raw: string }> {
    checkTokenName(name)
    const expiresAt = opts.expiresAt ?? null
    if (expiresAt !== null && !(Number.isSafeInteger(expiresAt) && expiresAt > this.#ctx.now())) throw new InvalidInputError('a token\'s expiry must be in the future', 'expiresAt')
    await this.#users.requireUser(userId)
    const raw = generateToken()
    const row: Selectable<ApiTokensTable> = {
      id: newId('tok'),
      user_id: userId,
      name,
      token_id: tokenId(raw),
      key: tokenKey(raw),
      created_at: this.#ctx.now(),
      last_used_at: null,
      revoked_at: null,
      expires_at: expiresAt,
    }
    await this.#ctx.db.insertInto('api_tokens').values(row).execute()
    return { token: toToken(row), raw }
  }

  async listTokens (userId: string): Promise<ApiToken[]> {
    const rows = await this.#ctx.db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute()
    return rows.map(toToken)
  }

  async revokeToken (id: string, userId?: string): Promise<ApiToken> {
    let q = this.#ctx.db.selectFrom('api_tokens').selectAll().where('id', '=', id)
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const row = await q.executeTakeFirst()
    if (row === undefined) throw new NotFoundError('token', id)
    if (row.revoked_at === null) {
      row.revoked_at = this.#ctx.now()
      await this.#ctx.db.updateTable('api_tokens').set({ revoked_at: row.revoked_at }).where('id', '=', id).where('revoked_at', 'is', null).execute()
    }
    return toToken(row)
  }

  async credential (id: string): Promise<{ key: Buffer, user: User, token: ApiToken } | undefined> {
    const row = await this.#ctx.db.selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .selectAll('api_tokens')
      .select(['users.name as u_name', 'users.role as u_role', 'users.created_at as u_created_at', 'users.disabled_at as u_disabled_at'])
      .where('api_tokens.token_id', '=', id)
      .where('api_tokens.revoked_at', 'is', null)
      .where(eb => eb.or([eb('api_tokens.expires_at', 'is', null), eb('api_tokens.expires_at', '>', this.#ctx.now())]))
      .where('users.disabled_at', 'is', null)
      .executeTakeFirst()
    if (row === undefined) return undefined
    const user: User = { id: row.user_id, name: row.u_name, role: row.u_role, createdAt: Number(row.u_created_at), disabledAt: null }
    return { key: toBuffer(row.key), user, token: toToken(row) }
  }

  async resolveToken (raw: string): Promise<{ user: User, token: ApiToken } | undefined> {
    const cred = await this.credential(tokenId(raw))
    if (cred === undefined) return undefined
    const key = tokenKey(raw)
    if (key.length !== cred.key.length || !timingSafeEqual(key, cred.key)) return undefined
    return { user: cred.user, token: cred.token }
  }

  async touchToken (id: string, at = this.#ctx.now()): Promise<void> {
    await this.#ctx.db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute()
  }
}

/** SQLite (libsql) returns BLOBs as ArrayBuffer, pg as Buffer. */
function toBuffer (v: Uint8Array | ArrayBuffer): Buffer {
  return v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

function toToken (r: Selectable<ApiTokensTable>): ApiToken {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    tokenId: r.token_id,
    createdAt: Number(r.created_at),
    lastUsedAt: toTime(r.last_used_at),
    revokedAt: toTime(r.revoked_at),
    expiresAt: toTime(r.expires_at),
  }
}
