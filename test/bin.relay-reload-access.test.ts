/**
 * Reloading the relay's config file as real processes (issue 15), the access side: reserved
 * subdomains and the client allow list applied to live sessions by SIGHUP, and the API's reload
 * call (admin only, 422 with the reason for a broken file). Plans and tokens:
 * test/bin.relay-reload.test.ts.
 */
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { cleanup, runBin, spawnBin, tmpDir, type BinProcess } from './helpers/spawn.js'
import { closedPort } from './helpers/ports.js'
import { DOMAIN, WAIT_MS, api, apiBase, baseConfig, pausedSource, sighup, startRelay, tcpClient, visitor, write } from './helpers/relay-reload.js'
import { waitFor } from './helpers/wait.js'

t.setTimeout(600_000) // several relays and clients on a loaded machine; every wait inside is bounded
t.teardown(cleanup)

t.test('reserved_names: a live tunnel on a newly reserved name closes, the others keep serving; a new one is refused', async t => {
  const dir = tmpDir()
  const web = http.createServer((req, res) => res.end(`hello from ${req.headers.host ?? ''}`))
  await new Promise<void>(resolve => web.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => web.close(resolve)))
  const webPort = (web.address() as net.AddressInfo).port
  const token = `mpt_web-${randomBytes(12).toString('hex')}`
  const config = { ...baseConfig(dir), token, domain: DOMAIN, http_port: 0, reserved_names: ['admin2'] }
  const relay = await startRelay(t, dir, config)
  const get = async (name: string): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: relay.httpPort, path: '/', headers: { host: `${name}.${DOMAIN}` } }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject)
  })
  const client = (sub: string): BinProcess => {
    const p = spawnBin('mport-connect', ['http', String(webPort), '--subdomain', sub, '--relay', `127.0.0.1:${relay.port}`, '--token', token, '--fingerprint', relay.fingerprint, '--no-lease-file'])
    t.teardown(() => p.kill())
    return p
  }
  const blog = client('blog')
  const shop = client('shop')
  await blog.waitLine(/^https?:\/\/blog\./, 'the blog tunnel', WAIT_MS)
  await shop.waitLine(/^https?:\/\/shop\./, 'the shop tunnel', WAIT_MS)
  t.same(await get('blog'), { status: 200, body: `hello from blog.${DOMAIN}` }, 'blog serves before the reload')

  const ev = await sighup(relay, { ...config, reserved_names: ['admin2', 'blog'] })
  t.equal(ev.event, 'reloaded')
  t.equal(ev.tunnelsClosed, 1, 'one tunnel closed')
  t.match(String(ev.msg), /reserved_names \[admin2\] → \[admin2, blog\]; 1 tunnel closed$/)
  await relay.proc.waitEvent('tunnel-down', o => o.name !== undefined && String(o.reason).includes('reserved'), WAIT_MS)
  await blog.waitLine(/MPORT_ERR_NAME_RESERVED|reserved/, 'the blog client told its name is reserved', WAIT_MS)
  t.equal((await get('blog')).status === 200, false, 'blog no longer serves')
  t.same(await get('shop'), { status: 200, body: `hello from shop.${DOMAIN}` }, 'shop is untouched')
  t.equal(shop.exit, undefined, 'the shop client still runs')
  t.equal(relay.proc.jsonLines().filter(o => o.event === 'client-closed').length, 0, 'no client session was dropped')

  const admin2 = spawnBin('mport-connect', ['http', String(webPort), '--subdomain', 'admin2', '--relay', `127.0.0.1:${relay.port}`, '--token', token, '--fingerprint', relay.fingerprint, '--no-lease-file'])
  t.teardown(() => admin2.kill())
  await admin2.waitLine(/MPORT_ERR_NAME_RESERVED/, 'a tunnel asking for a reserved name is refused with a typed error', WAIT_MS)
})

t.test('client_allow_ip: a session from a now-refused address ends; allowed again, a client connects', async t => {
  const dir = tmpDir()
  const token = `mpt_allow-${randomBytes(12).toString('hex')}`
  const config = { ...baseConfig(dir), token, client_allow_ip: ['127.0.0.0/8'] }
  const relay = await startRelay(t, dir, config)
  const source = await pausedSource(Buffer.from('x'), Buffer.alloc(0))
  t.teardown(() => source.close())
  const first = await tcpClient(t, relay, source.port, token)
  t.ok(first.publicPort > 0, '127.0.0.1 is allowed by 127.0.0.0/8')

  const ev = await sighup(relay, { ...config, client_allow_ip: ['10.0.0.0/8'] })
  t.equal(ev.event, 'reloaded')
  t.equal(ev.sessionsEnded, 1, 'the session from 127.0.0.1 ended')
  t.equal((await first.proc.waitExit(WAIT_MS)).code, 1, 'the client stops: its address is refused')
  t.match(first.proc.stderr, /127\.0\.0\.1 may not open a client session on this relay/, 'and is told why')
  const refused = await runBin('mport-connect', ['9', '--relay', `127.0.0.1:${relay.port}`, '--token', token, '--fingerprint', relay.fingerprint, '--no-lease-file', '--no-reconnect'])
  t.equal(refused.code, 1, 'a new client from 127.0.0.1 is refused')
  t.match(refused.stderr, /127\.0\.0\.1 may not open a client session on this relay \(client_allow_ip \/ client_deny_ip\)/, 'with the reason')

  const deny = await sighup(relay, { ...config, client_allow_ip: [], client_deny_ip: ['127.0.0.2'] })
  t.equal(deny.event, 'reloaded')
  const back = await tcpClient(t, relay, source.port, token, 'back')
  t.ok(back.publicPort > 0, 'with 127.0.0.1 no longer refused, a client connects again')
})

t.test('log_level: a reload applies it at once (debug lines about each visitor appear)', async t => {
  const dir = tmpDir()
  const token = `mpt_level-${randomBytes(12).toString('hex')}`
  const config = { ...baseConfig(dir), token, log_level: 'info' }
  const relay = await startRelay(t, dir, config)
  const source = await pausedSource(Buffer.from('x'), Buffer.alloc(0))
  t.teardown(() => source.close())
  const client = await tcpClient(t, relay, source.port, token)
  const first = visitor(client.publicPort)
  await waitFor(() => first.received() === 1, { what: 'the first visitor\'s byte', timeoutMs: WAIT_MS })
  t.notOk(relay.proc.jsonLines().some(o => o.event === 'connection'), 'at info, no line per visitor')

  const ev = await sighup(relay, { ...config, log_level: 'debug' })
  t.equal(ev.event, 'reloaded')
  t.same(ev.changed, ['log_level'], 'log_level is applied by the reload')
  t.same(ev.restartNeeded, [], 'not left for a restart')
  const second = visitor(client.publicPort)
  t.match(await relay.proc.waitEvent('connection', undefined, WAIT_MS), { level: 'debug', tunnel: 'src' }, 'at debug, the next visitor has its line')
  await waitFor(() => second.received() === 1, { what: 'the second visitor\'s byte', timeoutMs: WAIT_MS })
  source.resume()
  await Promise.all([first.done, second.done])
})

t.test('POST /v1/admin/reload: admins reload, others get 403, a broken file 422 with the reason', async t => {
  const dir = tmpDir()
  const config = { ...baseConfig(dir), api_port: await closedPort(), plan_tunnels: 3 }
  const create = await runBin('mport-relay', ['users', 'add', 'root', '--role', 'admin', '--password', 'root-password-123', '--data-dir', path.join(dir, 'data')])
  t.equal(create.code, 0, `an admin user: ${create.stderr}`)
  const relay = await startRelay(t, dir, { ...config, open_signup: true })
  const base = apiBase(config)
  const admin = (await api(base, 'POST', '/v1/login', { name: 'root', password: 'root-password-123' })).json.token as string
  await api(base, 'POST', '/v1/signup', { name: 'eve', password: 'eve-password-123' })
  const eve = (await api(base, 'POST', '/v1/login', { name: 'eve', password: 'eve-password-123' })).json.token as string

  write(relay.config, JSON.stringify({ ...config, open_signup: true, plan_tunnels: 1, port: 1 }))
  const forbidden = await api(base, 'POST', '/v1/admin/reload', undefined, eve)
  t.equal(forbidden.status, 403, 'a user who is not an admin: 403')
  t.equal((forbidden.json.error as Record<string, unknown>).code, 'MPORT_ERR_FORBIDDEN')
  t.equal((await api(base, 'POST', '/v1/admin/reload')).status, 401, 'no credentials: 401')
  t.equal(relay.proc.jsonLines().filter(o => o.event === 'reloaded').length, 0, 'neither reloaded anything')

  const ok = await api(base, 'POST', '/v1/admin/reload', undefined, admin)
  t.equal(ok.status, 200, 'an admin: 200')
  t.same(ok.json.changed, ['plan_tunnels'], 'the live key applied')
  t.same(ok.json.restartNeeded, ['port'], 'the port is for the next restart')
  t.match(String(ok.json.line), /plan_tunnels 3 → 1; changed but applied only at the next restart: port$/, 'the same line the relay logs')
  await relay.proc.waitEvent('reloaded', undefined, WAIT_MS)
  t.equal(((await api(base, 'GET', '/v1/me', undefined, eve)).json.limits as Record<string, unknown>).maxTunnels, 1, 'the new plan is in force')

  write(relay.config, '{"plan_tunnels": "many"}')
  const broken = await api(base, 'POST', '/v1/admin/reload', undefined, admin)
  t.equal(broken.status, 422, 'a broken file: 422')
  t.equal((broken.json.error as Record<string, unknown>).code, 'MPORT_ERR_INVALID_CONFIG')
  t.match(String((broken.json.error as Record<string, unknown>).message), /"plan_tunnels" in .*relay\.json must be a number, not "many"/, 'with the reason')
  await relay.proc.waitEvent('reload-rejected', undefined, WAIT_MS)
  t.equal(((await api(base, 'GET', '/v1/me', undefined, eve)).json.limits as Record<string, unknown>).maxTunnels, 1, 'the running config stays')
  const audit = await api(base, 'GET', '/v1/audit', undefined, admin)
  t.ok((audit.json.entries as Array<Record<string, unknown>>).some(e => e.action === 'relay.reload' && e.actorName === 'root'), 'the reload is in the audit log')
})

t.test('--help names the reloadable and the restart-only keys', async t => {
  const r = await runBin('mport-relay', ['--help'])
  t.equal(r.code, 0)
  const flat = r.stdout.replace(/\s+/g, ' ')
  for (const s of ['SIGHUP', 'POST /v1/admin/reload', 'reserved_names', 'client_allow_ip', 'plan_bandwidth_mbps', 'restart']) t.ok(flat.includes(s), `--help mentions ${s}`)
})

