/**
 * Recent visitors (GET /v1/tunnels/:id/visitors) through a real relay service and client: a
 * finished connection with its bytes, a refused one with its code, newest first, only to the
 * tunnel's owner (another user gets 404), bounded per tunnel; a closed tunnel's are not served.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { Client } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { cert, certFingerprint, connectTo, key, roundTrip, startEcho } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'

t.test('recent visitors: bytes, refusals, owner only, bounded, none for a closed tunnel', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-visitors-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0, recentVisitors: 3 }, leaseGrace: 200,
  })
  service.relay.on('warning', () => {})
  const echo = await startEcho()
  t.teardown(async () => { await service.close(100); await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const bob = await service.store.createUser({ name: 'bob', password: 'another long password' })
  const aliceSession = (await service.store.createSession(alice.id, 60_000)).raw
  const bobSession = (await service.store.createSession(bob.id, 60_000)).raw
  const { raw } = await service.store.createToken(alice.id, 'laptop')
  const client = new Client({
    relay: `127.0.0.1:${service.relay.address.port}`, token: raw, fingerprint: certFingerprint, backoff: { initial: 50, max: 200 },
    tunnels: [
      { name: 'open', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 },
      { name: 'closed', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0, allowIp: ['10.0.0.0/8'] },
    ],
  })
  client.on('error', () => {})
  t.teardown(() => client.close())
  await client.start()
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  const tunnel = (name: string): { key: string, port: number } => service.relay.tunnels.find(x => x.name === name)!
  const visitors = async (name: string, session = aliceSession): Promise<{ status: number, body: Array<{ address: string, bytesIn: number, bytesOut: number, refused?: string }> }> => {
    const r = await fetch(`${api}/v1/tunnels/${encodeURIComponent(tunnel(name).key)}/visitors`, { headers: { authorization: `Bearer ${session}` } })
    return { status: r.status, body: await r.json() as never }
  }

  t.same((await visitors('open')).body, [], 'none yet')
  const sizes = [100, 200, 300, 400]
  for (const n of sizes) {
    const s = await connectTo(tunnel('open').port)
    await roundTrip(s, Buffer.alloc(n, 1))
    s.end()
    await waitFor(async () => (await visitors('open')).body[0]?.bytesIn === n, { what: `the ${n}-byte visitor listed` })
  }
  const list = (await visitors('open')).body
  t.same(list.map(v => v.bytesIn), [400, 300, 200], 'newest first, at most 3 kept')
  t.same(list.map(v => v.bytesOut), [400, 300, 200], 'the echo came back')
  t.equal(list[0]!.address, '127.0.0.1')

  const refused = await connectTo(tunnel('closed').port).catch(() => undefined)
  refused?.on('error', () => {})
  await waitFor(async () => (await visitors('closed')).body.length === 1, { what: 'the refused visitor listed' })
  t.match((await visitors('closed')).body[0], { address: '127.0.0.1', bytesIn: 0, bytesOut: 0, refused: 'MPORT_ERR_VISITOR_FILTERED' })
  refused?.destroy()

  t.equal((await visitors('open', bobSession)).status, 404, 'another user: not found')

  // "Allow my current IP for 2 hours" on the restricted tunnel lets this address in.
  const allow = async (name: string, body: unknown, session = aliceSession): Promise<{ status: number, body: { grants: Array<{ address: string, until: number }> } }> => {
    const r = await fetch(`${api}/v1/tunnels/${encodeURIComponent(tunnel(name).key)}/allow`, { method: 'POST', headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: r.status, body: await r.json() as never }
  }
  t.equal((await allow('closed', { hours: 2 }, bobSession)).status, 404, 'not on another user\'s tunnel')
  t.equal((await allow('closed', { hours: 2, address: 'not-an-ip' })).status, 400)
  t.equal((await allow('closed', { hours: 0 })).status, 400)
  const before = Date.now()
  const granted = await allow('closed', { hours: 2 })
  t.equal(granted.status, 200)
  t.equal(granted.body.grants.length, 1)
  t.equal(granted.body.grants[0]!.address, '127.0.0.1', 'the caller\'s own address')
  t.ok(granted.body.grants[0]!.until >= before + 2 * 3_600_000, 'for two hours')
  const inside = await connectTo(tunnel('closed').port)
  t.same(await roundTrip(inside, Buffer.from('let me in')), Buffer.from('let me in'), 'the granted address gets through')
  inside.end()
  const listed = await (await fetch(`${api}/v1/tunnels`, { headers: { authorization: `Bearer ${aliceSession}` } })).json() as Array<{ name: string, restricted: boolean, filter: string, grants: unknown[] }>
  t.match(listed.find(x => x.name === 'closed'), { restricted: true, filter: 'allow 10.0.0.0/8', grants: [{ address: '127.0.0.1' }] })
  t.match(listed.find(x => x.name === 'open'), { restricted: false, filter: 'open to every address', grants: [] })
  const openKey = tunnel('open').key
  await client.close()
  await waitFor(() => service.relay.tunnels.length === 0, { what: 'the tunnels to close', timeoutMs: 30_000 })
  const gone = await fetch(`${api}/v1/tunnels/${encodeURIComponent(openKey)}/visitors`, { headers: { authorization: `Bearer ${aliceSession}` } })
  t.equal(gone.status, 404, 'a closed tunnel has no visitors to show')
})
