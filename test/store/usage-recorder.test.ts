/** UsageRecorder: batching in memory, one transaction per flush, active time, failure retry, crash safety. */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { sql } from 'kysely'
import { HOUR, MINUTE, openStore, UsageRecorder, type SqlStore, type Store } from '../../packages/mport-relay/src/store/index.js'
import { waitFor, withTimeout } from '../helpers/wait.js'
import { TEST_SCRYPT } from './fixtures/suite.js'

const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-usage-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
let n = 0

async function fresh (t: Test): Promise<{ store: SqlStore, userId: string }> {
  const store = await openStore({ url: path.join(dir, `u${++n}.db`), scrypt: TEST_SCRYPT })
  t.teardown(() => store.close())
  const user = await store.createUser({ name: 'alice', password: 'password1' })
  return { store, userId: user.id }
}

async function rowCount (store: SqlStore): Promise<number> {
  return (await store.db.selectFrom('usage').select('user_id').execute()).length
}

async function totals (store: SqlStore): Promise<{ bytesIn: number, bytesOut: number, connections: number, activeSeconds: number }> {
  const r = await store.db.selectFrom('usage')
    .select(eb => [eb.fn.sum<number>('bytes_in').as('i'), eb.fn.sum<number>('bytes_out').as('o'), eb.fn.sum<number>('connections').as('c'), eb.fn.sum<number>('active_seconds').as('a')])
    .executeTakeFirstOrThrow()
  return { bytesIn: Number(r.i ?? 0), bytesOut: Number(r.o ?? 0), connections: Number(r.c ?? 0), activeSeconds: Number(r.a ?? 0) }
}

t.test('counts stay in memory until a flush, which writes one row per (user, tunnel, minute)', async t => {
  const { store, userId } = await fresh(t)
  let now = Date.UTC(2025, 0, 1, 12, 0, 5)
  const rec = new UsageRecorder(store, { flushIntervalMs: 1_000_000, now: () => now })
  for (let i = 0; i < 10_000; i++) rec.add(userId, i % 2 === 0 ? 'web' : 'ssh', { bytesIn: 3, bytesOut: 1 })
  rec.add(userId, 'web', { connections: 2 })
  t.equal(await rowCount(store), 0, 'nothing written per packet')
  t.equal(rec.pending, 2)
  now += MINUTE
  rec.add(userId, 'web', { bytesIn: 5 })
  await rec.flush()
  t.equal(rec.pending, 0)
  t.equal(await rowCount(store), 3, 'web and ssh in minute 0, web in minute 1')
  t.same(await totals(store), { bytesIn: 30_005, bytesOut: 10_000, connections: 2, activeSeconds: 0 })
  await rec.flush()
  t.equal(await rowCount(store), 3, 'an empty flush writes nothing')
  await rec.close()
  rec.add(userId, 'web', { bytesIn: 1 })
  t.equal(rec.pending, 0, 'closed: adds are ignored')
})

t.test('active time: seconds a tunnel is up, counted at each flush and at tunnelDown', async t => {
  const { store, userId } = await fresh(t)
  let now = Date.UTC(2025, 0, 1, 12, 0, 0)
  const rec = new UsageRecorder(store, { flushIntervalMs: 1_000_000, now: () => now })
  rec.tunnelUp(userId, 'web')
  rec.tunnelUp(userId, 'web') // the same name twice (a reconnect overlapping the old connection)
  now += 2_500
  await rec.flush()
  t.equal((await totals(store)).activeSeconds, 2, 'whole seconds written, the half carried')
  now += 1_500
  rec.tunnelDown(userId, 'web')
  now += 10_000
  await rec.flush()
  t.equal((await totals(store)).activeSeconds, 14, 'still up once: counted')
  rec.tunnelDown(userId, 'web')
  rec.tunnelDown(userId, 'web')
  now += 60_000
  await rec.close()
  t.equal((await totals(store)).activeSeconds, 14, 'down: no more time counted')
})

t.test('a failed flush keeps its counts for the next one', async t => {
  const { store, userId } = await fresh(t)
  let fail = true
  const errors: Error[] = []
  const flaky: Store = Object.create(store, {
    addUsage: { value: async (d: Parameters<Store['addUsage']>[0]) => { if (fail) throw new Error('disk full'); return await store.addUsage(d) } },
  }) as Store
  const rec = new UsageRecorder(flaky, { flushIntervalMs: 1_000_000, onError: err => errors.push(err) })
  rec.add(userId, 'web', { bytesIn: 100 })
  await rec.flush()
  t.same(errors.map(e => e.message), ['disk full'])
  rec.add(userId, 'web', { bytesIn: 1 })
  fail = false
  await rec.close()
  t.equal((await totals(store)).bytesIn, 101)
})

t.test('the timer flushes on its own, concurrent flushes share the work, and rollup runs hourly', async t => {
  const { store, userId } = await fresh(t)
  let now = Date.now()
  const rec = new UsageRecorder(store, { flushIntervalMs: 20, now: () => now })
  t.teardown(() => rec.close())
  rec.add(userId, 'web', { bytesIn: 7 })
  await waitFor(async () => (await totals(store)).bytesIn === 7, { what: 'the interval flush' })
  rec.add(userId, 'web', { bytesIn: 1 })
  await Promise.all([rec.flush(), rec.flush(), rec.flush()])
  t.equal((await totals(store)).bytesIn, 8)
  now += 2 * HOUR
  await rec.flush()
  await waitFor(async () => (await store.db.selectFrom('usage').select('granularity').where('granularity', '=', 'hour').execute()).length > 0, { what: 'the hourly rollup' })
  t.equal((await totals(store)).bytesIn, 8, 'rollup keeps the totals')
})

t.test('SIGKILL: at most the last interval is lost and the database opens fine', async t => {
  const file = path.join(dir, 'crash.db')
  let base = 0
  for (let run = 1; run <= 2; run++) {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fixtures', 'usage-child.ts'), file], { stdio: ['ignore', 'pipe', 'pipe'] })
    let lastFlushed = 0
    let flushes = 0
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      for (const m of s.matchAll(/flushed (\d+)\n/g)) { lastFlushed = Number(m[1]); flushes++ }
    })
    const exited = new Promise<NodeJS.Signals | null>(resolve => child.once('exit', (_code, signal) => resolve(signal)))
    await waitFor(() => flushes >= 10 + run * 7 || child.exitCode !== null, { what: `run ${run}: 10+ flushes by the child`, timeoutMs: 30_000 })
    t.equal(child.exitCode, null, `the child is still running (stderr: ${stderr})`)
    child.kill('SIGKILL')
    t.equal(await withTimeout(exited, { what: 'the child to die' }), 'SIGKILL')
    const store = await openStore({ url: file, scrypt: TEST_SCRYPT })
    const check = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(store.db)
    t.same(check.rows, [{ integrity_check: 'ok' }], `run ${run}: integrity_check passes`)
    const kept = (await totals(store)).bytesIn - base
    t.ok(kept >= lastFlushed, `run ${run}: kept ${kept} bytes >= last reported flush ${lastFlushed}`)
    t.ok(kept <= lastFlushed + 1000, `run ${run}: at most one unreported flush (${kept - lastFlushed} bytes) beyond it`)
    base += kept
    await store.close()
  }
})
