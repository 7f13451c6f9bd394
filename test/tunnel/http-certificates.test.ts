/**
 * Certificates on the shared HTTPS port: picked per SNI from the relay's CertificateSource and
 * asked again on every handshake (a swapped certificate is used by the next one), the wildcard
 * as fallback, a self-signed certificate for a custom hostname's exact name when nothing else
 * has one, and ACME HTTP-01 challenges answered on the HTTP port before any tunnel.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { generateSelfSigned, type TunnelSpec } from '../../src/index.js'
import type { CertificateSource } from '../../src/http.js'
import { makeClient, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { withTimeout } from '../helpers/wait.js'

const DOMAIN = 'tunnels.test'
const wildcard = await generateSelfSigned([`*.${DOMAIN}`, DOMAIN])

async function startApp (): Promise<{ port: number, server: http.Server }> {
  const server = http.createServer((req, res) => res.end(`app saw ${req.headers.host}`))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, server }
}

function httpSpec (port: number, extra: Partial<TunnelSpec>): TunnelSpec {
  return { ...tcpSpec(port), kind: 'http', ...extra }
}

/** A TLS handshake with `servername` on the HTTPS port: the certificate presented and, over it, one GET. */
function handshake (port: number, servername: string): Promise<{ cert: X509Certificate, body: string }> {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const cert = new X509Certificate(socket.getPeerCertificate(true).raw)
      socket.write(`GET / HTTP/1.1\r\nhost: ${servername}\r\nconnection: close\r\n\r\n`)
      let body = ''
      socket.on('data', (c: Buffer) => { body += c.toString() })
      socket.on('end', () => resolve({ cert, body }))
    })
    socket.on('error', reject)
  }), { what: `a TLS handshake for ${servername}`, timeoutMs: 30_000 })
}

function rawGet (port: number, host: string, path: string): Promise<string> {
  return withTimeout(new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`))
    let out = ''
    s.on('data', (c: Buffer) => { out += c.toString('latin1') })
    s.on('end', () => resolve(out))
    s.on('error', reject)
  }), { what: `GET http://${host}${path}` })
}

t.test('per-SNI certificates, hot-swapped, with the wildcard as fallback', async t => {
  const first = await generateSelfSigned(['shop.example.org'])
  const second = await generateSelfSigned(['shop.example.org'])
  let current = tls.createSecureContext(first)
  const asked: string[] = []
  const certificates: CertificateSource = { contextFor: name => { asked.push(name); return name === 'shop.example.org' ? current : undefined } }
  const relay = await startRelay({ domain: DOMAIN, httpPort: 0, httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key, certificates })
  const app = await startApp()
  const client = makeClient(relay, [httpSpec(app.port, { name: 'shop', hostname: 'shop.example.org' }), httpSpec(app.port, { name: 'sub', subdomain: 'alpha' })])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close() })
  await client.start()
  const port = relay.httpsAddress!.port

  const a = await handshake(port, 'shop.example.org')
  t.equal(a.cert.serialNumber, new X509Certificate(first.cert).serialNumber, 'the source\'s certificate for its name')
  t.match(a.body, /app saw shop\.example\.org/, 'and the tunnel answers over it')
  current = tls.createSecureContext(second)
  const b = await handshake(port, 'shop.example.org')
  t.equal(b.cert.serialNumber, new X509Certificate(second.cert).serialNumber, 'a swapped certificate is used by the next handshake')
  const c = await handshake(port, `alpha.${DOMAIN}`)
  t.equal(c.cert.serialNumber, new X509Certificate(wildcard.cert).serialNumber, 'a name the source has nothing for gets the wildcard')
  t.match(c.body, /app saw alpha\.tunnels\.test/)
  t.ok(asked.includes(`alpha.${DOMAIN}`), 'the source was asked for the subdomain too')
})

t.test('a source that throws is reported and the fallback served', async t => {
  const warnings: Error[] = []
  const relay = await startRelay({ domain: DOMAIN, httpPort: 0, httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key, certificates: { contextFor: () => { throw new Error('store offline') } } })
  relay.on('warning', err => warnings.push(err))
  const app = await startApp()
  const client = makeClient(relay, [httpSpec(app.port, { name: 'sub', subdomain: 'beta' })])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close() })
  await client.start()
  const r = await handshake(relay.httpsAddress!.port, `beta.${DOMAIN}`)
  t.equal(r.cert.serialNumber, new X509Certificate(wildcard.cert).serialNumber)
  t.match(r.body, /app saw beta/)
  t.match(warnings.map(w => w.message), ['store offline'])
})

t.test('without a source, a custom hostname gets a self-signed certificate for its exact name; strangers get the wildcard', async t => {
  const relay = await startRelay({ domain: DOMAIN, httpPort: 0, httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key })
  const app = await startApp()
  const client = makeClient(relay, [httpSpec(app.port, { name: 'own', hostname: 'app.example.org' })])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close() })
  await client.start()
  const port = relay.httpsAddress!.port
  const own = await handshake(port, 'app.example.org')
  t.equal(own.cert.checkHost('app.example.org'), 'app.example.org', 'the certificate names the hostname')
  t.equal(own.cert.checkHost(`x.${DOMAIN}`), undefined, 'and is not the wildcard')
  t.match(own.body, /app saw app\.example\.org/)
  const again = await handshake(port, 'app.example.org')
  t.equal(again.cert.serialNumber, own.cert.serialNumber, 'made once, then cached')
  const stranger = await handshake(port, 'nobody.example.net')
  t.equal(stranger.cert.serialNumber, new X509Certificate(wildcard.cert).serialNumber, 'no certificate is made for a name no tunnel holds')
  t.match(stranger.body, /404/)
})

t.test('ACME HTTP-01 challenges are answered on the HTTP port before routing; other paths reach the tunnel', async t => {
  const pending = new Map([['tok-123_ABC', 'tok-123_ABC.thumbprint']])
  const relay = await startRelay({ domain: DOMAIN, httpPort: 0, acmeChallenges: { response: token => pending.get(token) } })
  const app = await startApp()
  const client = makeClient(relay, [httpSpec(app.port, { name: 'own', hostname: 'app.example.org' })])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close() })
  await client.start()
  const port = relay.httpAddress!.port
  const hit = await rawGet(port, 'app.example.org', '/.well-known/acme-challenge/tok-123_ABC')
  t.match(hit, /^HTTP\/1\.1 200 OK\r\n/)
  t.equal(hit.split('\r\n\r\n')[1], 'tok-123_ABC.thumbprint', 'the key authorization, as RFC 8555 §8.3 wants it')
  const strangerHost = await rawGet(port, 'unknown.example.net', '/.well-known/acme-challenge/tok-123_ABC')
  t.equal(strangerHost.split('\r\n\r\n')[1], 'tok-123_ABC.thumbprint', 'answered for any Host: the CA asks with the name being validated')
  const other = await rawGet(port, 'app.example.org', '/.well-known/acme-challenge/not-pending')
  t.match(other, /app saw app\.example\.org/, 'a token the relay does not hold is the tunnel\'s own business')
})
