/** The store suite on SQLite (a temp file per test), plus SQLite-only checks: WAL mode, file creation, URLs. */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { sql } from 'kysely'
import { openStore, parseDatabaseUrl, redact } from '../../packages/mport-relay/src/store/index.js'
import { storeSuite, TEST_SCRYPT } from './fixtures/suite.js'
import { waitFor } from '../helpers/wait.js'

const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-store-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
let n = 0

t.test('store suite (SQLite)', async t => {
  storeSuite(t, options => openStore({ ...options, url: path.join(dir, `suite-${++n}.db`) }))
})

t.test('a data dir gets mport.db in WAL mode, created on first start and reopened after', async t => {
  const dataDir = path.join(dir, 'data', 'nested')
  const store = await openStore({ dataDir, scrypt: TEST_SCRYPT })
  t.equal(store.dialect, 'sqlite')
  const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db)
  t.equal(mode.rows[0]?.journal_mode, 'wal')
  await store.createUser({ name: 'alice', password: 'password1' })
  await store.close()
  t.ok((await stat(path.join(dataDir, 'mport.db'))).isFile())
  const again = await openStore({ url: `sqlite:${path.join(dataDir, 'mport.db')}`, scrypt: TEST_SCRYPT })
  t.equal((await again.getUserByName('alice'))?.name, 'alice', 'data survives a restart')
  await again.close()
})

t.test('opening a file another process holds locked waits for the lock instead of failing', async t => {
  // Two relays starting on one data dir, or a restart that overlaps the old process: the
  // switch to WAL needs the exclusive lock, so the busy timeout must be set before it.
  const file = path.join(dir, 'locked.db')
  const holder = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures', 'lock-holder.ts'), file], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { holder.kill() })
  let out = ''
  let err = ''
  holder.stdout.on('data', (c: Buffer) => { out += c.toString() })
  holder.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const until = (line: string): Promise<void> => waitFor(() => {
    if (out.includes(line)) return true
    if (holder.exitCode !== null) throw new Error(`the lock holder exited (${holder.exitCode}) before printing ${line}: ${err}`)
    return false
  }, { what: `the lock holder to print ${line}`, timeoutMs: 30_000, diag: () => `stdout: ${out}\nstderr: ${err}` })
  await until('locked')
  holder.stdin.write('release\n') // it lets go 300 ms from now, while openStore below waits
  const store = await openStore({ url: file, scrypt: TEST_SCRYPT })
  t.teardown(() => store.close())
  await until('released')
  const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db)
  t.equal(mode.rows[0]?.journal_mode, 'wal', 'opened, in WAL mode, once the lock was free')
  t.equal((await store.createUser({ name: 'bob', password: 'password1' })).name, 'bob', 'and usable')
})

t.test('database URLs', async t => {
  t.same(parseDatabaseUrl('postgres://u:p@h/db'), { dialect: 'postgres', url: 'postgres://u:p@h/db' })
  t.same(parseDatabaseUrl('postgresql://h/db'), { dialect: 'postgres', url: 'postgresql://h/db' })
  t.same(parseDatabaseUrl('sqlite:/var/lib/mport.db'), { dialect: 'sqlite', file: '/var/lib/mport.db' })
  t.same(parseDatabaseUrl('sqlite:///var/lib/mport.db'), { dialect: 'sqlite', file: '/var/lib/mport.db' })
  t.same(parseDatabaseUrl('./mport.db'), { dialect: 'sqlite', file: './mport.db' })
  t.throws(() => parseDatabaseUrl('mysql://u:secret@h/db'), { code: 'MPORT_ERR_DATABASE', message: /mysql:\/\/u:\*\*\*@h\/db/ })
  t.throws(() => parseDatabaseUrl('sqlite:'), { code: 'MPORT_ERR_DATABASE' })
  t.equal(redact('postgres://mport:hunter2@db:5432/mport'), 'postgres://mport:***@db:5432/mport')
  await t.rejects(openStore({}), { code: 'MPORT_ERR_DATABASE' })
  await writeFile(path.join(dir, 'a-file'), '')
  await t.rejects(openStore({ url: path.join(dir, 'a-file', 'mport.db') }), { code: 'MPORT_ERR_DATABASE', message: /cannot open SQLite database/ })
  await writeFile(path.join(dir, 'garbage.db'), 'this is not a database, just text that is long enough to have a header '.repeat(20))
  await t.rejects(openStore({ url: path.join(dir, 'garbage.db') }), { code: 'MPORT_ERR_DATABASE' })
})
