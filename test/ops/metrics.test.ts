/**
 * /metrics of a real relay process (`mport-relay --ops-port 0`), with real clients
 * (`mport-connect`): traffic of known sizes through a tunnel, visitors refused by an IP filter
 * and by a user's plan, a tunnel refused by the plan, a client with a wrong token, and bytes
 * that are not TLS on the control port. Every counter is checked for its exact value; bytes
 * per tunnel and per user are the visitor payload, byte for byte (the relay counts what it
 * forwards between the visitor socket and the mux stream, not the framing).
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { cleanup, runBin, tmpDir } from '../helpers/spawn.js'
import { connectTo, roundTrip, startEcho } from '../helpers/tunnel.js'
import { startClient, startOpsRelay } from '../helpers/ops-relay.js'
import { metricFamilies, parseSamples, sampleValue } from '../helpers/prom-text.js'
import { waitFor } from '../helpers/wait.js'

t.teardown(cleanup)

/** The public port of tunnel `name` from a `--json` client's tunnel event. */
async function tunnelPort (client: ReturnType<typeof startClient>, name: string): Promise<number> {
  const ev = await client.waitEvent('tunnel', o => o.name === name, 60_000)
  return ev.remotePort as number
}

/** A visitor connection the relay refuses (reset at once): resolves when it is closed. */
function refusedVisit (port: number): Promise<void> {
  return new Promise(resolve => {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => resolve()).on('close', () => resolve())
  })
}

t.test('relay metrics match the traffic, refusals and failures caused', async t => {
  const dataDir = path.join(tmpDir(), 'data')
  // A user with a plan of one tunnel and no visitor connections (the owner's token is unlimited).
  const added = await runBin('mport-relay', ['users', 'add', 'bob', '--password', 'metrics-test-password', '--token', 'cli', '--json', '--data-dir', dataDir])
  t.equal(added.code, 0, `users add: ${added.stderr}`)
  const bobToken = (JSON.parse(added.stdout) as { token: { token: string } }).token.token
  const relay = await startOpsRelay(dataDir, ['--plan-tunnels', '1', '--plan-connections', '0'])
  const echo = await startEcho()
  t.teardown(() => echo.close())

  const owner = startClient(relay, [`echo=${echo.port}`])
  const guarded = startClient(relay, [`guarded=${echo.port}`], ['--deny-ip', '127.0.0.1'])
  const bob = startClient(relay, [`app=${echo.port}`, `extra=${echo.port}`], [], bobToken)
  const echoPort = await tunnelPort(owner, 'echo')
  const guardedPort = await tunnelPort(guarded, 'guarded')
  const appPort = await tunnelPort(bob, 'app')
  const refusedTunnel = await bob.waitEvent('tunnel-error', o => o.name === 'extra', 60_000)
  t.equal(refusedTunnel.code, 'MPORT_ERR_QUOTA_EXCEEDED', 'bob\'s second tunnel is over his plan')

  const sizes = [100_000, 200_000, 50_000]
  for (const n of sizes) {
    const data = randomBytes(n)
    const back = await roundTrip(await connectTo(echoPort), data)
    t.ok(back.equals(data), `${n} bytes echoed intact`)
  }
  for (let i = 0; i < 2; i++) await refusedVisit(guardedPort)
  for (let i = 0; i < 3; i++) await refusedVisit(appPort)

  const bad = await runBin('mport-connect', [`x=${echo.port}`, '--relay', `127.0.0.1:${relay.port}`, '--token', 'mpt_not-a-token-of-this-relay-000000', '--fingerprint', relay.fingerprint, '--no-lease-file'])
  t.not(bad.code, 0, 'the client with a wrong token gives up')
  const garbage = net.connect(relay.port, '127.0.0.1')
  garbage.on('error', () => {})
  garbage.end('GET / HTTP/1.1\r\nHost: relay\r\n\r\n')

  const total = sizes.reduce((a, b) => a + b, 0)
  let text = ''
  await waitFor(async () => {
    text = await relay.scrape()
    return sampleValue(text, 'mport_tunnel_bytes_total', { tunnel: 'echo', direction: 'out' }) === total &&
      sampleValue(text, 'mport_visitor_refusals_total') === 5 && sampleValue(text, 'mport_auth_failures_total') === 1 &&
      sampleValue(text, 'mport_handshake_failures_total') === 1
  }, { what: 'the metrics to show the traffic and refusals', timeoutMs: 60_000, intervalMs: 200, diag: () => text })

  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'owner', tunnel: 'echo', direction: 'in' }), total, 'bytes in through the echo tunnel, exactly')
  t.equal(sampleValue(text, 'mport_tunnel_bytes_total', { user: 'owner', tunnel: 'echo', direction: 'out' }), total, 'bytes out, exactly')
  t.equal(sampleValue(text, 'mport_user_bytes_total', { user: 'owner', direction: 'in' }), total, 'per user')
  t.equal(sampleValue(text, 'mport_user_bytes_total', { user: 'bob' }), undefined, 'bob moved no bytes: no series')
  t.equal(sampleValue(text, 'mport_visitor_connections_total'), sizes.length, 'only forwarded visitors count as opened')
  t.equal(sampleValue(text, 'mport_visitor_refusals_total', { reason: 'MPORT_ERR_VISITOR_FILTERED' }), 2, 'refused by the IP filter')
  t.equal(sampleValue(text, 'mport_visitor_refusals_total', { reason: 'MPORT_ERR_QUOTA_EXCEEDED' }), 3, 'refused by the plan')
  t.equal(sampleValue(text, 'mport_quota_hits_total', { limit: 'maxConnections' }), 3, 'quota hits by limit: connections')
  t.equal(sampleValue(text, 'mport_quota_hits_total', { limit: 'maxTunnels' }), 1, 'and the refused second tunnel')
  t.equal(sampleValue(text, 'mport_tunnel_refusals_total', { reason: 'MPORT_ERR_QUOTA_EXCEEDED' }), 1)
  t.equal(sampleValue(text, 'mport_auth_failures_total', { reason: 'MPORT_ERR_AUTH_FAILED' }), 1, 'one failed login')
  t.equal(sampleValue(text, 'mport_handshake_failures_total', { reason: 'tls' }), 1, 'one TLS handshake failure')
  t.equal(sampleValue(text, 'mport_sessions'), 3, 'three clients connected')
  t.equal(sampleValue(text, 'mport_tunnels', { kind: 'tcp' }), 3, 'echo, guarded and app')
  t.equal(sampleValue(text, 'mport_ready'), 1)
  t.equal(sampleValue(text, 'mport_store_up'), 1)
  t.ok((sampleValue(text, 'mport_store_operation_duration_seconds_count', { operation: 'credential' }) ?? 0) >= 1, 'bob\'s login looked up his token in the store, timed')
  t.ok((sampleValue(text, 'mport_certificate_expiry_timestamp_seconds', { cert: 'control' }) ?? 0) > Date.now() / 1000, 'the control certificate expires in the future')
  t.ok(sampleValue(text, 'mport_nodejs_eventloop_lag_p99_seconds') !== undefined, 'event-loop lag is exported')
  const families = metricFamilies(text)
  for (const [name, type] of [['mport_tunnel_bytes_total', 'counter'], ['mport_session_rtt_seconds', 'histogram'], ['mport_sessions', 'gauge']] as const) {
    t.equal(families.get(name.replace(/_total$/, '')) ?? families.get(name), type, `${name} is a ${type}`)
  }
  t.ok(parseSamples(text).every(s => Object.values(s.labels).every(v => !v.includes('mpt_'))), 'no token in any label')
  t.notOk(text.includes(bobToken) || text.includes(relay.token), 'no token anywhere in the scrape')
})
