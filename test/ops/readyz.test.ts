/**
 * /readyz of a real relay process: on SIGTERM it answers 503 ("draining") at once while the
 * process drains an open visitor connection, /healthz and /metrics still answer, and the
 * process exits once the connection ends; with PostgreSQL as its store, stopping PostgreSQL
 * turns /readyz to 503 ("store-unreachable", with the driver's error) and mport_store_up to 0
 * while the relay keeps serving its tunnel.
 */
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { cleanup, tmpDir } from '../helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'
import { startClient, startOpsRelay, type OpsRelay } from '../helpers/ops-relay.js'
import { postgresTestOptions, startPostgres } from '../helpers/postgres.js'
import { sampleValue } from '../helpers/prom-text.js'
import { waitFor } from '../helpers/wait.js'

t.teardown(cleanup)

async function readyz (relay: OpsRelay): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await relay.get('/readyz')
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

t.test('SIGTERM: not ready first, the ops listener serves while connections drain, then the process exits', async t => {
  const relay = await startOpsRelay(path.join(tmpDir(), 'data'), ['--drain-timeout', '120'])
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = startClient(relay, [`echo=${echo.port}`])
  const port = (await client.waitEvent('tunnel', o => o.name === 'echo', 60_000)).remotePort as number
  t.same(await readyz(relay), { status: 200, body: { status: 'ready' } }, 'ready before the signal')

  // An open visitor connection keeps the drain going (up to --drain-timeout).
  const visitor = await connectTo(port)
  visitor.on('error', () => {})
  const hello = Buffer.from('still here\n')
  visitor.write(hello)
  await new Promise<void>(resolve => visitor.once('data', () => resolve()))

  relay.proc.signal('SIGTERM')
  await relay.proc.waitEvent('stopping', () => true, 30_000)
  let state = { status: 0, body: {} as Record<string, unknown> }
  await waitFor(async () => { state = await readyz(relay); return state.status === 503 }, { what: '/readyz to answer 503 after SIGTERM', timeoutMs: 30_000, intervalMs: 100, diag: () => JSON.stringify(state) })
  t.match(state.body, { status: 'not ready', reason: 'draining' }, 'the reason is the drain')
  t.equal(relay.proc.exit, undefined, 'the process is still draining')
  t.equal((await relay.get('/healthz')).status, 200, '/healthz still answers while draining')
  t.equal(sampleValue(await relay.scrape(), 'mport_ready'), 0, '/metrics still answers, with mport_ready 0')
  const more = randomBytes(1000)
  visitor.write(more)
  const echoed = await new Promise<Buffer>(resolve => { const parts: Buffer[] = []; let n = 0; visitor.on('data', (c: Buffer) => { parts.push(c); n += c.length; if (n >= more.length) resolve(Buffer.concat(parts)) }) })
  t.ok(echoed.equals(more), 'the open connection is still served while draining')

  visitor.end()
  const exit = await relay.proc.waitExit(60_000)
  t.same(exit, { code: 0, signal: null }, 'exits 0 once the connection has drained')
  await t.rejects(relay.get('/healthz'), 'the ops listener is gone with the process')
})

t.test('PostgreSQL stopped: /readyz 503 with the reason, mport_store_up 0, the tunnel keeps serving', postgresTestOptions(), async t => {
  const pg = await startPostgres()
  t.teardown(() => pg.stop())
  const url = await pg.createDatabase()
  const relay = await startOpsRelay(path.join(tmpDir(), 'data'), [], { MPORT_DATABASE: url })
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const client = startClient(relay, [`echo=${echo.port}`])
  const port = (await client.waitEvent('tunnel', o => o.name === 'echo', 60_000)).remotePort as number
  t.same(await readyz(relay), { status: 200, body: { status: 'ready' } }, 'ready with PostgreSQL up')
  t.equal(sampleValue(await relay.scrape(), 'mport_store_up'), 1)

  await pg.stop()
  let state = { status: 0, body: {} as Record<string, unknown> }
  await waitFor(async () => { state = await readyz(relay); return state.status === 503 }, { what: '/readyz to answer 503 with PostgreSQL stopped', timeoutMs: 30_000, intervalMs: 200, diag: () => JSON.stringify(state) })
  t.match(state.body, { status: 'not ready', reason: 'store-unreachable', message: /^the store (is unreachable: .+|did not answer within \d+ ms)$/ }, `the reason says why: ${String(state.body.message)}`)
  t.notMatch(String(state.body.message), /postgres:\/\//, 'no database URL in the reason')
  t.equal(sampleValue(await relay.scrape(), 'mport_store_up'), 0, 'mport_store_up is 0')
  t.equal((await relay.get('/healthz')).status, 200, 'the process itself is healthy')
  const data = randomBytes(10_000)
  t.ok((await roundTrip(await connectTo(port), data)).equals(data), 'the tunnel still carries traffic')
  t.equal(relay.proc.exit, undefined, 'the relay keeps running')
})
