/** GET /v1/tunnels shows a load-balancing group's members (address, version, state, connections), through the real service and API. */
import t from 'tap'
import os from 'node:os'
import path from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { Client, fingerprint } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { startEcho, tcpSpec, cert, key } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'

interface Listed { id: string, name: string, port: number, group?: { name: string, policy: string, keyed: boolean, members: Array<{ client: string, session?: string, remoteAddress?: string, agent?: string, state: string, connections: number }> } }

t.test('the API lists each group member with the group and its members', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-groups-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0 },
  })
  const echo = await startEcho()
  t.teardown(async () => { await service.close(100); await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const { raw } = await service.store.createToken(alice.id, 'laptop')
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  const r = await fetch(`${api}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'alice', password: 'correct horse battery' }) })
  const session = ((await r.json()) as { token: string }).token
  const spec = { ...tcpSpec(echo.port), name: 'api', group: 'api', groupKey: 'k-3b1e0c', groupPolicy: 'leastconn' as const }
  const clients = [0, 1].map(() => new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: raw, tunnels: [spec], fingerprint: fingerprint(cert), backoff: { initial: 50, max: 200 } }))
  for (const c of clients) { c.on('error', () => {}); t.teardown(() => c.close()) }
  for (const c of clients) await c.start()
  const list = async (): Promise<Listed[]> => (await (await fetch(`${api}/v1/tunnels`, { headers: { authorization: `Bearer ${session}` } })).json()) as Listed[]
  const tunnels = await list()
  t.equal(tunnels.length, 2, 'one row per member')
  t.equal(tunnels[0]!.port, tunnels[1]!.port, 'on one port')
  const group = tunnels[0]!.group!
  t.same({ name: group.name, policy: group.policy, keyed: group.keyed }, { name: 'api', policy: 'leastconn', keyed: true }, 'the group, its policy, keyed')
  t.equal(group.members.length, 2, 'both members')
  for (const m of group.members) {
    t.equal(m.state, 'ready', 'ready')
    t.equal(m.remoteAddress, '127.0.0.1', 'the client address')
    t.match(m.agent, /^mport-connect\//, 'the client version')
    t.equal(m.connections, 0, 'no connections yet')
    t.match(m.session, /^c\d+$/, 'the connection id')
  }
  t.notMatch(JSON.stringify(tunnels), 'k-3b1e0c', 'the group key is never shown')
  await clients[1]!.drain(5000)
  await waitFor(async () => (await list()).length === 1, { what: 'the drained member to leave the listing' })
  t.equal((await list())[0]!.group!.members.length, 1, 'one member left')
})
