/**
 * What GET /v1/tunnels lists beside the relay's counters, through a real relay service and
 * client: kind, the client's address and software, up since, last seen (now while connected,
 * when it left while the relay holds the tunnel for it), and the client's visitor filter.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { Client } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { cert, certFingerprint, key, startEcho } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'

interface Listed { name: string, kind: string, online: boolean, clientAddress?: string, clientAgent?: string, since: number, lastSeen: number, filter: string, restricted: boolean }

t.test('tunnel listing: client, up since, last seen while away, filter', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-listing-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0 }, leaseGrace: 60_000,
  })
  service.relay.on('warning', () => {})
  const echo = await startEcho()
  t.teardown(async () => { await service.close(100); await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const session = (await service.store.createSession(alice.id, 60_000)).raw
  const { raw } = await service.store.createToken(alice.id, 'laptop')
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  const list = async (): Promise<Listed[]> => await (await fetch(`${api}/v1/tunnels`, { headers: { authorization: `Bearer ${session}` } })).json() as Listed[]

  const before = Date.now()
  const client = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: raw, fingerprint: certFingerprint, tunnels: [{ name: 'db', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0, denyIp: ['192.0.2.0/24'] }] })
  client.on('error', () => {})
  t.teardown(() => client.close())
  await client.start()
  const [up] = await list()
  t.match(up, { name: 'db', kind: 'tcp', online: true, clientAddress: '127.0.0.1', clientAgent: /^mport-connect\//, filter: 'deny 192.0.2.0/24', restricted: false })
  t.ok(up!.since >= before && up!.since <= Date.now(), 'up since it came up')
  t.ok(up!.lastSeen >= up!.since, 'last seen: now')

  const leaving = Date.now()
  await client.close()
  await waitFor(async () => (await list())[0]?.online === false, { what: 'the tunnel to wait for its client' })
  const [away] = await list()
  t.notOk('clientAddress' in away! || 'clientAgent' in away!, 'no client while it is away')
  t.ok(away!.lastSeen >= leaving && away!.lastSeen <= Date.now(), 'last seen: when it left')
  t.equal(away!.since, up!.since, 'up since is unchanged')
})
