/**
 * ACME through the real bins (issue 15): `mport-relay --config relay.yaml` with `acme_*` keys
 * pointing at a real pebble on loopback, `mport-connect http … --hostname` as a real process;
 * the relay obtains the hostname's certificate over a real HTTP-01 challenge on its shared HTTP
 * port, says so in one `acme` line, and a verifying TLS client (pebble's root only) gets the
 * local service's answer. Bad `acme_*` settings exit 2 with one line.
 */
import { X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { cleanup, runBin, spawnBin, tmpDir } from './helpers/spawn.js'
import { oneStderrLine } from './helpers/bin-output.js'
import { LoopbackDns, pebbleTestOptions, startPebble } from './helpers/pebble.js'
import { closedPort } from './helpers/ports.js'
import { withTimeout } from './helpers/wait.js'

t.teardown(cleanup)

const HOSTNAME = 'shop.customer.test'

t.test('the relay bin gets a certificate from pebble for a client\'s --hostname', pebbleTestOptions(), async t => {
  const dir = tmpDir()
  const dns = new LoopbackDns()
  await dns.listen()
  dns.names.add(HOSTNAME)
  const httpPort = await closedPort()
  const pebble = await startPebble({ httpPort, dns })
  t.teardown(async () => { await pebble.close(); dns.close() })
  const caFile = path.join(dir, 'pebble-listener.pem')
  writeFileSync(caFile, pebble.listenerCa)
  const token = 'mpt_acme-bin-test-token'
  const tokenFile = path.join(dir, 'token')
  writeFileSync(tokenFile, token)
  const config = path.join(dir, 'relay.yaml')
  writeFileSync(config, [
    'host: 127.0.0.1', 'port: 0', 'bind_host: 127.0.0.1', 'public_host: 127.0.0.1', 'ports: 42000-42999',
    `data_dir: ${JSON.stringify(path.join(dir, 'data'))}`, `token_file: ${JSON.stringify(tokenFile)}`, 'json: true',
    'domain: tunnels.test', `http_port: ${httpPort}`, 'https_port: 0',
    `acme_directory: ${JSON.stringify(pebble.directoryUrl)}`, `acme_ca_file: ${JSON.stringify(caFile)}`, 'acme_email: ops@customer.test',
    '',
  ].join('\n'))
  const relay = spawnBin('mport-relay', ['--config', config])
  t.teardown(() => relay.kill())
  const ev = await relay.waitEvent('listening', undefined, 60_000)
  const httpsPort = ev.httpsPort as number

  const app = http.createServer((req, res) => res.end(`the shop, host ${req.headers.host}`))
  await new Promise<void>(resolve => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => app.close())
  const client = spawnBin('mport-connect', ['http', String((app.address() as net.AddressInfo).port), '--hostname', HOSTNAME, '--relay', `127.0.0.1:${ev.port as number}`, '--token', token, '--fingerprint', ev.fingerprint as string])
  t.teardown(() => client.kill())
  await client.waitLine(/shop\.customer\.test/, 'the tunnel line', 60_000)

  const obtained = await relay.waitEvent('acme', o => /obtained|failed/.test(JSON.stringify(o)), 90_000)
  t.match(JSON.stringify(obtained), /obtained the certificate for shop\.customer\.test/, 'one acme line: obtained')
  const root = await pebble.root()
  const reply = await withTimeout(new Promise<{ cert: X509Certificate, body: string }>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: httpsPort, servername: HOSTNAME, ca: root }, () => {
      const cert = new X509Certificate(s.getPeerCertificate().raw)
      s.write(`GET / HTTP/1.1\r\nhost: ${HOSTNAME}\r\nconnection: close\r\n\r\n`)
      let body = ''
      s.on('data', (c: Buffer) => { body += c.toString() })
      s.on('end', () => resolve({ cert, body }))
    })
    s.on('error', reject)
  }), { what: 'a verified HTTPS request to the hostname', timeoutMs: 60_000 })
  t.equal(reply.cert.checkHost(HOSTNAME), HOSTNAME, 'verified against pebble\'s root, for the hostname')
  t.match(reply.body, /the shop, host shop\.customer\.test/, 'the local service answered through the tunnel')
  relay.signal('SIGTERM')
  t.equal((await relay.waitExit()).code, 0)
})

t.test('bad acme settings exit 2 with one line', async t => {
  const dir = tmpDir()
  for (const [args, re] of [
    [['--acme-email', 'ops@example.org'], /--acme-email needs --acme-directory/],
    [['--acme-directory', 'http://acme.example/dir'], /--acme-directory "http:\/\/acme\.example\/dir" is not an https:\/\/ URL/],
    [['--acme-directory', 'https://acme.example/dir', '--acme-allow', 'ok.example.org,*.bad_name'], /--acme-allow: .*"\*\.bad_name" is not a host name/],
  ] as Array<[string[], RegExp]>) {
    const r = await runBin('mport-relay', ['--data-dir', path.join(dir, 'data'), '--port', '0', ...args])
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    oneStderrLine(t, r.stderr, re, args.join(' '))
  }
})
