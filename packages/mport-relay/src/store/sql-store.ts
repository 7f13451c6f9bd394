/**
 * SqlStore: the Store on Kysely, one code path for SQLite and PostgreSQL. Each aggregate keeps
 * its queries in a file of its own under sql/ (users, tokens, sessions, reservations, usage,
 * limits, audit); this class composes them and holds the rules that span two of them. Every
 * query goes through Kysely's builder with bound values; the few `sql` fragments carry
 * constants only.
 */
import { sql, type Kysely } from 'kysely'
import type { Dialect } from './migrations.js'
import { DEFAULT_SCRYPT, type ScryptParams } from './password.js'
import type { Database } from './schema.js'
import { DAY } from './time.js'
import type {
  ApiToken, AuditEntry, AuditInput, LimitOverrides, Limits, Reservation, ReservationKind, Role, RollupResult, Session, Store,
  UsageBucket, UsageDelta, UsageQuery, User,
} from './types.js'
import { SqlAudit } from './sql/audit.js'
import type { SqlContext } from './sql/common.js'
import { SqlLimits } from './sql/limits.js'
import { SqlReservations } from './sql/reservations.js'
import { SqlSessions } from './sql/sessions.js'
import { SqlTokens } from './sql/tokens.js'
import { SqlUsage } from './sql/usage.js'
import { SqlUsers } from './sql/users.js'

/** Plan defaults, password cost, usage retention and the clock of a SqlStore. */
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

/** The Store on SQLite or PostgreSQL through Kysely, composed of one class per aggregate. */
export class SqlStore implements Store {
  readonly dialect: Dialect
  readonly #db: Kysely<Database>
  readonly #users: SqlUsers
  readonly #tokens: SqlTokens
  readonly #sessions: SqlSessions
  readonly #reservations: SqlReservations
  readonly #usage: SqlUsage
  readonly #limits: SqlLimits
  readonly #audit: SqlAudit

  constructor (db: Kysely<Database>, dialect: Dialect, options: SqlStoreOptions = {}) {
    this.#db = db
    this.dialect = dialect
    const ctx: SqlContext = { db, now: options.now ?? Date.now }
    this.#users = new SqlUsers(ctx, options.scrypt ?? DEFAULT_SCRYPT)
    this.#tokens = new SqlTokens(ctx, this.#users)
    this.#sessions = new SqlSessions(ctx)
    this.#reservations = new SqlReservations(ctx, this.#users)
    this.#usage = new SqlUsage(ctx, options.hourRetentionMs ?? 35 * DAY)
    this.#limits = new SqlLimits(ctx, this.#users, options.defaults)
    this.#audit = new SqlAudit(ctx)
  }

  /** The Kysely instance, for tests and tools. */
  get db (): Kysely<Database> { return this.#db }

  async ping (): Promise<void> {
    await sql`select 1`.execute(this.#db)
  }

  async close (): Promise<void> {
    await this.#db.destroy()
  }

  // Users
  createUser (input: { name: string, password: string, role?: Role }): Promise<User> { return this.#users.createUser(input) }
  getUser (id: string): Promise<User | undefined> { return this.#users.getUser(id) }
  getUserByName (name: string): Promise<User | undefined> { return this.#users.getUserByName(name) }
  listUsers (): Promise<User[]> { return this.#users.listUsers() }
  countUsers (): Promise<number> { return this.#users.countUsers() }

  /** Disabling a user also ends their REST API sessions. */
  async updateUser (id: string, change: { role?: Role, disabled?: boolean, password?: string }): Promise<User> {
    const user = await this.#users.updateUser(id, change)
    if (change.disabled === true) await this.#sessions.deleteUserSessions(id)
    return user
  }

  checkPassword (name: string, password: string): Promise<User | undefined> { return this.#users.checkPassword(name, password) }

  // API tokens
  createToken (userId: string, name: string, opts?: { expiresAt?: number | null }): Promise<{ token: ApiToken, raw: string }> { return this.#tokens.createToken(userId, name, opts) }
  listTokens (userId: string): Promise<ApiToken[]> { return this.#tokens.listTokens(userId) }
  revokeToken (id: string, userId?: string): Promise<ApiToken> { return this.#tokens.revokeToken(id, userId) }
  credential (id: string): Promise<{ key: Buffer, user: User, token: ApiToken } | undefined> { return this.#tokens.credential(id) }
  resolveToken (raw: string): Promise<{ user: User, token: ApiToken } | undefined> { return this.#tokens.resolveToken(raw) }
  touchToken (id: string, at?: number): Promise<void> { return this.#tokens.touchToken(id, at) }

  // REST API sessions
  createSession (userId: string, ttlMs: number, address?: string): Promise<{ session: Session, raw: string }> { return this.#sessions.createSession(userId, ttlMs, address) }
  resolveSession (raw: string): Promise<{ user: User, session: Session } | undefined> { return this.#sessions.resolveSession(raw) }
  deleteSession (raw: string): Promise<boolean> { return this.#sessions.deleteSession(raw) }

  // Reservations
  reserve (userId: string, kind: ReservationKind, value: string): Promise<Reservation> { return this.#reservations.reserve(userId, kind, value) }
  listReservations (userId?: string): Promise<Reservation[]> { return this.#reservations.listReservations(userId) }
  findReservation (kind: ReservationKind, value: string): Promise<Reservation | undefined> { return this.#reservations.findReservation(kind, value) }
  release (id: string, userId?: string): Promise<Reservation> { return this.#reservations.release(id, userId) }

  // Usage
  addUsage (deltas: readonly UsageDelta[]): Promise<void> { return this.#usage.addUsage(deltas) }
  rollup (now?: number): Promise<RollupResult> { return this.#usage.rollup(now) }
  queryUsage (q: UsageQuery): Promise<UsageBucket[]> { return this.#usage.queryUsage(q) }
  monthBytes (userId: string, now?: number): Promise<number> { return this.#usage.monthBytes(userId, now) }

  // Limits
  getLimitOverrides (userId: string): Promise<LimitOverrides> { return this.#limits.getLimitOverrides(userId) }
  setLimitOverrides (userId: string, overrides: LimitOverrides): Promise<LimitOverrides> { return this.#limits.setLimitOverrides(userId, overrides) }
  effectiveLimits (userId: string): Promise<Limits> { return this.#limits.effectiveLimits(userId) }
  get defaultLimits (): Limits { return this.#limits.defaultLimits }
  setDefaultLimits (defaults: Partial<Limits>): void { this.#limits.setDefaultLimits(defaults) }

  // Audit log
  audit (entry: AuditInput): Promise<AuditEntry> { return this.#audit.audit(entry) }
  listAudit (q?: { before?: number, limit?: number, actorId?: string }): Promise<{ entries: AuditEntry[], next: number | null }> { return this.#audit.listAudit(q) }
}
