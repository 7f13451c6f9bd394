/**
 * Reloading the relay's config file as real processes (issue 15): SIGHUP and POST
 * /v1/admin/reload re-read `--config` and apply plans, tokens, client allow lists and reserved
 * names to live sessions, dropping only what the new file no longer allows; a file that fails
 * validation is rejected whole and the running config stays. This file: plans, broken files,
 * tokens; reserved names, the client allow list and the API call: test/bin.relay-reload-access.test.ts.
 *
 * Transfers that must survive a reload go through a local source that sends its first part,
 * then waits until the test has seen the relay's `reloaded` line, then sends the rest: the reload
 * happens mid-transfer for certain, however slow the machine, and the whole stream is checked
 * by digest.
 */
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { cleanup, runBin, spawnBin, tmpDir } from './helpers/spawn.js'
import { sha256 } from './helpers/digest.js'
import { waitFor } from './helpers/wait.js'
import { closedPort } from './helpers/ports.js'
import { WAIT_MS, api, apiBase, baseConfig, pausedSource, sighup, startRelay, tcpClient, userToken, visitor, write, type RunningRelay } from './helpers/relay-reload.js'

t.setTimeout(600_000) // several relays and clients on a loaded machine; every wait inside is bounded
t.teardown(cleanup)

t.test('SIGHUP lowers plan_bandwidth_mbps under a running transfer: nothing dropped, the new limit shapes the rest', async t => {
  const dir = tmpDir()
  const config = { ...baseConfig(dir), api_port: await closedPort(), open_signup: true, plan_bandwidth_mbps: 40 }
  const relay = await startRelay(t, dir, config)
  const base = apiBase(config)
  const token = await userToken(base, 'bob')
  const first = randomBytes(256 * 1024)
  const rest = randomBytes(1536 * 1024)
  const source = await pausedSource(first, rest)
  t.teardown(() => source.close())
  const { publicPort } = await tcpClient(t, relay, source.port, token)
  const v = visitor(publicPort)
  await waitFor(() => v.received() >= first.length, { what: 'the first part through the tunnel', timeoutMs: WAIT_MS })

  const session = (await api(base, 'POST', '/v1/login', { name: 'bob', password: 'bob-password-123' })).json.token as string
  t.equal(((await api(base, 'GET', '/v1/me', undefined, session)).json.limits as Record<string, unknown>).bandwidthBytesPerSecond, 5_000_000, 'before: 40 Mbit/s = 5 MB/s')
  const ev = await sighup(relay, { ...config, plan_bandwidth_mbps: 2 })
  t.equal(ev.event, 'reloaded', 'the reload is applied')
  t.same(ev.changed, ['plan_bandwidth_mbps'], 'one key changed')
  t.same(ev.restartNeeded, [], 'nothing needs a restart')
  t.match(String(ev.msg), /config reloaded from .*relay\.json: plan_bandwidth_mbps 40 → 2$/, 'one line says what changed')
  t.equal(((await api(base, 'GET', '/v1/me', undefined, session)).json.limits as Record<string, unknown>).bandwidthBytesPerSecond, 250_000, 'after: 2 Mbit/s = 250 kB/s')

  // The rest (1.5 MiB) now runs at 250 kB/s: about 6 s. Asserted generously as at most 3x the
  // new limit (at least 2.1 s); the old 5 MB/s limit would move it in 0.3 s. A slow machine only
  // makes the transfer slower, so the bound cannot fail for load.
  const started = performance.now()
  source.resume()
  const all = await v.done
  const seconds = (performance.now() - started) / 1000
  t.equal(all.length, first.length + rest.length, 'every byte arrived')
  t.equal(sha256(all), sha256(Buffer.concat([first, rest])), 'the same bytes (digest)')
  const rate = rest.length / seconds
  t.ok(rate <= 3 * 250_000, `the rest was shaped by the new limit: ${Math.round(rate / 1000)} kB/s over ${seconds.toFixed(1)} s (limit 250 kB/s, old limit 5000 kB/s)`)
  t.equal(relay.proc.jsonLines().filter(o => o.event === 'client-closed').length, 0, 'no client session was dropped')
})

t.test('a broken file on SIGHUP is rejected with the reason; the running config stays (tokens, a new client)', async t => {
  const dir = tmpDir()
  const ciToken = `mpt_ci-${randomBytes(12).toString('hex')}`
  const tokenFile = write(path.join(dir, 'ci.token'), `${ciToken}\n`)
  const config = { ...baseConfig(dir), tokens: [{ name: 'ci', token_file: tokenFile }] }
  const relay = await startRelay(t, dir, config)
  const first = randomBytes(64 * 1024)
  const rest = randomBytes(64 * 1024)
  const source = await pausedSource(first, rest)
  t.teardown(() => source.close())
  const { publicPort } = await tcpClient(t, relay, source.port, ciToken)
  const v = visitor(publicPort)
  await waitFor(() => v.received() >= first.length, { what: 'the first part', timeoutMs: WAIT_MS })

  const bad: Array<{ name: string, file: string | Record<string, unknown>, re: RegExp }> = [
    { name: 'unknown key', file: { ...config, tokens: [], plan_bandwith_mbps: 1 }, re: /unknown key "plan_bandwith_mbps" .*did you mean "plan_bandwidth_mbps"\?/ },
    { name: 'a value out of range', file: { ...config, tokens: [], lease_grace: -1 }, re: /--lease-grace -1 is not a number of seconds \(from "lease_grace" in .*relay\.json\)/ },
    { name: 'a bad network', file: { ...config, tokens: [], client_allow_ip: ['10.0.0.0/33'] }, re: /--client-allow-ip "10\.0\.0\.0\/33" is not an address or network/ },
    { name: 'a token file that cannot be read', file: { ...config, tokens: [{ name: 'ci', token_file: path.join(dir, 'none') }] }, re: /cannot read "tokens\[0\]\.token_file" .*none .*ENOENT/ },
    { name: 'JSON syntax', file: '{ "port": ', re: /JSON/ },
  ]
  for (const b of bad) {
    const ev = await sighup(relay, b.file)
    t.equal(ev.event, 'reload-rejected', `${b.name}: rejected`)
    t.equal(ev.code, 'MPORT_ERR_INVALID_CONFIG', `${b.name}: a config error`)
    t.match(String(ev.msg), /config reload from .*relay\.json rejected, the running config stays: /, `${b.name}: the line says the running config stays`)
    t.match(String(ev.msg), b.re, `${b.name}: and why`)
    t.notOk(relay.proc.output.includes(ciToken), `${b.name}: no token in the output`)
  }
  // Every file above dropped the ci token (or could not read it): had any been applied in part, ci would be gone.
  const again = await tcpClient(t, relay, source.port, ciToken, 'again')
  t.ok(again.publicPort > 0, 'the old config is in force: the ci token still authenticates a new client')
  source.resume()
  const all = await v.done
  t.equal(sha256(all), sha256(Buffer.concat([first, rest])), 'the transfer running through the rejected reloads completed intact')
  t.equal(relay.proc.jsonLines().filter(o => o.event === 'client-closed').length, 0, 'no client was dropped')
})

t.test('tokens: a removed token\'s client is disconnected, the other keeps its transfer', async t => {
  const dir = tmpDir()
  const keep = `mpt_keep-${randomBytes(12).toString('hex')}`
  const drop = `mpt_drop-${randomBytes(12).toString('hex')}`
  const keepFile = write(path.join(dir, 'keep.token'), keep)
  const config = { ...baseConfig(dir), tokens: [{ name: 'keeper', token_file: keepFile }, { name: 'dropped', token_env: 'DROP_TOKEN' }] }
  const file = write(path.join(dir, 'relay.json'), JSON.stringify(config))
  const proc = spawnBin('mport-relay', ['--config', file], { env: { DROP_TOKEN: drop } })
  t.teardown(() => proc.kill())
  const ev = await proc.waitEvent('listening', undefined, WAIT_MS)
  const relay: RunningRelay = { proc, port: ev.port as number, fingerprint: ev.fingerprint as string, config: file }

  const first = randomBytes(128 * 1024)
  const rest = randomBytes(128 * 1024)
  const source = await pausedSource(first, rest)
  t.teardown(() => source.close())
  const kept = await tcpClient(t, relay, source.port, keep, 'kept')
  const dropped = await tcpClient(t, relay, source.port, drop, 'gone')
  const v = visitor(kept.publicPort)
  await waitFor(() => v.received() >= first.length, { what: 'the first part', timeoutMs: WAIT_MS })
  const clients = proc.jsonLines().filter(o => o.event === 'client')
  t.same(clients.map(c => c.principal).sort(), ['dropped', 'keeper'], 'each token is its own principal')

  const r = await sighup(relay, { ...config, tokens: [{ name: 'keeper', token_file: keepFile }] })
  t.equal(r.event, 'reloaded')
  t.same(r.changed, ['tokens'])
  t.equal(r.sessionsEnded, 1, 'one session ended')
  t.match(String(r.msg), /tokens \[keeper=\*\*\*, dropped=\*\*\*\] → \[keeper=\*\*\*\]; 1 client session ended$/, 'the line names the tokens, never their values')
  const exit = await dropped.proc.waitExit(WAIT_MS)
  t.equal(exit.code, 1, 'the removed token\'s client stops (its token no longer authenticates)')
  t.match(dropped.proc.stderr, /MPORT_ERR_AUTH_FAILED/, 'and says why')
  source.resume()
  const all = await v.done
  t.equal(sha256(all), sha256(Buffer.concat([first, rest])), 'the other client\'s transfer completed intact')
  t.equal(kept.proc.exit, undefined, 'the other client is still running')
  t.notOk(proc.output.includes(keep) || proc.output.includes(drop), 'no token value in the relay\'s output')
  const refused = await runBin('mport-connect', ['9', '--relay', `127.0.0.1:${relay.port}`, '--token', drop, '--fingerprint', relay.fingerprint, '--no-lease-file', '--no-reconnect'])
  t.equal(refused.code, 1, 'the removed token no longer authenticates a new client')
})
