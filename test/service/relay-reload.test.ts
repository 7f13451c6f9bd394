/**
 * RelayService.reload through the library, on a real relay over TLS: a refused value changes
 * nothing (checked whole before applying), a new plan reaches the store while the sessions stay,
 * and named static tokens authenticate, get their own principal and are cut when removed. (The
 * plan shaping a running transfer is test/bin.relay-reload.test.ts.)
 */
import t from 'tap'
import os from 'node:os'
import path from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { Client, fingerprint } from '../../src/index.js'
import { startRelayService, RelayTokens } from '../../packages/mport-relay/src/index.js'
import { tokenId } from '../../src/relay.js'
import { startEcho, tcpSpec, cert, key } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'

t.test('RelayTokens: the owner stays; a removed or changed named token is reported once', async t => {
  const tokens = new RelayTokens('mpt_owner', [{ name: 'ci', token: 'mpt_ci' }, { name: 'deploy', token: 'mpt_deploy' }])
  t.same(tokens.resolve(tokenId('mpt_ci'))?.principal, { id: 'token:ci', name: 'ci', builtin: true }, 'a named token is its own principal')
  t.same(tokens.resolve(tokenId('mpt_owner'))?.principal.id, 'owner')
  const removed = tokens.replace([{ name: 'ci', token: 'mpt_ci2' }])
  t.same(removed.sort((a, b) => a.principalId.localeCompare(b.principalId)), [
    { principalId: 'token:ci', tokenId: tokenId('mpt_ci') },
    { principalId: 'token:deploy', tokenId: tokenId('mpt_deploy') },
  ], 'the rotated ci token and the removed deploy token')
  t.equal(tokens.has(tokenId('mpt_ci')), false, 'the old ci token no longer resolves')
  t.equal(tokens.has(tokenId('mpt_ci2')), true, 'the new one does')
  t.equal(tokens.has(tokenId('mpt_owner')), true, 'the owner\'s is untouched')
  t.same(tokens.replace([{ name: 'ci', token: 'mpt_ci2' }]), [], 'the same list again: nothing removed')
})

t.test('RelayService.reload: whole or nothing; a new plan without dropping sessions; a removed token cut', async t => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-reload-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, planDefaults: { bandwidthBytesPerSecond: 4_000_000 }, tokens: [{ name: 'ci', token: 'mpt_ci-token-for-the-test' }],
  })
  const echo = await startEcho()
  t.teardown(async () => { await service.close(100); await echo.close(); rmSync(dir, { recursive: true, force: true }) })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const { raw } = await service.store.createToken(alice.id, 'laptop')
  const connect = async (token: string): Promise<Client> => {
    const c = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token, tunnels: [tcpSpec(echo.port)], fingerprint: fingerprint(cert), reconnect: false })
    c.on('error', () => {})
    t.teardown(() => c.close())
    await c.start()
    return c
  }
  await connect(raw)
  await connect('mpt_ci-token-for-the-test')
  t.same(service.store.defaultLimits.bandwidthBytesPerSecond, 4_000_000)

  await t.rejects(service.reload({ planDefaults: { bandwidthBytesPerSecond: 1000 }, clientIpFilter: { allow: ['10.0.0.0/33'] } }), { code: 'MPORT_ERR_INVALID_CONFIG' }, 'a bad network refuses the whole reload')
  t.equal(service.store.defaultLimits.bandwidthBytesPerSecond, 4_000_000, 'and the plan in it was not applied')
  await t.rejects(service.reload({ planDefaults: { maxTunnels: -1 } }), { code: 'MPORT_ERR_INVALID_CONFIG' }, 'a bad plan value is a config error')
  t.equal(service.store.defaultLimits.maxTunnels, null, 'nothing changed')

  const r = await service.reload({ planDefaults: { bandwidthBytesPerSecond: 250_000 } })
  t.same(r, { sessionsEnded: 0, tunnelsClosed: 0 }, 'nothing ended')
  t.equal(service.store.defaultLimits.bandwidthBytesPerSecond, 250_000, 'the store has the new plan')
  t.equal(service.relay.clientCount, 2, 'both sessions are still there')

  const gone = await service.reload({ tokens: [] })
  t.equal(gone.sessionsEnded, 1, 'removing ci ends its session')
  await waitFor(() => service.relay.clientCount === 1, { what: 'the ci session to end', timeoutMs: 30_000 })
  t.equal(service.relay.tunnels.filter(x => x.principalId === alice.id).length, 1, 'alice\'s tunnel is untouched')
})
