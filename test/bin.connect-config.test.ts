/**
 * `mport-connect --config client.yaml` with per-tunnel options (issue 15), real relay and
 * client bins on loopback: one client serves a tcp tunnel with allow_ip (a visitor from
 * 127.0.0.1 passes, one from 127.0.0.2 is refused and the client is told), a tcp tunnel whose
 * allow_ip excludes 127.0.0.1, an http tunnel whose password comes from basic_auth_file and a
 * tls tunnel passed through to a local TLS service (the visitor verifies that service's own certificate);
 * the token comes from token_file and is never printed. Every validation error exits 2 with
 * exactly one line naming the key and the tunnel.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { generateSelfSigned } from '../src/index.js'
import { request, startUpstream } from './helpers/http-fixtures.js'
import { cleanup, relayArgs, runBin, spawnBin, tmpDir } from './helpers/spawn.js'
import { roundTrip, startEcho } from './helpers/tunnel.js'
import { sha256 } from './helpers/digest.js'
import { withTimeout } from './helpers/wait.js'

t.teardown(cleanup)

const DOMAIN = 'mport.test'

function write (dir: string, name: string, text: string): string {
  const file = path.join(dir, name)
  writeFileSync(file, text)
  return file
}

/** A visitor from `localAddress` (a loopback address) to 127.0.0.1:`port`. */
function visitFrom (port: number, localAddress: string): Promise<net.Socket> {
  return withTimeout(new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen: true })
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  }), { what: `a connection from ${localAddress} to port ${port}`, timeoutMs: 30_000 })
}

/** What a visitor from `localAddress` gets back for `data`: the echo, or `refused` when the relay cut it. */
async function echoFrom (port: number, localAddress: string, data: Buffer): Promise<Buffer | 'refused'> {
  // The relay resets a filtered visitor at once: during the connect, or on the first bytes.
  try {
    const back = await roundTrip(await visitFrom(port, localAddress), data)
    return back.length === 0 ? 'refused' : back
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE') return 'refused'
    throw err
  }
}

t.test('one client, tcp, http and tls tunnels from one file: allow_ip, basic_auth_file, token_file', async t => {
  const dir = tmpDir()
  const dataDir = path.join(dir, 'data')
  const relay = spawnBin('mport-relay', relayArgs(dataDir, ['--json', '--domain', DOMAIN, '--http-port', '0', '--https-port', '0']))
  t.teardown(() => relay.kill())
  const listening = await relay.waitEvent('listening')
  const token = readFileSync(path.join(dataDir, 'token'), 'utf8').trim()
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const local = await generateSelfSigned([`secure.${DOMAIN}`])
  const tlsService = tls.createServer({ cert: local.cert, key: local.key }, s => s.end('end-to-end'))
  await new Promise<void>(resolve => tlsService.listen(0, '127.0.0.1', resolve))
  t.teardown(() => tlsService.close())
  const password = `pw-${randomBytes(6).toString('hex')}`
  const config = write(dir, 'client.yaml', [
    `relay: 127.0.0.1:${listening.port as number}`,
    `token_file: ${write(dir, 'token', `${token}\n`)}`,
    `fingerprint: ${listening.fingerprint as string}`,
    'json: true',
    'tunnels:',
    '  - name: adb',
    `    local: ${echo.port}`,
    '    allow_ip: [127.0.0.1]',
    '  - name: office-only',
    `    local: "127.0.0.1:${echo.port}"`,
    '    allow_ip: [10.0.0.0/8]',
    '  - name: site',
    '    kind: http',
    `    local: ${upstream.port}`,
    '    subdomain: site',
    `    basic_auth_file: ${write(dir, 'site.auth', `admin:${password}\n`)}`,
    '  - name: mail',
    '    kind: tls',
    `    local: ${(tlsService.address() as net.AddressInfo).port}`,
    '    subdomain: secure',
    '',
  ].join('\n'))
  const client = spawnBin('mport-connect', ['--config', config])
  t.teardown(() => client.kill())
  const adb = await client.waitEvent('tunnel', e => e.name === 'adb')
  const office = await client.waitEvent('tunnel', e => e.name === 'office-only')
  const site = await client.waitEvent('tunnel', e => e.name === 'site')
  t.match(site, { url: `https://site.${DOMAIN}:${listening.httpsPort as number}` }, 'the http tunnel has its subdomain on the shared ports')
  const mail = await client.waitEvent('tunnel', e => e.name === 'mail')
  t.match(mail, { url: `tls://secure.${DOMAIN}:${listening.httpsPort as number}` }, 'the tls tunnel is routed by SNI on the shared HTTPS port')
  t.notOk(client.jsonLines().some(e => e.event === 'warning' && e.name === 'adb'), 'no "use --allow-ip" note for a tunnel that has allow_ip')

  const data = randomBytes(256 * 1024)
  const back = await echoFrom(adb.remotePort as number, '127.0.0.1', data)
  t.equal(back === 'refused' ? 'refused' : sha256(back), sha256(data), 'adb: a visitor from 127.0.0.1 passes (256 KiB echoed intact)')
  t.equal(await echoFrom(adb.remotePort as number, '127.0.0.2', data), 'refused', 'adb: a visitor from 127.0.0.2 is refused')
  t.equal(await echoFrom(office.remotePort as number, '127.0.0.1', data), 'refused', 'office-only: allow_ip 10.0.0.0/8 refuses 127.0.0.1')
  const notice = await client.waitEvent('visitor-refused', e => e.name === 'adb')
  t.match(notice, { code: 'MPORT_ERR_VISITOR_FILTERED' }, 'the client is told a visitor of adb was filtered')

  const host = `site.${DOMAIN}`
  const anonymous = await request({ port: listening.httpPort as number, path: '/', headers: { host } })
  t.equal(anonymous.status, 401, 'site: no password, 401')
  const wrong = await request({ port: listening.httpPort as number, path: '/', headers: { host, authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` } })
  t.equal(wrong.status, 401, 'site: a wrong password, 401')
  const ok = await request({ port: listening.httpPort as number, path: '/with-auth', headers: { host, authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } })
  t.equal(ok.status, 200, 'site: the password from basic_auth_file lets the visitor in')
  t.equal(ok.json?.url, '/with-auth', 'the local HTTP service got the request')
  t.equal(upstream.seen.length, 1, 'only the authorized request reached the local service')

  const e2e = await withTimeout(new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: listening.httpsPort as number, servername: `secure.${DOMAIN}`, ca: local.cert }, () => {
      let b = ''
      s.on('data', (c: Buffer) => { b += c.toString() })
      s.on('end', () => resolve(b))
    })
    s.on('error', reject)
  }), { what: 'TLS through the mail tunnel', timeoutMs: 30_000 })
  t.equal(e2e, 'end-to-end', 'mail: passed through; the visitor verified the local service\'s own certificate')

  client.signal('SIGINT')
  t.equal((await client.waitExit()).code, 0, 'SIGINT: exit 0')
  t.notOk(client.output.includes(token), 'the token from token_file is never printed')
  t.notOk(client.output.includes(password), 'nor the password from basic_auth_file')
  relay.signal('SIGTERM')
  t.equal((await relay.waitExit()).code, 0, 'relay exits 0')
  t.notOk(relay.output.includes(password), 'the relay never prints the password')
})

t.test('bad client config files: exit 2, exactly one line naming the key and the tunnel', async t => {
  const dir = tmpDir()
  const secret = `mpt_never-printed-${randomBytes(4).toString('hex')}`
  const head = `relay: 127.0.0.1:1\ntoken: ${secret}\ntunnels:\n`
  const line = (msg: string): string => `mport-connect: invalid config ${msg} [MPORT_ERR_INVALID_CONFIG] (see mport-connect --help)`
  const cases: Array<{ name: string, yaml: string, expect: string }> = [
    { name: 'unknown top-level key', yaml: `relay: 127.0.0.1:1\ntoken: ${secret}\nfingerprnt: sha256:00\ntunnels: [5555]\n`, expect: line(`"fingerprnt": unknown key "fingerprnt" in ${dir}/a.yaml; did you mean "fingerprint"?`) },
    { name: 'unknown tunnel key', yaml: `${head}  - name: adb\n    local: 5555\n    allow_ips: [127.0.0.1]\n`, expect: line(`"allow_ips": unknown key "allow_ips" in tunnel "adb" in ${dir}/a.yaml; did you mean "allow_ip"?`) },
    { name: 'remote_port on http', yaml: `${head}  - name: web\n    kind: http\n    local: 3000\n    remote_port: 8080\n`, expect: line(`"remote_port": "remote_port" of tunnel "web" in ${dir}/a.yaml is for tcp tunnels, and this one is http: http tunnels share the relay's HTTP(S) ports; use "subdomain" or "hostname"`) },
    { name: 'basic_auth on tcp', yaml: `${head}  - name: db\n    local: 5432\n    basic_auth: admin:pw\n`, expect: line(`"basic_auth": "basic_auth" of tunnel "db" in ${dir}/a.yaml is for http tunnels, and this one is tcp: the relay asks for a password only on http tunnels`) },
    { name: 'duplicate name', yaml: `${head}  - web=8080\n  - name: web\n    local: 8081\n`, expect: line(`"name": two tunnels in ${dir}/a.yaml are named "web": give each a "name" of its own`) },
    { name: 'wrong type', yaml: `${head}  - name: adb\n    local: 5555\n    remote_port: "45555"\n`, expect: line(`"remote_port": "remote_port" of tunnel "adb" in ${dir}/a.yaml must be a port number (1-65535, or 0 for any), not "45555"`) },
    { name: 'allow_ip typo in an address', yaml: `${head}  - name: adb\n    local: 5555\n    allow_ip: [127.0.0.300]\n`, expect: line(`"allow_ip": "allow_ip" in tunnel "adb" in ${dir}/a.yaml: "127.0.0.300" is not an IPv4/IPv6 address or CIDR (expected e.g. 203.0.113.0/24 or 2001:db8::/32)`) },
    { name: 'unreadable basic_auth_file', yaml: `${head}  - name: web\n    kind: http\n    local: 3000\n    basic_auth_file: ${dir}/none\n`, expect: line(`"basic_auth_file": cannot read "basic_auth_file" ${dir}/none in tunnel "web" in ${dir}/a.yaml: ENOENT`) },
    { name: 'token and token_file', yaml: `token: ${secret}\ntoken_file: ${dir}/none\nrelay: 127.0.0.1:1\ntunnels: [5555]\n`, expect: line(`"token_file": give only one of "token", "token_file" in ${dir}/a.yaml`) },
  ]
  for (const c of cases) {
    const file = write(dir, 'a.yaml', c.yaml)
    const r = await runBin('mport-connect', ['--config', file])
    t.equal(r.code, 2, `${c.name}: exit 2`)
    t.equal(r.stderr, `${c.expect}\n`, `${c.name}: exactly the one line`)
    t.equal(r.stdout, '', `${c.name}: nothing on stdout`)
    t.notOk(r.proc.output.includes(secret), `${c.name}: no token in the output`)
  }
})
