/**
 * The relay as the bin runs it: store, accounts and the REST API wired to the live relay. A
 * user's token opens a tunnel; the API lists it to its owner only, closes it, and revoking the
 * token through the API disconnects the client.
 */
import t from 'tap'
import os from 'node:os'
import path from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { Client, fingerprint } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { startEcho, tcpSpec, cert, key } from '../helpers/tunnel.js'
import { nextEvent, waitFor } from '../helpers/wait.js'

t.test('relay service: accounts, API and relay together', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-service-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0 }, accountingInterval: 100,
  })
  const echo = await startEcho()
  t.teardown(async () => { await service.close(100); await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  await service.store.createUser({ name: 'bob', password: 'another long password' })
  const { raw } = await service.store.createToken(alice.id, 'laptop')
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  const login = async (name: string, password: string): Promise<string> => {
    const r = await fetch(`${api}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) })
    t.equal(r.status, 200, `${name} logs in`)
    return ((await r.json()) as { token: string }).token
  }
  const aliceSession = await login('alice', 'correct horse battery')
  const bobSession = await login('bob', 'another long password')

  // The service has started the relay; listen() again is the same listener, not a second one.
  t.same(await service.relay.listen(), service.relay.address, 'listen() after start returns the same address')
  const client = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: raw, tunnels: [tcpSpec(echo.port)], fingerprint: fingerprint(cert), backoff: { initial: 50, max: 200 } })
  client.on('error', () => {})
  t.teardown(() => client.close())
  await client.start()

  const list = async (session: string): Promise<Array<{ id: string, name: string }>> => {
    const r = await fetch(`${api}/v1/tunnels`, { headers: { authorization: `Bearer ${session}` } })
    return (await r.json()) as Array<{ id: string, name: string }>
  }
  const mine = await list(aliceSession)
  t.equal(mine.length, 1, 'alice sees her tunnel')
  t.same(await list(bobSession), [], 'bob sees none of alice\'s tunnels')
  const asBob = await fetch(`${api}/v1/tunnels/${encodeURIComponent(mine[0]!.id)}`, { method: 'DELETE', headers: { authorization: `Bearer ${bobSession}` } })
  t.equal(asBob.status, 404, 'bob cannot close it')

  const closed = nextEvent<[unknown, { code: string }]>(client, 'tunnel-error', { what: 'the client to hear its tunnel closed' })
  const del = await fetch(`${api}/v1/tunnels/${encodeURIComponent(mine[0]!.id)}`, { method: 'DELETE', headers: { authorization: `Bearer ${aliceSession}` } })
  t.equal(del.status, 204)
  await closed
  await waitFor(() => service.relay.tunnels.length === 0, { what: 'the tunnel to be gone' })

  // Revoking the token through the API cuts the live session.
  const cut = nextEvent<[Error & { code?: string }]>(client, 'error', { what: 'the client to be disconnected', timeoutMs: 15_000 })
  const tokens = (await (await fetch(`${api}/v1/tokens`, { headers: { authorization: `Bearer ${aliceSession}` } })).json()) as Array<{ id: string }>
  const revoke = await fetch(`${api}/v1/tokens/${tokens[0]!.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${aliceSession}` } })
  t.ok(revoke.status === 200 || revoke.status === 204, `revoked (${revoke.status})`)
  const [err] = await cut
  t.equal(err.code, 'MPORT_ERR_AUTH_FAILED')
})
