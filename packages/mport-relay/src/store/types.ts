/**
 * The Store interface: everything the relay and the REST API keep across restarts. One
 * implementation (SqlStore) runs it on SQLite or PostgreSQL through Kysely; both pass the
 * same test suite (test/store/suite.ts).
 */
import type { PlanLimits } from 'mport/relay'
import type { Dialect } from './migrations.js'

/** What a user may do: admins manage users, plans and the audit log. */
export type Role = 'admin' | 'user'
/** What a reservation holds: an HTTP subdomain or a TCP port. */
export type ReservationKind = 'subdomain' | 'port'
/** The size of a usage row's bucket. */
export type Granularity = 'minute' | 'hour' | 'day'

/** A relay account, as the store returns it (never its password hash). */
export interface User {
  id: string
  name: string
  /** When the user was created, in ms since the epoch (as every time in the store). */
  role: Role
  createdAt: number
  /** When the user was disabled; null while enabled. */
  disabledAt: number | null
}

/** An API token as listed: never the raw token nor its key. */
export interface ApiToken {
  id: string
  userId: string
  name: string
  /** tokenId(raw): the public id the tunnel handshake sends. */
  tokenId: string
  /** When the token was created (ms since the epoch). */
  createdAt: number
  /** Last time the token authenticated a REST API request; null if never. */
  lastUsedAt: number | null
  /** When the token was revoked; null while valid (live tunnels are cut on the next accounting round). */
  revokedAt: number | null
  /** When the token stops working (its tunnels are cut on the next accounting round); null: never. */
  expiresAt: number | null
}

/** A REST API login session (the raw `mps_…` token is returned once, at login). */
export interface Session {
  id: string
  userId: string
  createdAt: number
  /** When the API stops accepting the session's token (ms since the epoch). */
  expiresAt: number
}

/** A subdomain or port that only its owner's tunnels may use. */
export interface Reservation {
  id: string
  userId: string
  kind: ReservationKind
  value: string
  createdAt: number
}

/** What usage counts: bytes each way, connections and seconds a tunnel was up. */
export interface UsageCounters {
  bytesIn: number
  bytesOut: number
  connections: number
  /** Seconds the tunnel was up within the bucket. */
  activeSeconds: number
}

/** Counters to add to the minute bucket containing `at`. */
export interface UsageDelta extends UsageCounters {
  userId: string
  /** Any time within the minute to count it in (ms since the epoch). */
  tunnel: string
  at: number
}

/** Usage of one (user, tunnel) in one hour or day bucket. */
export interface UsageBucket extends UsageCounters {
  /** Bucket start, ms since the epoch (UTC). */
  start: number
  userId: string
  tunnel: string
}

/** Which usage to read: a time range, a granularity, optionally one user and one tunnel. */
export interface UsageQuery {
  /** One user, or every user when undefined. */
  userId?: string
  tunnel?: string
  /** [from, to) in ms since the epoch. */
  from: number
  to: number
  granularity: 'hour' | 'day'
}

/** A plan's limits (the relay core's type): null means unlimited. */
export type Limits = PlanLimits

/** Per-user overrides: a key set to a number overrides the default, null clears the override. */
export type LimitOverrides = { [K in keyof Limits]?: number | null }

/** An audit entry to write: who did what to which target, from where. */
export interface AuditInput {
  actorId?: string | null
  actorName?: string | null
  /** What was done, a dotted verb such as `user.create` or `token.revoke`. */
  action: string
  target?: string | null
  address?: string | null
  details?: Record<string, unknown> | null
  /** When it happened (ms since the epoch); default now. */
  at?: number
}

/** An audit entry as read back, with its id (the paging cursor). */
export interface AuditEntry {
  id: number
  at: number
  actorId: string | null
  actorName: string | null
  action: string
  target: string | null
  address: string | null
  details: Record<string, unknown> | null
}

/** How many usage rows a rollup moved. */
export interface RollupResult {
  /** Minute rows moved into hour rows. */
  minutes: number
  /** Hour rows moved into day rows. */
  hours: number
}

/** Everything the relay and the REST API keep across restarts, on one backend. */
export interface Store {
  readonly dialect: Dialect

  /** Cheap round trip to the database (health checks). */
  ping (): Promise<void>
  close (): Promise<void>

  // Users
  createUser (input: { name: string, password: string, role?: Role }): Promise<User>
  getUser (id: string): Promise<User | undefined>
  getUserByName (name: string): Promise<User | undefined>
  listUsers (): Promise<User[]>
  countUsers (): Promise<number>
  /** Throws NotFoundError for an unknown id. */
  updateUser (id: string, change: { role?: Role, disabled?: boolean, password?: string }): Promise<User>
  /** The enabled user with this name and password, else undefined (same cost either way). */
  checkPassword (name: string, password: string): Promise<User | undefined>

  // API tokens
  /** Creates a token; `raw` (`mpt_…`) is returned here only and never stored. */
  /** A new token (`expiresAt`: when it stops working; default never); the raw token is returned only here. */
  createToken (userId: string, name: string, opts?: { expiresAt?: number | null }): Promise<{ token: ApiToken, raw: string }>
  listTokens (userId: string): Promise<ApiToken[]>
  /** Revokes `id`; when `userId` is given the token must be theirs (else NotFoundError). */
  revokeToken (id: string, userId?: string): Promise<ApiToken>
  /** For the tunnel handshake: key and owner of a live token of an enabled user. */
  credential (tokenId: string): Promise<{ key: Buffer, user: User, token: ApiToken } | undefined>
  /** For bearer auth: the raw token must derive the stored key. */
  resolveToken (raw: string): Promise<{ user: User, token: ApiToken } | undefined>
  touchToken (id: string, at?: number): Promise<void>

  // REST API sessions
  createSession (userId: string, ttlMs: number, address?: string): Promise<{ session: Session, raw: string }>
  resolveSession (raw: string): Promise<{ user: User, session: Session } | undefined>
  deleteSession (raw: string): Promise<boolean>

  // Reservations
  reserve (userId: string, kind: ReservationKind, value: string): Promise<Reservation>
  listReservations (userId?: string): Promise<Reservation[]>
  findReservation (kind: ReservationKind, value: string): Promise<Reservation | undefined>
  /** Deletes `id`; when `userId` is given the reservation must be theirs (else NotFoundError). */
  release (id: string, userId?: string): Promise<Reservation>

  // Usage
  /** Adds every delta to its minute bucket, all in one transaction. */
  addUsage (deltas: readonly UsageDelta[]): Promise<void>
  /** Moves minute rows of complete hours into hour rows, and hour rows older than the retention into day rows. */
  rollup (now?: number): Promise<RollupResult>
  queryUsage (q: UsageQuery): Promise<UsageBucket[]>
  /** bytes in + out of `userId` since the start of the UTC month containing `now`. */
  monthBytes (userId: string, now?: number): Promise<number>

  // Limits
  getLimitOverrides (userId: string): Promise<LimitOverrides>
  setLimitOverrides (userId: string, overrides: LimitOverrides): Promise<LimitOverrides>
  /** Relay-wide defaults merged with the user's overrides. */
  effectiveLimits (userId: string): Promise<Limits>
  readonly defaultLimits: Limits
  /** Replaces the relay-wide plan defaults (a config reload); throws InvalidInputError on a bad value and keeps the old ones. */
  setDefaultLimits (defaults: Partial<Limits>): void

  // Audit log
  audit (entry: AuditInput): Promise<AuditEntry>
  /** Newest first; pass `next` back as `before` for the following page. */
  listAudit (q?: { before?: number, limit?: number, actorId?: string }): Promise<{ entries: AuditEntry[], next: number | null }>
}
