/**
 * The database schema as Kysely sees it: one interface per table. Times are integers (ms since
 * the Unix epoch, UTC) and flags are nullable times (`disabled_at`, `revoked_at`), so both
 * backends store the same values with no boolean or timestamp-zone differences.
 */
import type { Generated } from 'kysely'

export interface SchemaMigrationsTable {
  version: number
  name: string
  applied_at: number
}

export interface UsersTable {
  id: string
  name: string
  role: 'admin' | 'user'
  /** `scrypt$N$r$p$salt$hash` (see password.ts). */
  password_hash: string
  created_at: number
  disabled_at: number | null
}

/**
 * API tokens. `token_id` = tokenId(raw) and `key` = tokenKey(raw): both are one-way
 * derivations of the raw token, which is never stored. `key` is the HMAC key the tunnel
 * handshake needs, so a copy of this table lets its holder open tunnels as these users
 * (revoke every token after a database leak); it does not reveal the raw tokens, so it does
 * not let anyone call the REST API with them.
 */
export interface ApiTokensTable {
  id: string
  user_id: string
  name: string
  token_id: string
  key: Uint8Array
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
  expires_at: number | null
}

/** REST API login sessions; only the SHA-256 of the session token is stored. */
export interface SessionsTable {
  id: string
  user_id: string
  token_hash: string
  created_at: number
  expires_at: number
  last_used_at: number | null
  address: string | null
}

export interface ReservationsTable {
  id: string
  user_id: string
  kind: 'subdomain' | 'port'
  value: string
  created_at: number
}

export interface UsageTable {
  user_id: string
  tunnel: string
  granularity: 'minute' | 'hour' | 'day'
  bucket_start: number
  bytes_in: number
  bytes_out: number
  connections: number
  active_seconds: number
}

/** Per-user overrides; a NULL column means "the relay-wide default". */
export interface LimitsTable {
  user_id: string
  max_tunnels: number | null
  max_connections: number | null
  monthly_bytes: number | null
  bandwidth_bps: number | null
  connections_per_minute: number | null
  updated_at: number
}

export interface AuditLogTable {
  id: Generated<number>
  at: number
  actor_id: string | null
  actor_name: string | null
  action: string
  target: string | null
  address: string | null
  /** JSON text. */
  details: string | null
}

export interface Database {
  schema_migrations: SchemaMigrationsTable
  users: UsersTable
  api_tokens: ApiTokensTable
  sessions: SessionsTable
  reservations: ReservationsTable
  usage: UsageTable
  limits: LimitsTable
  audit_log: AuditLogTable
}
