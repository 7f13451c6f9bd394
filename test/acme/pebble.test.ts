/**
 * ACME end to end against a real pebble on loopback (test/helpers/pebble.ts): the relay service
 * orders certificates itself, pebble really validates HTTP-01 against the relay's shared HTTP
 * port and DNS-01 against the TXT records the operator's hook published (a loopback DNS
 * responder serves them), and a verifying TLS client that trusts only pebble's root reaches the
 * tunnel. A name nobody holds places no order; renewal on a manual clock swaps the certificate
 * for the next handshake, without a restart.
 */
import t, { type Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { Client, fingerprint } from '../../src/index.js'
import { startRelayService, type RelayService } from '../../packages/mport-relay/src/index.js'
import { ManualClock } from '../helpers/manual-clock.js'
import { LoopbackDns, pebbleTestOptions, startPebble, type Pebble } from '../helpers/pebble.js'
import { closedPort } from '../helpers/ports.js'
import { cert, key } from '../helpers/tunnel.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

const DOMAIN = 'tunnels.test'
const HOSTNAME = 'app.customer.test'
const BOUND = 60_000

async function startApp (): Promise<{ port: number, server: http.Server }> {
  const server = http.createServer((req, res) => res.end(`hello from the tunnel, host ${req.headers.host}`))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, server }
}

/** A verifying TLS handshake (only `ca` trusted, hostname checked) and one GET over it. */
function verifiedGet (port: number, servername: string, ca: string): Promise<{ cert: X509Certificate, body: string }> {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => {
      const peer = new X509Certificate(socket.getPeerCertificate().raw)
      socket.write(`GET / HTTP/1.1\r\nhost: ${servername}\r\nconnection: close\r\n\r\n`)
      let body = ''
      socket.on('data', (c: Buffer) => { body += c.toString() })
      socket.on('end', () => resolve({ cert: peer, body }))
    })
    socket.on('error', reject)
  }), { what: `a verified TLS GET for ${servername}`, timeoutMs: BOUND })
}

/** `mport_certificate_expiry_timestamp_seconds{cert="acme"}` from the ops listener. */
async function acmeExpiryMetric (service: RelayService): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${service.opsAddress!.port}/metrics`)).text()
  const m = /^mport_certificate_expiry_timestamp_seconds\{cert="acme"\} (\d+)$/m.exec(text)
  return m === null ? undefined : Number(m[1])
}

/** The certificate the HTTPS port presents for `servername`, unverified. */
function presented (port: number, servername: string): Promise<X509Certificate> {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      resolve(new X509Certificate(socket.getPeerCertificate().raw))
      socket.destroy()
    })
    socket.on('error', reject)
  }), { what: `a TLS handshake for ${servername}`, timeoutMs: BOUND })
}

/** A local web app behind an http tunnel with `hostname`, through a real client. */
async function openTunnel (t: Test, service: RelayService, hostname: string): Promise<void> {
  const app = await startApp()
  const client = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: service.token, fingerprint: fingerprint(cert), tunnels: [{ name: 'web', kind: 'http', hostname, localHost: '127.0.0.1', localPort: app.port, remotePort: 0 }] })
  client.on('error', () => {})
  t.teardown(async () => { await client.close(); app.server.close() })
  await client.start()
}

interface Setup { service: RelayService, pebble: Pebble, dns: LoopbackDns, dir: string, log: string[] }

async function setup (t: Test, o: { clock?: ManualClock, dnsHook?: string, dns?: LoopbackDns, ratePerHour?: number, failureBackoffMs?: number, allow?: string[] } = {}): Promise<Setup> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-acme-'))
  const dns = o.dns ?? new LoopbackDns()
  if (o.dns === undefined) await dns.listen()
  const httpPort = await closedPort() // pebble must know the relay's HTTP port before the relay exists
  const pebble = await startPebble({ httpPort, dns })
  const log: string[] = []
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, domain: DOMAIN, httpPort, httpsPort: 0, ops: { host: '127.0.0.1', port: 0 },
    acme: { directoryUrl: pebble.directoryUrl, ca: pebble.listenerCa, email: 'ops@customer.test', pollMinMs: 200, ...(o.clock !== undefined ? { clock: o.clock } : {}), ...(o.dnsHook !== undefined ? { dnsHook: o.dnsHook } : {}), ...(o.ratePerHour !== undefined ? { ratePerHour: o.ratePerHour } : {}), ...(o.failureBackoffMs !== undefined ? { failureBackoffMs: o.failureBackoffMs } : {}), ...(o.allow !== undefined ? { allow: o.allow } : {}) },
    onAcmeLog: line => log.push(line),
  })
  t.teardown(async () => {
    await service.close(100)
    await pebble.close()
    dns.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { service, pebble, dns, dir, log }
}

t.test('HTTP-01 on demand for a custom hostname, no order for strangers, renewal swaps the certificate', pebbleTestOptions(), async t => {
  const clock = new ManualClock(Date.now())
  const { service, pebble, dns, dir, log } = await setup(t, { clock })
  dns.names.add(HOSTNAME)
  dns.names.add('stranger.customer.test')
  await openTunnel(t, service, HOSTNAME)
  const acme = service.acme!
  const httpsPort = service.relay.httpsAddress!.port

  // The tunnel coming up orders the certificate; pebble fetches the challenge from the relay's HTTP port.
  await waitFor(() => acme.stats.issued + acme.stats.failed > 0, { timeoutMs: BOUND, intervalMs: 50, what: 'the certificate for the tunnel\'s hostname', diag: () => `${log.join('\n')}\n${pebble.output()}` })
  t.same({ issued: acme.stats.issued, failed: acme.stats.failed, orders: acme.stats.orders }, { issued: 1, failed: 0, orders: 1 }, 'one order, issued')
  t.ok(dns.asked.some(q => q === `1 ${HOSTNAME}`), 'pebble resolved the hostname through the loopback DNS to validate it')
  const root = await pebble.root()
  const first = await verifiedGet(httpsPort, HOSTNAME, root)
  t.equal(first.cert.checkHost(HOSTNAME), HOSTNAME, 'a certificate for the hostname, verified against pebble\'s root')
  t.match(first.body, /hello from the tunnel, host app\.customer\.test/, 'and the tunnel\'s response over it')
  const stored = path.join(dir, 'certs', HOSTNAME)
  for (const f of ['cert.pem', 'key.pem']) t.equal(statSync(path.join(stored, f)).mode & 0o777, 0o600, `${f} stored with mode 0600`)
  t.equal(new X509Certificate(readFileSync(path.join(stored, 'cert.pem'))).serialNumber, first.cert.serialNumber, 'the served certificate is the stored one')
  t.equal(await acmeExpiryMetric(service), Math.floor(Date.parse(first.cert.validTo) / 1000), 'its expiry is the metric the expiry alert watches')

  // A stranger's SNI: nothing holds the name, so no order; the fallback wildcard is served.
  const orders = acme.stats.orders
  const stranger = await presented(httpsPort, 'stranger.customer.test')
  await acme.settled()
  t.equal(acme.stats.orders, orders, 'no order placed for a name nobody holds')
  t.ok(acme.stats.refused >= 1, 'the allow rule turned it down')
  t.equal(stranger.checkHost(`x.${DOMAIN}`), `*.${DOMAIN}`, 'the fallback *.domain certificate was served')
  t.equal(stranger.checkHost('stranger.customer.test'), undefined, 'not one for the stranger\'s name')

  // Renewal: 2/3 of the lifetime later on the relay's clock, a new certificate, used by the next handshake.
  const lifetime = Date.parse(first.cert.validTo) - Date.parse(first.cert.validFrom)
  clock.advance(Math.ceil(lifetime * 2 / 3) + 60_000)
  await waitFor(() => acme.stats.renewed + acme.stats.failed > 0, { timeoutMs: BOUND, intervalMs: 50, what: 'the renewal', diag: () => `${log.join('\n')}\n${pebble.output()}` })
  t.same({ renewed: acme.stats.renewed, failed: acme.stats.failed, orders: acme.stats.orders }, { renewed: 1, failed: 0, orders: orders + 1 }, 'one more order, renewed')
  const renewed = await verifiedGet(httpsPort, HOSTNAME, root)
  t.not(renewed.cert.serialNumber, first.cert.serialNumber, 'the next handshake sees the new serial, no restart')
  t.match(renewed.body, /hello from the tunnel/)
  t.equal(await acmeExpiryMetric(service), Math.floor(Date.parse(renewed.cert.validTo) / 1000), 'the metric follows the renewal')
  t.ok(log.some(l => /obtained the certificate for app\.customer\.test/.test(l)) && log.some(l => /renewed the certificate for app\.customer\.test/.test(l)), 'one log line each')
})

t.test('a failed order is one log line, the name backs off, the hourly budget holds, and the exact-name fallback is served', pebbleTestOptions(), async t => {
  const clock = new ManualClock(Date.now())
  const { service, log, pebble } = await setup(t, { clock, ratePerHour: 2, failureBackoffMs: 60_000 })
  const name = 'nodns.customer.test' // a tunnel holds it, but its DNS does not point here: pebble cannot validate it
  await openTunnel(t, service, name)
  const acme = service.acme!
  const httpsPort = service.relay.httpsAddress!.port
  await waitFor(() => acme.stats.failed > 0, { timeoutMs: BOUND, intervalMs: 50, what: 'the failed order', diag: () => `${log.join('\n')}\n${pebble.output()}` })
  t.same({ orders: acme.stats.orders, failed: acme.stats.failed, issued: acme.stats.issued }, { orders: 1, failed: 1, issued: 0 })
  t.match(log.filter(l => l.includes(name)), [/certificate order for nodns\.customer\.test failed: .*; serving the fallback certificate/], 'one line, with the CA\'s reason')

  // Within the backoff a handshake places no order; the visitor gets a self-signed certificate for the exact name.
  const during = await presented(httpsPort, name)
  await acme.settled()
  t.equal(acme.stats.orders, 1, 'no order during the backoff')
  t.ok(acme.stats.limited >= 1, 'the backoff turned it down')
  t.equal(during.checkHost(name), name, 'the fallback names the hostname')
  t.equal(during.issuer, during.subject, 'and is self-signed')

  clock.advance(61_000)
  await presented(httpsPort, name)
  await waitFor(() => acme.stats.failed > 1, { timeoutMs: BOUND, intervalMs: 50, what: 'the second failed order', diag: () => log.join('\n') })
  t.equal(acme.stats.orders, 2, 'after the backoff the next handshake orders again')
  clock.advance(121_000) // past the doubled backoff, but within the hour: the budget of 2 is spent
  await presented(httpsPort, name)
  await acme.settled()
  t.equal(acme.stats.orders, 2, 'no third order within the hour')
  await presented(httpsPort, name)
  await presented(httpsPort, name)
  await acme.settled()
  t.equal(acme.stats.orders, 2, 'nor on later handshakes')
  const lines = log.filter(l => l.includes(name))
  t.equal(lines.filter(l => /2 orders in the last hour \(acme_rate_per_hour\)/.test(l)).length, 1, 'the budget is named in the log, once')
  t.equal(lines.filter(l => /failed: /.test(l)).length, 2, 'one line per failed order')
  t.equal(lines.filter(l => /next try in/.test(l)).length, 1, 'one line for the backoff, not one per handshake')
})

t.test('a reserved subdomain and an acme_allow name are ordered on their first handshake; a restarted relay serves the stored ones without an order', pebbleTestOptions(), async t => {
  const { service, pebble, dns, dir, log } = await setup(t, { allow: ['*.allowed.test'] })
  const reserved = `shop.${DOMAIN}`
  const allowed = 'www.allowed.test'
  for (const n of [reserved, allowed, 'other.tunnels.test']) dns.names.add(n)
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  await service.store.reserve(alice.id, 'subdomain', 'shop')
  const acme = service.acme!
  const httpsPort = service.relay.httpsAddress!.port
  const root = await pebble.root()
  for (const name of [reserved, allowed]) {
    const fallback = await presented(httpsPort, name) // no tunnel holds it: the first handshake orders, the fallback is served meanwhile
    t.equal(fallback.checkHost(`x.${DOMAIN}`), `*.${DOMAIN}`, `${name}: the self-signed wildcard first`)
  }
  await acme.settled()
  t.same({ orders: acme.stats.orders, issued: acme.stats.issued, failed: acme.stats.failed }, { orders: 2, issued: 2, failed: 0 }, 'both ordered over HTTP-01 and issued', { diag: log })
  await presented(httpsPort, 'other.tunnels.test')
  await acme.settled()
  t.equal(acme.stats.orders, 2, 'an unreserved subdomain without a tunnel is not ordered')
  const serials = new Map<string, string>()
  for (const name of [reserved, allowed]) {
    const r = await verifiedGet(httpsPort, name, root)
    t.equal(r.cert.checkHost(name), name, `${name}: verified against pebble's root`)
    serials.set(name, r.cert.serialNumber)
  }

  // A second relay on the same data dir (the first still runs: other ports) serves what is stored at once.
  const again = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, domain: DOMAIN, httpPort: 0, httpsPort: 0, acme: { directoryUrl: pebble.directoryUrl, ca: pebble.listenerCa, allow: ['*.allowed.test'] },
  })
  try {
    for (const name of [reserved, allowed]) {
      const r = await verifiedGet(again.relay.httpsAddress!.port, name, root)
      t.equal(r.cert.serialNumber, serials.get(name), `${name}: the stored certificate, after a restart`)
    }
    await again.acme!.settled()
    t.equal(again.acme!.stats.orders, 0, 'no new order')
  } finally {
    await again.close(100)
  }
})

t.test('DNS-01 through the operator\'s hook issues the base domain\'s wildcard', pebbleTestOptions(), async t => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'mport-acme-hook-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const calls = path.join(work, 'calls.log')
  writeFileSync(calls, '')
  const hook = path.join(work, 'dns-hook.sh')
  writeFileSync(hook, `#!/bin/sh\n# records every call: add|remove <fqdn> <value>\necho "$1 $2 $3" >> '${calls}'\n`)
  chmodSync(hook, 0o755)
  // The loopback DNS publishes what the hook added (and drops what it removed), so pebble really checks the TXT records.
  const dns = new LoopbackDns()
  await dns.listen()
  const txt = (): Map<string, string[]> => {
    const m = new Map<string, string[]>()
    for (const line of readFileSync(calls, 'utf8').split('\n').filter(Boolean)) {
      const [action, fqdn, value] = line.split(' ') as [string, string, string]
      const name = fqdn.toLowerCase()
      const values = (m.get(name) ?? []).filter(v => v !== value)
      if (action === 'add') values.push(value)
      m.set(name, values)
    }
    return m
  }
  const origGet = dns.txt.get.bind(dns.txt)
  dns.txt.get = (name: string) => txt().get(name) ?? origGet(name)
  dns.txt.has = (name: string) => txt().has(name)
  const { service, log, pebble, dir } = await setup(t, { dnsHook: hook, dns })
  const acme = service.acme!
  await waitFor(() => acme.stats.issued + acme.stats.failed > 0, { timeoutMs: BOUND, intervalMs: 50, what: 'the wildcard certificate', diag: () => `${log.join('\n')}\n${pebble.output()}` })
  t.same({ issued: acme.stats.issued, failed: acme.stats.failed }, { issued: 1, failed: 0 }, 'issued')
  const recorded = readFileSync(calls, 'utf8').split('\n').filter(Boolean)
  t.same(recorded.map(l => l.split(' ').slice(0, 2).join(' ')).sort(), [`add _acme-challenge.${DOMAIN}`, `add _acme-challenge.${DOMAIN}`, `remove _acme-challenge.${DOMAIN}`, `remove _acme-challenge.${DOMAIN}`], 'the hook added and removed a TXT record for the wildcard and the apex')
  t.ok(dns.asked.includes(`16 _acme-challenge.${DOMAIN}`), 'pebble looked the TXT record up')
  const root = await pebble.root()
  const sub = await presented(service.relay.httpsAddress!.port, `anything.${DOMAIN}`)
  t.equal(sub.checkHost(`anything.${DOMAIN}`), `*.${DOMAIN}`, 'the wildcard serves any subdomain')
  const stored = new X509Certificate(readFileSync(path.join(dir, 'certs', `_wildcard.${DOMAIN}`, 'cert.pem')))
  t.equal(sub.serialNumber, stored.serialNumber, 'the ordered wildcard from the data dir, not the self-signed one')
  t.equal(stored.checkHost(DOMAIN), DOMAIN, 'and it covers the apex too')
  const verified = await withTimeout(new Promise<boolean>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: service.relay.httpsAddress!.port, servername: `shop.${DOMAIN}`, ca: root }, () => { resolve(s.authorized); s.destroy() })
    s.on('error', reject)
  }), { what: 'a verified handshake for a subdomain', timeoutMs: BOUND })
  t.ok(verified, 'a TLS client trusting only pebble\'s root accepts it for any subdomain')
})

t.test('a failing DNS hook: one line with its reason, the self-signed wildcard keeps serving', pebbleTestOptions(), async t => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'mport-acme-hook-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const hook = path.join(work, 'dns-hook.sh')
  writeFileSync(hook, '#!/bin/sh\necho "403 from the DNS API: token lacks zone:edit" >&2\nexit 1\n')
  chmodSync(hook, 0o755)
  const { service, log } = await setup(t, { dnsHook: hook })
  const acme = service.acme!
  await waitFor(() => acme.stats.failed > 0, { timeoutMs: BOUND, intervalMs: 50, what: 'the failed wildcard order', diag: () => log.join('\n') })
  t.match(log, [/acme: acme_dns_hook failed: .*dns-hook\.sh add _acme-challenge\.tunnels\.test: exited with 1 \(403 from the DNS API: token lacks zone:edit\); serving the fallback certificate/])
  const served = await presented(service.relay.httpsAddress!.port, `shop.${DOMAIN}`)
  t.equal(served.checkHost(`shop.${DOMAIN}`), `*.${DOMAIN}`, 'the wildcard still answers')
  t.equal(served.issuer, served.subject, 'the self-signed one')
})
