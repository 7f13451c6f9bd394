/**
 * Versioned schema migrations, applied in order at start. `schema_migrations` records each
 * applied version; running them again is a no-op. All pending migrations apply in one
 * transaction (both SQLite and PostgreSQL have transactional DDL), under an exclusive lock
 * (`BEGIN IMMEDIATE` on SQLite, a transaction-scoped advisory lock on PostgreSQL), so two
 * relays starting at once cannot apply the same migration twice. A database migrated by a
 * newer mport is refused rather than guessed at.
 */
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database } from './schema.js'
import { SchemaTooNewError } from 'mport/errors'

/** The SQL backend a store runs on. */
export type Dialect = 'sqlite' | 'postgres'

/** One schema step: `up` runs once per database, in a transaction where the backend allows it. */
export interface Migration {
  version: number
  name: string
  up (db: Kysely<Database> | Transaction<Database>, dialect: Dialect): Promise<void>
}

/** Every migration, oldest first. Append only: never edit one that has shipped. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'users, tokens, sessions, reservations, usage, limits, audit log',
    async up (db, dialect) {
      const blob = dialect === 'postgres' ? 'bytea' : 'blob'
      await db.schema.createTable('users')
        .addColumn('id', 'text', c => c.primaryKey())
        .addColumn('name', 'text', c => c.notNull().unique())
        .addColumn('role', 'text', c => c.notNull().check(sql`role in ('admin', 'user')`))
        .addColumn('password_hash', 'text', c => c.notNull())
        .addColumn('created_at', 'bigint', c => c.notNull())
        .addColumn('disabled_at', 'bigint')
        .execute()
      await db.schema.createTable('api_tokens')
        .addColumn('id', 'text', c => c.primaryKey())
        .addColumn('user_id', 'text', c => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('name', 'text', c => c.notNull())
        .addColumn('token_id', 'text', c => c.notNull().unique())
        .addColumn('key', sql.raw(blob), c => c.notNull())
        .addColumn('created_at', 'bigint', c => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute()
      await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user_id').execute()
      await db.schema.createTable('sessions')
        .addColumn('id', 'text', c => c.primaryKey())
        .addColumn('user_id', 'text', c => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('token_hash', 'text', c => c.notNull().unique())
        .addColumn('created_at', 'bigint', c => c.notNull())
        .addColumn('expires_at', 'bigint', c => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('address', 'text')
        .execute()
      await db.schema.createTable('reservations')
        .addColumn('id', 'text', c => c.primaryKey())
        .addColumn('user_id', 'text', c => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('kind', 'text', c => c.notNull().check(sql`kind in ('subdomain', 'port')`))
        .addColumn('value', 'text', c => c.notNull())
        .addColumn('created_at', 'bigint', c => c.notNull())
        .addUniqueConstraint('reservations_kind_value', ['kind', 'value'])
        .execute()
      await db.schema.createIndex('reservations_user').on('reservations').column('user_id').execute()
      await db.schema.createTable('usage')
        .addColumn('user_id', 'text', c => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('tunnel', 'text', c => c.notNull())
        .addColumn('granularity', 'text', c => c.notNull().check(sql`granularity in ('minute', 'hour', 'day')`))
        .addColumn('bucket_start', 'bigint', c => c.notNull())
        .addColumn('bytes_in', 'bigint', c => c.notNull().defaultTo(0))
        .addColumn('bytes_out', 'bigint', c => c.notNull().defaultTo(0))
        .addColumn('connections', 'bigint', c => c.notNull().defaultTo(0))
        .addColumn('active_seconds', 'bigint', c => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('usage_pk', ['user_id', 'granularity', 'bucket_start', 'tunnel'])
        .execute()
      await db.schema.createIndex('usage_rollup').on('usage').columns(['granularity', 'bucket_start']).execute()
      await db.schema.createTable('limits')
        .addColumn('user_id', 'text', c => c.primaryKey().references('users.id').onDelete('cascade'))
        .addColumn('max_tunnels', 'bigint')
        .addColumn('max_connections', 'bigint')
        .addColumn('monthly_bytes', 'bigint')
        .addColumn('bandwidth_bps', 'bigint')
        .addColumn('connections_per_minute', 'bigint')
        .addColumn('updated_at', 'bigint', c => c.notNull())
        .execute()
      let audit = db.schema.createTable('audit_log')
      audit = dialect === 'postgres'
        ? audit.addColumn('id', 'bigint', c => c.primaryKey().generatedByDefaultAsIdentity())
        : audit.addColumn('id', 'integer', c => c.primaryKey().autoIncrement())
      await audit
        .addColumn('at', 'bigint', c => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor_name', 'text')
        .addColumn('action', 'text', c => c.notNull())
        .addColumn('target', 'text')
        .addColumn('address', 'text')
        .addColumn('details', 'text')
        .execute()
      await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor_id', 'id']).execute()
    },
  },
  {
    version: 2,
    name: 'api tokens may expire',
    async up (db) {
      await db.schema.alterTable('api_tokens').addColumn('expires_at', 'bigint').execute()
    },
  },
]

/** The schema version this build of mport writes. */
export const SCHEMA_VERSION = migrations.at(-1)!.version

/** Applies pending migrations; returns the versions it applied (empty when up to date). */
export async function migrate (db: Kysely<Database>, dialect: Dialect, list: readonly Migration[] = migrations): Promise<number[]> {
  if (dialect === 'sqlite') {
    // One connection, an explicit write lock from the first statement on.
    return await db.connection().execute(async conn => {
      await sql`begin immediate`.execute(conn)
      try {
        const applied = await applyPending(conn, dialect, list)
        await sql`commit`.execute(conn)
        return applied
      } catch (err) {
        await sql`rollback`.execute(conn)
        throw err
      }
    })
  }
  return await db.transaction().execute(async trx => {
    // Serialises concurrent starts; released at commit. The key is an arbitrary constant.
    await sql`select pg_advisory_xact_lock(${0x6d706f7274})`.execute(trx)
    return await applyPending(trx, dialect, list)
  })
}

async function applyPending (db: Kysely<Database>, dialect: Dialect, list: readonly Migration[]): Promise<number[]> {
  await db.schema.createTable('schema_migrations').ifNotExists()
    .addColumn('version', 'integer', c => c.primaryKey())
    .addColumn('name', 'text', c => c.notNull())
    .addColumn('applied_at', 'bigint', c => c.notNull())
    .execute()
  const rows = await db.selectFrom('schema_migrations').select('version').execute()
  const done = new Set(rows.map(r => Number(r.version)))
  const newest = Math.max(0, ...done)
  const known = list.at(-1)?.version ?? 0
  if (newest > known) throw new SchemaTooNewError(newest, known)
  const applied: number[] = []
  for (const m of list) {
    if (done.has(m.version)) continue
    await m.up(db, dialect)
    await db.insertInto('schema_migrations').values({ version: m.version, name: m.name, applied_at: Date.now() }).execute()
    applied.push(m.version)
  }
  return applied
}
