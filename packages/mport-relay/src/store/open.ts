/**
 * Opens a Store: SQLite (a file, the default: `<dataDir>/mport.db`) or PostgreSQL
 * (`postgres://…`), then runs pending migrations.
 *
 * SQLite runs in WAL mode with `synchronous=NORMAL`: a killed process (SIGKILL, OOM) loses no
 * committed transaction and never leaves the file unreadable; a power loss may lose the last
 * transactions but not the file's integrity.
 */
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import type Libsql from 'libsql'
import { DatabaseError } from 'mport/errors'
import { migrate } from './migrations.js'
import type { Database } from './schema.js'
import { SqlStore, type SqlStoreOptions } from './sql-store.js'

/** Where the store lives, plus the SqlStore options. */
export interface OpenStoreOptions extends SqlStoreOptions {
  /**
   * `postgres://user:pass@host:port/db` (or `postgresql://`), `sqlite:<path>`, or a file path.
   * Default: `mport.db` in `dataDir`.
   */
  url?: string
  /** Where the default SQLite file lives. */
  dataDir?: string
  /** PostgreSQL pool size (default 10). */
  poolSize?: number
}

/** The backend a URL selects, and its target. */
export function parseDatabaseUrl (url: string): { dialect: 'postgres', url: string } | { dialect: 'sqlite', file: string } {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', url }
  if (/^sqlite:/i.test(url)) {
    const file = url.replace(/^sqlite:(\/\/)?/i, '')
    if (file === '') throw new DatabaseError(`no file in database URL ${JSON.stringify(url)}`)
    return { dialect: 'sqlite', file }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new DatabaseError(`unsupported database URL ${JSON.stringify(redact(url))}: use postgres://… or a SQLite file path`)
  return { dialect: 'sqlite', file: url }
}

/** Opens the store the URL (or the data dir) names, runs pending migrations, and returns it; DatabaseError when it cannot. */
export async function openStore (options: OpenStoreOptions): Promise<SqlStore> {
  const url = options.url ?? (options.dataDir !== undefined ? path.join(options.dataDir, 'mport.db') : undefined)
  if (url === undefined) throw new DatabaseError('no database: give a URL or a data directory')
  const target = parseDatabaseUrl(url)
  let db: Kysely<Database>
  if (target.dialect === 'sqlite') {
    let sqlite: Libsql.Database
    try {
      mkdirSync(path.dirname(path.resolve(target.file)), { recursive: true, mode: 0o700 })
      sqlite = new (await import('libsql')).default(target.file)
      // First: switching to WAL takes the file's exclusive lock, and without a busy timeout a
      // second process opening the file at the same moment (a restart overlapping the old
      // relay) fails at once with "database is locked" instead of waiting for it.
      sqlite.pragma('busy_timeout = 5000')
      sqlite.pragma('journal_mode = WAL')
      sqlite.pragma('synchronous = NORMAL')
      sqlite.pragma('foreign_keys = ON')
    } catch (err) {
      throw new DatabaseError(`cannot open SQLite database ${target.file}: ${(err as Error).message}`, { cause: err })
    }
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  } else {
    // Each driver is loaded only when its backend is used.
    const pg = (await import('pg')).default
    const pool = new pg.Pool({
      connectionString: target.url,
      max: options.poolSize ?? 10,
      // int8 (COUNT, bigint columns) and numeric (SUM) as JS numbers: counters stay far below 2^53.
      types: { getTypeParser: (oid: number, format?: 'text' | 'binary') => oid === 20 || oid === 1700 ? Number : pg.types.getTypeParser(oid, format) },
    })
    // An idle client that loses its server must not crash the process.
    pool.on('error', () => {})
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  }
  try {
    await migrate(db, target.dialect)
  } catch (err) {
    await db.destroy().catch(() => {})
    if (err instanceof DatabaseError || (err as { code?: string }).code === 'MPORT_ERR_SCHEMA_TOO_NEW') throw err
    const where = target.dialect === 'sqlite' ? target.file : redact(target.url)
    throw new DatabaseError(`cannot prepare database ${where}: ${(err as Error).message}`, { cause: err })
  }
  return new SqlStore(db, target.dialect, options)
}

/** The URL with its password masked, for messages. */
export function redact (url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@')
}
