/** HTTP and TLS tunnels on the relay's shared ports: routing by Host and SNI, pages, access control. */
import t from 'tap'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import { createHash, randomBytes } from 'node:crypto'
import { generateSelfSigned, type Relay, type TunnelSpec } from '../../src/index.js'
import { makeClient, startRelay, tcpSpec, connectTo } from '../helpers/tunnel.js'
import { waitFor, withTimeout } from '../helpers/wait.js'

const DOMAIN = 'tunnels.test'
const wildcard = await generateSelfSigned([`*.${DOMAIN}`, DOMAIN])

async function startWebRelay (opts: Record<string, unknown> = {}): Promise<Relay> {
  return await startRelay({ domain: DOMAIN, httpPort: 0, httpsPort: 0, httpsCert: wildcard.cert, httpsKey: wildcard.key, ...opts })
}

/** A local web app: answers with its name and the forwarding headers it saw. */
async function startApp (name: string, handler?: http.RequestListener): Promise<{ port: number, server: http.Server }> {
  const server = http.createServer(handler ?? ((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ name, host: req.headers.host, xff: req.headers['x-forwarded-for'], proto: req.headers['x-forwarded-proto'], xfh: req.headers['x-forwarded-host'] }))
  }))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, server }
}

function httpSpec (port: number, extra: Partial<TunnelSpec> = {}): TunnelSpec {
  return { ...tcpSpec(port), kind: 'http', ...extra }
}

interface Reply { status: number, headers: http.IncomingHttpHeaders, body: Buffer }

function get (port: number, host: string, opts: { path?: string, headers?: Record<string, string>, agent?: http.Agent, method?: string, body?: Buffer } = {}): Promise<Reply> {
  return withTimeout(new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: opts.path ?? '/', method: opts.method ?? 'GET', headers: { host, ...opts.headers }, agent: opts.agent ?? false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  }), { what: `GET http://${host}${opts.path ?? '/'}` })
}

t.test('many names on one port, routed by Host; X-Forwarded-* set by the relay only', async t => {
  const relay = await startWebRelay()
  const a = await startApp('a')
  const b = await startApp('b')
  const client = makeClient(relay, [httpSpec(a.port, { name: 'a', subdomain: 'alpha' }), httpSpec(b.port, { name: 'b' })])
  t.teardown(async () => { await client.close(); await relay.close(100); a.server.close(); b.server.close() })
  const [ta, tb] = await client.start()
  t.equal(ta?.url, `https://alpha.${DOMAIN}:${relay.httpsAddress!.port}`)
  t.match(tb?.url, new RegExp(`^https://[a-z]+-[a-z]+-\\d{4}\\.${DOMAIN.replace('.', '\\.')}:\\d+$`), 'a random readable name')
  const port = relay.httpAddress!.port
  const ra = await get(port, `alpha.${DOMAIN}`, { headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6' } })
  t.equal(ra.status, 200)
  const ja = JSON.parse(ra.body.toString())
  t.equal(ja.name, 'a')
  t.equal(ja.xff, '127.0.0.1', 'the visitor cannot choose X-Forwarded-For')
  t.equal(ja.proto, 'http')
  t.equal(ja.xfh, `alpha.${DOMAIN}`)
  const hostB = new URL(tb!.url!).hostname
  t.equal(JSON.parse((await get(port, hostB)).body.toString()).name, 'b')
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const sockets = new Set<net.Socket>()
  agent.on('free', s => sockets.add(s))
  for (let i = 0; i < 5; i++) t.equal(JSON.parse((await get(port, `alpha.${DOMAIN}`, { agent })).body.toString()).name, 'a')
  t.equal(sockets.size, 1, 'five requests reused one keep-alive connection')
  agent.destroy()
})

t.test('streamed bodies: 100 MiB download and a chunked upload, checksummed', async t => {
  const relay = await startWebRelay()
  const SIZE = 100 * 1024 * 1024
  const app = await startApp('big', (req, res) => {
    if (req.method === 'POST') {
      const h = createHash('sha256')
      let n = 0
      req.on('data', (c: Buffer) => { h.update(c); n += c.length })
      req.on('end', () => res.end(JSON.stringify({ n, sha: h.digest('hex') })))
      return
    }
    // A deterministic 100 MiB body, written with backpressure.
    res.setHeader('content-length', SIZE)
    const block = Buffer.alloc(1024 * 1024, 7)
    let sent = 0
    const pump = (): void => {
      while (sent < SIZE) {
        sent += block.length
        if (!res.write(block)) { res.once('drain', pump); return }
      }
      res.end()
    }
    pump()
  })
  const client = makeClient(relay, [httpSpec(app.port, { subdomain: 'big' })])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close() })
  await client.start()
  const port = relay.httpAddress!.port
  const down = await withTimeout(new Promise<{ n: number, sha: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, headers: { host: `big.${DOMAIN}` }, agent: false }, res => {
      const h = createHash('sha256')
      let n = 0
      res.on('data', (c: Buffer) => { h.update(c); n += c.length })
      res.on('end', () => resolve({ n, sha: h.digest('hex') }))
    }).on('error', reject)
  }), { what: '100 MiB download', timeoutMs: 120_000 })
  t.equal(down.n, SIZE)
  t.equal(down.sha, createHash('sha256').update(Buffer.alloc(SIZE, 7)).digest('hex'))
  const upload = randomBytes(8 * 1024 * 1024)
  const up = await withTimeout(new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', headers: { host: `big.${DOMAIN}`, 'transfer-encoding': 'chunked' }, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    for (let i = 0; i < upload.length; i += 100_000) req.write(upload.subarray(i, i + 100_000))
    req.end()
  }), { what: 'chunked upload', timeoutMs: 60_000 })
  t.same(JSON.parse(up.body.toString()), { n: upload.length, sha: createHash('sha256').update(upload).digest('hex') })
})

t.test('Upgrade (WebSocket-style): raw bytes flow both ways after 101', async t => {
  const relay = await startWebRelay()
  const app = await startApp('ws')
  app.server.on('upgrade', (_req, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    socket.pipe(socket)
  })
  const client = makeClient(relay, [httpSpec(app.port, { subdomain: 'ws' })])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close() })
  await client.start()
  const echoed = await withTimeout(new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: relay.httpAddress!.port, headers: { host: `ws.${DOMAIN}`, connection: 'Upgrade', upgrade: 'websocket' }, agent: false })
    req.on('upgrade', (_res, socket) => {
      let got = ''
      socket.on('data', (c: Buffer) => { got += c.toString(); if (got.length >= 11) { socket.destroy(); resolve(got) } })
      socket.write('hello world')
    })
    req.on('error', reject)
    req.end()
  }), { what: 'upgrade echo' })
  t.equal(echoed, 'hello world')
})

t.test('basic auth and IP filters, allowing and refusing', async t => {
  const relay = await startWebRelay()
  const app = await startApp('private')
  const echo = net.createServer(s => s.pipe(s))
  await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve))
  const client = makeClient(relay, [
    httpSpec(app.port, { name: 'auth', subdomain: 'locked', basicAuth: 'alice:s3cret' }),
    httpSpec(app.port, { name: 'lan', subdomain: 'lan', allowIp: ['10.0.0.0/8'] }),
    httpSpec(app.port, { name: 'me', subdomain: 'me', allowIp: ['127.0.0.1/32'] }),
    tcpSpec((echo.address() as net.AddressInfo).port, { name: 'adb', allowIp: ['192.168.0.0/16'] }),
  ])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close(); echo.close() })
  const refusedOnRelay: Array<{ tunnel: string, code: string }> = []
  relay.on('visitor-refused', (c, err) => refusedOnRelay.push({ tunnel: c.tunnel.name, code: err.code }))
  const refusedOnClient: Array<{ tunnel: string, code: string, count: number }> = []
  client.on('visitor-refused', (s, err, count) => refusedOnClient.push({ tunnel: s.name, code: err.code, count }))
  const tunnels = await client.start()
  const port = relay.httpAddress!.port
  const denied = await get(port, `locked.${DOMAIN}`)
  t.equal(denied.status, 401)
  t.match(denied.headers['www-authenticate'], /^Basic realm=/)
  t.equal((await get(port, `locked.${DOMAIN}`, { headers: { authorization: 'Basic ' + Buffer.from('alice:wrong').toString('base64') } })).status, 401)
  t.equal((await get(port, `locked.${DOMAIN}`, { headers: { authorization: 'Basic ' + Buffer.from('alice:s3cret').toString('base64') } })).status, 200)
  t.equal((await get(port, `lan.${DOMAIN}`)).status, 403, 'loopback is not in 10.0.0.0/8')
  t.equal((await get(port, `me.${DOMAIN}`)).status, 200, 'loopback allowed')
  const adb = tunnels.find(x => x.name === 'adb')!
  const outcome = await withTimeout(new Promise<string>(resolve => {
    const s = net.connect(adb.remotePort!, '127.0.0.1', () => s.write('x'))
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
    s.on('end', () => resolve('end'))
    s.on('data', () => resolve('data'))
  }), { what: 'filtered TCP visitor to be refused' })
  t.equal(outcome, 'ECONNRESET', 'a TCP tunnel refuses filtered visitors with a reset')
  // Issue 14: filtered visitors are reported on the relay and to the client (once per tunnel and code per interval).
  t.equal((await get(port, `lan.${DOMAIN}`)).status, 403, 'a second filtered http visitor')
  t.same(refusedOnRelay, [{ tunnel: 'lan', code: 'MPORT_ERR_VISITOR_FILTERED' }, { tunnel: 'adb', code: 'MPORT_ERR_VISITOR_FILTERED' }, { tunnel: 'lan', code: 'MPORT_ERR_VISITOR_FILTERED' }], 'the relay reports every filtered visitor, http and tcp')
  await waitFor(() => refusedOnClient.length >= 2, { what: 'the client\'s refused notices' })
  t.same(refusedOnClient, [{ tunnel: 'lan', code: 'MPORT_ERR_VISITOR_FILTERED', count: 1 }, { tunnel: 'adb', code: 'MPORT_ERR_VISITOR_FILTERED', count: 1 }], 'the client hears once per tunnel and code within the interval')
})

t.test('pages for visitors: unknown name, offline tunnel, refusing service, bad requests, slow headers', async t => {
  const relay = await startWebRelay({ headersTimeout: 300, leaseGrace: 60_000 })
  const dead = net.createServer()
  await new Promise<void>(resolve => dead.listen(0, '127.0.0.1', resolve))
  const deadPort = (dead.address() as net.AddressInfo).port
  await new Promise(resolve => dead.close(resolve))
  const app = await startApp('app')
  const client = makeClient(relay, [httpSpec(deadPort, { name: 'down', subdomain: 'down' }), httpSpec(app.port, { name: 'app', subdomain: 'shop' })], { reconnect: false })
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close() })
  await client.start()
  const port = relay.httpAddress!.port
  const unknown = await get(port, `nobody.${DOMAIN}`, { headers: { accept: 'text/html' } })
  t.equal(unknown.status, 404)
  t.match(unknown.headers['content-type'], /text\/html/)
  const plain = await get(port, `nobody.${DOMAIN}`, { headers: { accept: 'text/plain' } })
  t.match(plain.headers['content-type'], /text\/plain/)
  t.equal((await get(port, `down.${DOMAIN}`)).status, 502, 'local service refusing')
  t.equal((await get(port, 'bad_host!')).status, 400, 'invalid Host')
  t.equal((await get(port, `shop.${DOMAIN}`, { headers: { 'x-big': 'x'.repeat(40 * 1024) } })).status, 431, 'oversized headers')
  const slow = await connectTo(port)
  slow.write('GET / HTTP/1.1\r\nHost: app.')
  const slowReply = await withTimeout(new Promise<string>(resolve => { let r = ''; slow.on('data', (c: Buffer) => { r += c.toString() }); slow.on('end', () => resolve(r)); slow.on('error', () => resolve(r)) }), { what: 'slow-headers visitor to get its answer' })
  t.match(slowReply, /^HTTP\/1\.1 408 /)
  t.equal((await get(port, `shop.${DOMAIN}`)).status, 200, 'other tunnels keep serving')
  await client.close()
  await waitFor(async () => (await get(port, `shop.${DOMAIN}`)).status === 503, { what: 'offline tunnel to answer 503' })
  const offline = await get(port, `shop.${DOMAIN}`)
  t.equal(offline.headers['retry-after'], '5')
})

t.test('HTTPS: terminated with the relay certificate for http tunnels, passed through for tls tunnels', async t => {
  const relay = await startWebRelay()
  const app = await startApp('secure-app')
  const local = await generateSelfSigned([`secure.${DOMAIN}`])
  const tlsService = tls.createServer({ cert: local.cert, key: local.key }, s => s.end('end-to-end'))
  await new Promise<void>(resolve => tlsService.listen(0, '127.0.0.1', resolve))
  const client = makeClient(relay, [
    httpSpec(app.port, { name: 'web', subdomain: 'web' }),
    { ...tcpSpec((tlsService.address() as net.AddressInfo).port), name: 'secure', kind: 'tls', subdomain: 'secure' },
  ])
  t.teardown(async () => { await client.close(); await relay.close(100); app.server.close(); tlsService.close() })
  const [web, secure] = await client.start()
  t.equal(secure?.url, `tls://secure.${DOMAIN}:${relay.httpsAddress!.port}`)
  t.equal(web?.url, `https://web.${DOMAIN}:${relay.httpsAddress!.port}`)
  const port = relay.httpsAddress!.port
  const body = await withTimeout(new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, servername: `web.${DOMAIN}`, headers: { host: `web.${DOMAIN}` }, ca: wildcard.cert, agent: false }, res => {
      let b = ''
      res.on('data', (c: Buffer) => { b += c.toString() })
      res.on('end', () => resolve(b))
    }).on('error', reject)
  }), { what: 'HTTPS request through the relay' })
  t.equal(JSON.parse(body).proto, 'https', 'X-Forwarded-Proto: https')
  const e2e = await withTimeout(new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: `secure.${DOMAIN}`, ca: local.cert }, () => {
      let b = ''
      s.on('data', (c: Buffer) => { b += c.toString() })
      s.on('end', () => resolve(b))
    })
    s.on('error', reject)
  }), { what: 'passthrough TLS to the local service' })
  t.equal(e2e, 'end-to-end', 'the visitor verified the local service\'s own certificate')
})

t.test('names: taken by another client, invalid, reserved; held across reconnects', async t => {
  const relay = await startWebRelay()
  const app = await startApp('n')
  const first = makeClient(relay, [httpSpec(app.port, { subdomain: 'mine' })])
  const second = makeClient(relay, [httpSpec(app.port, { name: 'a', subdomain: 'mine' }), httpSpec(app.port, { name: 'b', subdomain: 'Bad_Name' }), httpSpec(app.port, { name: 'c', subdomain: 'admin' })])
  t.teardown(async () => { await first.close(); await second.close(); await relay.close(100); app.server.close() })
  await first.start()
  const tunnels = await second.start()
  t.equal(tunnels[0]?.error?.code, 'MPORT_ERR_NAME_TAKEN')
  t.equal(tunnels[1]?.error?.code, 'MPORT_ERR_INVALID_HOSTNAME')
  t.equal(tunnels[2]?.error?.code, 'MPORT_ERR_NAME_RESERVED')
  // The first client goes away: its lease keeps the name through the grace period.
  await first.close()
  const third = makeClient(relay, [httpSpec(app.port, { subdomain: 'mine' })])
  const [again] = await third.start()
  t.equal(again?.error?.code, 'MPORT_ERR_NAME_TAKEN', 'still held for the client that left')
  await third.close()
})

t.test('a real WebSocket client and server through an http tunnel', async t => {
  const { WebSocketServer, WebSocket } = await import('ws')
  const relay = await startWebRelay()
  const app = await startApp('ws-real')
  const wss = new WebSocketServer({ server: app.server })
  wss.on('connection', ws => ws.on('message', (m, binary) => ws.send(m, { binary })))
  const client = makeClient(relay, [httpSpec(app.port, { subdomain: 'chat' })])
  t.teardown(async () => { await client.close(); await relay.close(100); wss.close(); app.server.close() })
  await client.start()
  const ws = new WebSocket(`ws://127.0.0.1:${relay.httpAddress!.port}/`, { headers: { host: `chat.${DOMAIN}` } })
  const payload = randomBytes(200_000)
  const echoed = await withTimeout(new Promise<Buffer>((resolve, reject) => {
    ws.on('open', () => ws.send(payload))
    ws.on('message', data => resolve(data as Buffer))
    ws.on('error', reject)
  }), { what: 'WebSocket echo' })
  t.ok(echoed.equals(payload), '200 kB binary message echoed intact')
  ws.close()
})

t.test('PROXY protocol v1 and v2 tell the local service who the visitor is', async t => {
  const relay = await startRelay()
  const heads: Buffer[] = []
  const local = net.createServer(s => { s.once('data', (c: Buffer) => { heads.push(c); s.end() }) })
  await new Promise<void>(resolve => local.listen(0, '127.0.0.1', resolve))
  const lport = (local.address() as net.AddressInfo).port
  const client = makeClient(relay, [tcpSpec(lport, { name: 'v1', proxyProtocol: 1 }), tcpSpec(lport, { name: 'v2', proxyProtocol: 2 })])
  t.teardown(async () => { await client.close(); await relay.close(100); local.close() })
  const [v1, v2] = await client.start()
  const visit = async (port: number): Promise<number> => {
    const s = await connectTo(port)
    const mine = s.localPort!
    s.write('hello')
    await withTimeout(new Promise(resolve => { s.on('end', resolve); s.on('close', resolve); s.on('error', resolve); s.resume() }), { what: 'local service to answer' })
    s.destroy()
    return mine
  }
  const p1 = await visit(v1!.remotePort!)
  await waitFor(() => heads.length === 1, { what: 'the v1 header' })
  t.match(heads[0]!.toString('latin1'), new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 ${p1} ${v1!.remotePort}\\r\\n`))
  const p2 = await visit(v2!.remotePort!)
  await waitFor(() => heads.length === 2, { what: 'the v2 header' })
  const h2 = heads[1]!
  t.equal(h2.subarray(0, 12).toString('hex'), '0d0a0d0a000d0a515549540a', 'v2 signature')
  t.equal(h2[13], 0x11, 'TCP over IPv4')
  t.equal(h2.readUInt16BE(24), p2, 'source port is the visitor\'s')
  t.equal(h2.readUInt16BE(26), v2!.remotePort, 'destination port is the public port')
})
