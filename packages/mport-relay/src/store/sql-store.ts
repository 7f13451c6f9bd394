/**
 * SqlStore: the Store on Kysely, one code path for SQLite and PostgreSQL. Every query goes
 * through Kysely's builder with bound values; the few `sql` fragments carry constants only.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { sql, type Kysely, type Selectable } from 'kysely'
import { generateToken, tokenId, tokenKey } from 'mport/relay'
import { NotFoundError, ReservationTakenError, UserExistsError } from 'mport/errors'
import type { Dialect } from './migrations.js'
import { DEFAULT_SCRYPT, dummyHash, hashPassword, verifyPassword, type ScryptParams } from './password.js'
import type { ApiTokensTable, AuditLogTable, Database, LimitsTable, ReservationsTable, UsersTable } from './schema.js'
import type {
  ApiToken, AuditEntry, AuditInput, LimitOverrides, Limits, Reservation, ReservationKind, Role, RollupResult, Session, Store,
  UsageBucket, UsageDelta, UsageQuery, User,
} from './types.js'
import { checkLimit, checkPassword, checkRole, checkTokenName, checkUserName, normalizeReservation } from './validate.js'

export const MINUTE = 60_000
export const HOUR = 3_600_000
export const DAY = 86_400_000

export interface SqlStoreOptions {
  /** Relay-wide plan defaults (unset keys: unlimited). */
  defaults?: Partial<Limits>
  /** scrypt cost for new password hashes. */
  scrypt?: ScryptParams
  /** Hour rows older than this move into day rows at rollup (default 35 days). */
  hourRetentionMs?: number
  /** Clock (tests). */
  now?: () => number
}

const LIMIT_COLUMNS = {
  maxTunnels: 'max_tunnels',
  maxConnections: 'max_connections',
  monthlyBytes: 'monthly_bytes',
  bandwidthBytesPerSecond: 'bandwidth_bps',
  connectionsPerMinute: 'connections_per_minute',
} as const satisfies Record<keyof Limits, keyof LimitsTable>
const LIMIT_KEYS = Object.keys(LIMIT_COLUMNS) as Array<keyof Limits>

const COUNTERS = ['bytes_in', 'bytes_out', 'connections', 'active_seconds'] as const
const USAGE_KEY = ['user_id', 'granularity', 'bucket_start', 'tunnel'] as const

export class SqlStore implements Store {
  readonly dialect: Dialect
  readonly defaultLimits: Limits
  readonly #db: Kysely<Database>
  readonly #scrypt: ScryptParams
  readonly #hourRetention: number
  readonly #now: () => number

  constructor (db: Kysely<Database>, dialect: Dialect, options: SqlStoreOptions = {}) {
    this.#db = db
    this.dialect = dialect
    this.#scrypt = options.scrypt ?? DEFAULT_SCRYPT
    this.#hourRetention = options.hourRetentionMs ?? 35 * DAY
    this.#now = options.now ?? Date.now
    const d = options.defaults ?? {}
    this.defaultLimits = Object.fromEntries(LIMIT_KEYS.map(k => [k, d[k] ?? null])) as unknown as Limits
    for (const k of LIMIT_KEYS) checkLimit(k, this.defaultLimits[k])
  }

  /** The Kysely instance, for tests and tools. */
  get db (): Kysely<Database> { return this.#db }

  async ping (): Promise<void> {
    await sql`select 1`.execute(this.#db)
  }

  async close (): Promise<void> {
    await this.#db.destroy()
  }

  // ---- Users ----

  async createUser (input: { name: string, password: string, role?: Role }): Promise<User> {
    checkUserName(input.name)
    checkPassword(input.password)
    const role = input.role ?? 'user'
    checkRole(role)
    const row: UsersTable = {
      id: newId('usr'),
      name: input.name,
      role,
      password_hash: await hashPassword(input.password, this.#scrypt),
      created_at: this.#now(),
      disabled_at: null,
    }
    try {
      await this.#db.insertInto('users').values(row).execute()
    } catch (err) {
      if (isUniqueViolation(err)) throw new UserExistsError(input.name)
      throw err
    }
    return toUser(row)
  }

  async getUser (id: string): Promise<User | undefined> {
    const row = await this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toUser(row)
  }

  async getUserByName (name: string): Promise<User | undefined> {
    const row = await this.#db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst()
    return row && toUser(row)
  }

  async listUsers (): Promise<User[]> {
    const rows = await this.#db.selectFrom('users').selectAll().orderBy('created_at').orderBy('name').execute()
    return rows.map(toUser)
  }

  async countUsers (): Promise<number> {
    const row = await this.#db.selectFrom('users').select(eb => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
    return Number(row.n)
  }

  async updateUser (id: string, change: { role?: Role, disabled?: boolean, password?: string }): Promise<User> {
    const set: Partial<UsersTable> = {}
    if (change.role !== undefined) { checkRole(change.role); set.role = change.role }
    if (change.password !== undefined) { checkPassword(change.password); set.password_hash = await hashPassword(change.password, this.#scrypt) }
    const current = await this.getUser(id)
    if (current === undefined) throw new NotFoundError('user', id)
    if (change.disabled !== undefined && change.disabled !== (current.disabledAt !== null)) set.disabled_at = change.disabled ? this.#now() : null
    if (Object.keys(set).length > 0) {
      await this.#db.updateTable('users').set(set).where('id', '=', id).execute()
      if (set.disabled_at !== undefined && set.disabled_at !== null) {
        await this.#db.deleteFrom('sessions').where('user_id', '=', id).execute()
      }
    }
    return (await this.getUser(id))!
  }

  async checkPassword (name: string, password: string): Promise<User | undefined> {
    const row = await this.#db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst()
    const ok = await verifyPassword(password, row?.password_hash ?? await dummyHash(this.#scrypt))
    return row !== undefined && ok && row.disabled_at === null ? toUser(row) : undefined
  }

  // ---- API tokens ----

  async createToken (userId: string, name: string): Promise<{ token: ApiToken, raw: string }> {
    checkTokenName(name)
    if (await this.getUser(userId) === undefined) throw new NotFoundError('user', userId)
    const raw = generateToken()
    const row: Selectable<ApiTokensTable> = {
      id: newId('tok'),
      user_id: userId,
      name,
      token_id: tokenId(raw),
      key: tokenKey(raw),
      created_at: this.#now(),
      last_used_at: null,
      revoked_at: null,
    }
    await this.#db.insertInto('api_tokens').values(row).execute()
    return { token: toToken(row), raw }
  }

  async listTokens (userId: string): Promise<ApiToken[]> {
    const rows = await this.#db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute()
    return rows.map(toToken)
  }

  async revokeToken (id: string, userId?: string): Promise<ApiToken> {
    let q = this.#db.selectFrom('api_tokens').selectAll().where('id', '=', id)
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const row = await q.executeTakeFirst()
    if (row === undefined) throw new NotFoundError('token', id)
    if (row.revoked_at === null) {
      row.revoked_at = this.#now()
      await this.#db.updateTable('api_tokens').set({ revoked_at: row.revoked_at }).where('id', '=', id).where('revoked_at', 'is', null).execute()
    }
    return toToken(row)
  }

  async credential (id: string): Promise<{ key: Buffer, user: User, token: ApiToken } | undefined> {
    const row = await this.#db.selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .selectAll('api_tokens')
      .select(['users.name as u_name', 'users.role as u_role', 'users.created_at as u_created_at', 'users.disabled_at as u_disabled_at'])
      .where('api_tokens.token_id', '=', id)
      .where('api_tokens.revoked_at', 'is', null)
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

  async touchToken (id: string, at = this.#now()): Promise<void> {
    await this.#db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute()
  }

  // ---- Sessions ----

  async createSession (userId: string, ttlMs: number, address?: string): Promise<{ session: Session, raw: string }> {
    const raw = 'mps_' + randomBytes(24).toString('base64url')
    const now = this.#now()
    const session: Session = { id: newId('ses'), userId, createdAt: now, expiresAt: now + ttlMs }
    await this.#db.insertInto('sessions').values({
      id: session.id, user_id: userId, token_hash: sha256(raw), created_at: now, expires_at: session.expiresAt, last_used_at: null, address: address ?? null,
    }).execute()
    // Expired sessions go when new ones come: no timer needed.
    await this.#db.deleteFrom('sessions').where('expires_at', '<=', now).execute()
    return { session, raw }
  }

  async resolveSession (raw: string): Promise<{ user: User, session: Session } | undefined> {
    const now = this.#now()
    const row = await this.#db.selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.id', 'sessions.user_id', 'sessions.created_at', 'sessions.expires_at'])
      .select(['users.name', 'users.role', 'users.created_at as u_created_at'])
      .where('sessions.token_hash', '=', sha256(raw))
      .where('sessions.expires_at', '>', now)
      .where('users.disabled_at', 'is', null)
      .executeTakeFirst()
    if (row === undefined) return undefined
    await this.#db.updateTable('sessions').set({ last_used_at: now }).where('id', '=', row.id).execute()
    return {
      user: { id: row.user_id, name: row.name, role: row.role, createdAt: Number(row.u_created_at), disabledAt: null },
      session: { id: row.id, userId: row.user_id, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at) },
    }
  }

  async deleteSession (raw: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('sessions').where('token_hash', '=', sha256(raw)).executeTakeFirst()
    return Number(r.numDeletedRows) > 0
  }

  // ---- Reservations ----

  async reserve (userId: string, kind: ReservationKind, value: string): Promise<Reservation> {
    const v = normalizeReservation(kind, value)
    if (await this.getUser(userId) === undefined) throw new NotFoundError('user', userId)
    const row: ReservationsTable = { id: newId('res'), user_id: userId, kind, value: v, created_at: this.#now() }
    try {
      await this.#db.insertInto('reservations').values(row).execute()
    } catch (err) {
      if (isUniqueViolation(err)) throw new ReservationTakenError(kind, v)
      throw err
    }
    return toReservation(row)
  }

  async listReservations (userId?: string): Promise<Reservation[]> {
    let q = this.#db.selectFrom('reservations').selectAll()
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const rows = await q.orderBy('kind').orderBy('value').execute()
    return rows.map(toReservation)
  }

  async findReservation (kind: ReservationKind, value: string): Promise<Reservation | undefined> {
    let v: string
    try { v = normalizeReservation(kind, value) } catch { return undefined }
    const row = await this.#db.selectFrom('reservations').selectAll().where('kind', '=', kind).where('value', '=', v).executeTakeFirst()
    return row && toReservation(row)
  }

  async release (id: string, userId?: string): Promise<Reservation> {
    let q = this.#db.selectFrom('reservations').selectAll().where('id', '=', id)
    if (userId !== undefined) q = q.where('user_id', '=', userId)
    const row = await q.executeTakeFirst()
    if (row === undefined) throw new NotFoundError('reservation', id)
    await this.#db.deleteFrom('reservations').where('id', '=', id).execute()
    return toReservation(row)
  }

  // ---- Usage ----

  async addUsage (deltas: readonly UsageDelta[]): Promise<void> {
    // Merge deltas that land in the same bucket, so one row is written once per flush.
    const merged = new Map<string, UsageDelta>()
    for (const d of deltas) {
      const start = d.at - mod(d.at, MINUTE)
      const key = JSON.stringify([d.userId, d.tunnel, start])
      const m = merged.get(key)
      if (m === undefined) merged.set(key, { ...d, at: start })
      else { m.bytesIn += d.bytesIn; m.bytesOut += d.bytesOut; m.connections += d.connections; m.activeSeconds += d.activeSeconds }
    }
    if (merged.size === 0) return
    await this.#db.transaction().execute(async trx => {
      for (const d of merged.values()) {
        await trx.insertInto('usage').values({
          user_id: d.userId, tunnel: d.tunnel, granularity: 'minute', bucket_start: d.at,
          bytes_in: d.bytesIn, bytes_out: d.bytesOut, connections: d.connections, active_seconds: d.activeSeconds,
        }).onConflict(oc => oc.columns(USAGE_KEY).doUpdateSet(eb => ({
          bytes_in: eb('usage.bytes_in', '+', eb.ref('excluded.bytes_in')),
          bytes_out: eb('usage.bytes_out', '+', eb.ref('excluded.bytes_out')),
          connections: eb('usage.connections', '+', eb.ref('excluded.connections')),
          active_seconds: eb('usage.active_seconds', '+', eb.ref('excluded.active_seconds')),
        }))).execute()
      }
    })
  }

  async rollup (now = this.#now()): Promise<RollupResult> {
    const hourCut = now - mod(now, HOUR)
    const dayCut = (now - this.#hourRetention) - mod(now - this.#hourRetention, DAY)
    return await this.#db.transaction().execute(async trx => {
      const minutes = await this.#move(trx, 'minute', 'hour', HOUR, hourCut)
      const hours = await this.#move(trx, 'hour', 'day', DAY, dayCut)
      return { minutes, hours }
    })
  }

  /** Adds rows of `from` granularity older than `cut` into `to` rows of `size` ms, then deletes them. */
  async #move (trx: Kysely<Database>, from: 'minute' | 'hour', to: 'hour' | 'day', size: number, cut: number): Promise<number> {
    // `size` is one of two constants, never a caller's value: a literal keeps GROUP BY and SELECT identical.
    const start = sql<number>`bucket_start - (bucket_start % ${sql.lit(size)})`
    await trx.insertInto('usage')
      .columns(['user_id', 'tunnel', 'granularity', 'bucket_start', ...COUNTERS])
      .expression(eb => eb.selectFrom('usage')
        .select(['user_id', 'tunnel'])
        .select([
          sql.lit(to).as('granularity'),
          start.as('bucket_start'),
          ...COUNTERS.map(c => eb.fn.sum<number>(c).as(c)),
        ])
        .where('granularity', '=', from)
        .where('bucket_start', '<', cut)
        .groupBy(['user_id', 'tunnel', start]))
      .onConflict(oc => oc.columns(USAGE_KEY).doUpdateSet(eb => ({
        bytes_in: eb('usage.bytes_in', '+', eb.ref('excluded.bytes_in')),
        bytes_out: eb('usage.bytes_out', '+', eb.ref('excluded.bytes_out')),
        connections: eb('usage.connections', '+', eb.ref('excluded.connections')),
        active_seconds: eb('usage.active_seconds', '+', eb.ref('excluded.active_seconds')),
      })))
      .execute()
    const r = await trx.deleteFrom('usage').where('granularity', '=', from).where('bucket_start', '<', cut).executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  async queryUsage (q: UsageQuery): Promise<UsageBucket[]> {
    const size = q.granularity === 'hour' ? HOUR : DAY
    const from = q.from - mod(q.from, size)
    let query = this.#db.selectFrom('usage').selectAll()
      .where('bucket_start', '>=', from).where('bucket_start', '<', q.to)
      // Hour buckets are answered from minute and hour rows; day buckets from all three.
      .where('granularity', 'in', q.granularity === 'hour' ? ['minute', 'hour'] : ['minute', 'hour', 'day'])
    if (q.userId !== undefined) query = query.where('user_id', '=', q.userId)
    if (q.tunnel !== undefined) query = query.where('tunnel', '=', q.tunnel)
    const rows = await query.execute()
    const buckets = new Map<string, UsageBucket>()
    for (const r of rows) {
      const start = Number(r.bucket_start) - mod(Number(r.bucket_start), size)
      const key = JSON.stringify([start, r.user_id, r.tunnel])
      let b = buckets.get(key)
      if (b === undefined) {
        b = { start, userId: r.user_id, tunnel: r.tunnel, bytesIn: 0, bytesOut: 0, connections: 0, activeSeconds: 0 }
        buckets.set(key, b)
      }
      b.bytesIn += Number(r.bytes_in)
      b.bytesOut += Number(r.bytes_out)
      b.connections += Number(r.connections)
      b.activeSeconds += Number(r.active_seconds)
    }
    return [...buckets.values()].sort((a, b) => a.start - b.start || cmp(a.userId, b.userId) || cmp(a.tunnel, b.tunnel))
  }

  async monthBytes (userId: string, now = this.#now()): Promise<number> {
    const d = new Date(now)
    const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
    const row = await this.#db.selectFrom('usage')
      .select(eb => [eb.fn.sum<number>('bytes_in').as('i'), eb.fn.sum<number>('bytes_out').as('o')])
      .where('user_id', '=', userId).where('bucket_start', '>=', monthStart)
      .executeTakeFirstOrThrow()
    return Number(row.i ?? 0) + Number(row.o ?? 0)
  }

  // ---- Limits ----

  async getLimitOverrides (userId: string): Promise<LimitOverrides> {
    const row = await this.#db.selectFrom('limits').selectAll().where('user_id', '=', userId).executeTakeFirst()
    const out: LimitOverrides = {}
    if (row === undefined) return out
    for (const k of LIMIT_KEYS) {
      const v = row[LIMIT_COLUMNS[k]]
      if (v !== null) out[k] = Number(v)
    }
    return out
  }

  async setLimitOverrides (userId: string, overrides: LimitOverrides): Promise<LimitOverrides> {
    if (await this.getUser(userId) === undefined) throw new NotFoundError('user', userId)
    const merged = { ...await this.getLimitOverrides(userId) }
    for (const k of LIMIT_KEYS) {
      const v = overrides[k]
      if (v === undefined) continue
      checkLimit(k, v)
      if (v === null) delete merged[k]
      else merged[k] = v
    }
    const row: LimitsTable = {
      user_id: userId,
      max_tunnels: merged.maxTunnels ?? null,
      max_connections: merged.maxConnections ?? null,
      monthly_bytes: merged.monthlyBytes ?? null,
      bandwidth_bps: merged.bandwidthBytesPerSecond ?? null,
      connections_per_minute: merged.connectionsPerMinute ?? null,
      updated_at: this.#now(),
    }
    const { user_id: _key, ...update } = row
    await this.#db.insertInto('limits').values(row).onConflict(oc => oc.column('user_id').doUpdateSet(update)).execute()
    return merged
  }

  async effectiveLimits (userId: string): Promise<Limits> {
    return { ...this.defaultLimits, ...await this.getLimitOverrides(userId) }
  }

  // ---- Audit log ----

  async audit (entry: AuditInput): Promise<AuditEntry> {
    const values: Omit<Selectable<AuditLogTable>, 'id'> = {
      at: entry.at ?? this.#now(),
      actor_id: entry.actorId ?? null,
      actor_name: entry.actorName ?? null,
      action: entry.action,
      target: entry.target ?? null,
      address: entry.address ?? null,
      details: entry.details == null ? null : JSON.stringify(entry.details),
    }
    const row = await this.#db.insertInto('audit_log').values(values).returning('id').executeTakeFirstOrThrow()
    return toAudit({ ...values, id: Number(row.id) })
  }

  async listAudit (q: { before?: number, limit?: number, actorId?: string } = {}): Promise<{ entries: AuditEntry[], next: number | null }> {
    const limit = Math.max(1, Math.min(q.limit ?? 50, 500))
    let query = this.#db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(limit + 1)
    if (q.before !== undefined) query = query.where('id', '<', q.before)
    if (q.actorId !== undefined) query = query.where('actor_id', '=', q.actorId)
    const rows = await query.execute()
    const entries = rows.slice(0, limit).map(toAudit)
    return { entries, next: rows.length > limit ? entries.at(-1)!.id : null }
  }
}

function newId (prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`
}

function sha256 (s: string): string {
  return createHash('sha256').update(s).digest('base64url')
}

function mod (a: number, b: number): number {
  return ((a % b) + b) % b
}

function cmp (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** SQLite (libsql) returns BLOBs as ArrayBuffer, pg as Buffer. */
function toBuffer (v: Uint8Array | ArrayBuffer): Buffer {
  return v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}

/** A UNIQUE violation on SQLite or PostgreSQL (SQLSTATE 23505). */
function isUniqueViolation (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown, message?: unknown }
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    (typeof e.message === 'string' && e.message.includes('UNIQUE constraint failed'))
}

function toUser (r: Selectable<UsersTable>): User {
  return { id: r.id, name: r.name, role: r.role, createdAt: Number(r.created_at), disabledAt: r.disabled_at === null ? null : Number(r.disabled_at) }
}

function toToken (r: Selectable<ApiTokensTable>): ApiToken {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    tokenId: r.token_id,
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  }
}

function toReservation (r: Selectable<ReservationsTable>): Reservation {
  return { id: r.id, userId: r.user_id, kind: r.kind, value: r.value, createdAt: Number(r.created_at) }
}

function toAudit (r: Selectable<AuditLogTable>): AuditEntry {
  return {
    id: Number(r.id),
    at: Number(r.at),
    actorId: r.actor_id,
    actorName: r.actor_name,
    action: r.action,
    target: r.target,
    address: r.address,
    details: r.details === null ? null : JSON.parse(r.details) as Record<string, unknown>,
  }
}
