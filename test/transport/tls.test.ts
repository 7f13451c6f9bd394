// The TLS transport over real loopback sockets: every trust mode of connectTls (CA, pinned,
// untrusted, trust on first use, insecure), ALPN enforcement, the server-side handshake
// deadline, dial failures mapped to RelayUnreachableError, the auth channel binding, and a
// listener close() that leaves no socket behind.
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import { MportError } from '../../src/errors.js'
import { fingerprint, generateSelfSigned, type CertificatePair } from '../../src/transport/certs.js'
import { KnownRelays } from '../../src/transport/known-relays.js'
import { connectTcp, formatHostPort, timeoutReason, unreachableReason } from '../../src/transport/tcp.js'
import {
  ALPN_PROTOCOL, connectTls, exportAuthBinding, listenTls, type ListenTlsOptions, type TlsConnection, type TlsListener,
} from '../../src/transport/tls.js'
import { nextEvent, waitFor, withTimeout } from '../helpers/wait.js'

const WAIT_MS = 20_000
const HOST = '127.0.0.1'

const certA = await generateSelfSigned(['relay.test'])
const certB = await generateSelfSigned(['relay.test'])
const fpA = fingerprint(certA.cert)
const fpB = fingerprint(certB.cert)

interface Relay {
  listener: TlsListener
  port: number
  /** Sockets handed to onConnection, in order. */
  accepted: tls.TLSSocket[]
  clientErrors: Error[]
}

/** A listener on 127.0.0.1 port 0 that echoes, closed with the test. */
async function relay (t: Test, pair: CertificatePair = certA, extra: Partial<ListenTlsOptions> = {}): Promise<Relay> {
  const accepted: tls.TLSSocket[] = []
  const clientErrors: Error[] = []
  const listener = await listenTls({ host: HOST, port: 0, ...pair, onClientError: err => clientErrors.push(err), ...extra }, socket => {
    accepted.push(socket)
    socket.pipe(socket)
  })
  t.teardown(() => listener.close())
  return { listener, port: listener.address.port, accepted, clientErrors }
}

/** Closes the client socket with the test. */
function own (t: Test, conn: TlsConnection): TlsConnection {
  t.teardown(() => { conn.socket.destroy() })
  return conn
}

async function echo (socket: tls.TLSSocket, text: string): Promise<string> {
  socket.write(text)
  const [chunk] = await nextEvent<[Buffer]>(socket, 'data', { timeoutMs: WAIT_MS, what: `echo of "${text}"` })
  return chunk.toString()
}

async function tempStore (t: Test): Promise<KnownRelays> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return new KnownRelays(path.join(dir, 'known_relays.json'))
}

/** Resolves once `socket` has closed (bounded). */
async function closed (socket: net.Socket, what: string): Promise<void> {
  if (socket.closed) return
  await nextEvent(socket, 'close', { timeoutMs: WAIT_MS, what })
}

t.test('CA mode: the certificate as ca verifies chain and hostname', async t => {
  const r = await relay(t)
  const conn = own(t, await connectTls({ host: HOST, port: r.port, ca: certA.cert }))
  t.equal(conn.trust, 'ca')
  t.equal(conn.fingerprint, fpA)
  t.equal(conn.socket.alpnProtocol, ALPN_PROTOCOL)
  t.equal(await echo(conn.socket, 'hello'), 'hello')
  t.equal(conn.socket.listenerCount('secureConnect'), 0, 'no connect-phase secureConnect listener left')
  t.equal(conn.socket.listenerCount('error'), 0, 'no connect-phase error listener left')

  const byName = own(t, await connectTls({ host: 'localhost', port: r.port, ca: certA.cert }))
  t.equal(byName.trust, 'ca', 'SAN localhost verifies')
})

t.test('CA mode: a hostname the certificate does not name is not trusted', async t => {
  const r = await relay(t)
  const err = await connectTls({ host: HOST, port: r.port, ca: certA.cert, servername: 'other.test' }).catch((e: unknown) => e)
  t.match(err, { code: 'MPORT_ERR_CERT_UNTRUSTED', fingerprint: fpA })
  t.match((err as Error).message, /does not name this host/)
})

t.test('a known CA with a store: CA wins, the store is left alone', async t => {
  const r = await relay(t)
  const store = await tempStore(t)
  const conn = own(t, await connectTls({ host: HOST, port: r.port, ca: certA.cert, knownRelays: store }))
  t.equal(conn.trust, 'ca')
  t.same(await store.list(), {})
})

t.test('pinned fingerprint: exact match passes in any spelling, another fails', async t => {
  const r = await relay(t)
  const colons = fpA.slice('sha256:'.length).toUpperCase().match(/../g)!.join(':')
  for (const pin of [fpA, colons, fpA.toUpperCase()]) {
    const conn = own(t, await connectTls({ host: HOST, port: r.port, fingerprint: pin }))
    t.equal(conn.trust, 'pinned', `pin ${pin.slice(0, 16)}…`)
    t.equal(conn.fingerprint, fpA)
  }
  const err = await connectTls({ host: HOST, port: r.port, fingerprint: fpB }).catch((e: unknown) => e)
  t.match(err, { code: 'MPORT_ERR_CERT_MISMATCH', expected: fpB, actual: fpA, name: 'CertificateMismatchError' })
  await t.rejects(connectTls({ host: HOST, port: r.port, fingerprint: 'sha256:1234' }), { code: 'MPORT_ERR_INVALID_CONFIG' }, 'malformed pin fails before dialing')
})

t.test('self-signed without pin or store is untrusted and names its fingerprint', async t => {
  const r = await relay(t)
  const err = await connectTls({ host: HOST, port: r.port }).catch((e: unknown) => e)
  t.ok(err instanceof MportError)
  t.match(err, { code: 'MPORT_ERR_CERT_UNTRUSTED', fingerprint: fpA })
  t.match((err as Error).message, /self-signed/)
  t.ok((err as Error).message.includes(fpA), 'the message tells the user what to pin')
  await waitFor(() => r.listener.connections === 0, { timeoutMs: WAIT_MS, what: 'relay to see the refused client go' })
})

t.test('trust on first use: remember, recognise, then refuse a changed certificate', async t => {
  const r = await relay(t)
  const store = await tempStore(t)
  const first = own(t, await connectTls({ host: HOST, port: r.port, knownRelays: store }))
  t.equal(first.trust, 'tofu-new')
  t.equal(await store.get(`${HOST}:${r.port}`), fpA, 'fingerprint recorded under host:port')

  const second = own(t, await connectTls({ host: HOST, port: r.port, knownRelays: store }))
  t.equal(second.trust, 'tofu-known')
  t.equal(await echo(second.socket, 'known'), 'known')

  // The relay at the same address now presents another certificate.
  r.listener.server.setSecureContext({ ...certB, minVersion: 'TLSv1.3' })
  const err = await connectTls({ host: HOST, port: r.port, knownRelays: store }).catch((e: unknown) => e)
  t.match(err, { code: 'MPORT_ERR_CERT_MISMATCH', expected: fpA, actual: fpB })
  t.equal(await store.get(`${HOST}:${r.port}`), fpA, 'the stored fingerprint is not replaced')

  const other = await tempStore(t)
  t.equal((own(t, await connectTls({ host: HOST, port: r.port, knownRelays: other }))).trust, 'tofu-new', 'a fresh store trusts the new one')
})

t.test('insecure accepts any certificate', async t => {
  const r = await relay(t)
  const conn = own(t, await connectTls({ host: HOST, port: r.port, insecure: true }))
  t.equal(conn.trust, 'insecure')
  t.equal(conn.fingerprint, fpA)
  t.equal(await echo(conn.socket, 'x'), 'x')
})

t.test('ALPN: clients without mport/1 are refused, a correct client still connects', async t => {
  const r = await relay(t)
  const wrong = tls.connect({ host: HOST, port: r.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  const none = tls.connect({ host: HOST, port: r.port, rejectUnauthorized: false })
  let wrongSecured = false
  wrong.on('secureConnect', () => { wrongSecured = true })
  const wrongError = nextEvent<[Error & { code?: string }]>(wrong, 'error', { timeoutMs: WAIT_MS, what: 'http/1.1 client to fail' })
  none.on('error', () => {})

  const good = own(t, await connectTls({ host: HOST, port: r.port, insecure: true }))
  t.equal(await echo(good.socket, 'ok'), 'ok')

  const [err] = await wrongError
  t.equal(err.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
  t.notOk(wrongSecured, 'handshake never completed')
  await closed(wrong, 'http/1.1 client to close')
  await closed(none, 'client without ALPN to be closed by the relay')
  t.equal(r.accepted.length, 1, 'only the mport/1 client was handed over')
  await waitFor(() => r.clientErrors.length === 2, { timeoutMs: WAIT_MS, what: 'two client errors reported' })
})

t.test('a server that does not negotiate mport/1 is rejected by the dialer', async t => {
  const server = tls.createServer({ ...certA })
  server.on('secureConnection', s => s.on('error', () => {}))
  await new Promise<void>(resolve => server.listen(0, HOST, resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const { port } = server.address() as net.AddressInfo
  const err = await connectTls({ host: HOST, port, insecure: true }).catch((e: unknown) => e)
  t.match(err, { code: 'MPORT_ERR_RELAY_UNREACHABLE' })
  t.match((err as Error).message, /did not negotiate ALPN "mport\/1"/)
})

t.test('a silent client is dropped after the handshake timeout; others connect meanwhile', async t => {
  const r = await relay(t, certA, { handshakeTimeout: 300 })
  const silent = net.connect({ host: HOST, port: r.port })
  silent.on('error', () => {})
  await nextEvent(silent, 'connect', { timeoutMs: WAIT_MS, what: 'silent client to connect' })

  const good = own(t, await connectTls({ host: HOST, port: r.port, insecure: true }))
  t.equal(await echo(good.socket, 'meanwhile'), 'meanwhile')

  await closed(silent, 'relay to drop the silent client')
  await waitFor(() => r.clientErrors.length >= 1, { timeoutMs: WAIT_MS, what: 'handshake timeout reported' })
  t.match(r.clientErrors[0], { code: 'MPORT_ERR_HANDSHAKE_TIMEOUT', timeoutMs: 300 })
  t.equal(r.accepted.length, 1)
  t.equal(await echo(good.socket, 'still up'), 'still up', 'the good client is unaffected')
})

t.test('connection refused maps to RelayUnreachableError', async t => {
  const probe = net.createServer()
  await new Promise<void>(resolve => probe.listen(0, HOST, resolve))
  const { port } = probe.address() as net.AddressInfo
  await new Promise(resolve => probe.close(resolve))
  const err = await connectTls({ host: HOST, port, insecure: true }).catch((e: unknown) => e)
  t.match(err, { code: 'MPORT_ERR_RELAY_UNREACHABLE', name: 'RelayUnreachableError', address: `${HOST}:${port}` })
  t.equal((err as Error).message, `cannot reach relay ${HOST}:${port}: connection refused`)
  t.match((err as Error).cause, { code: 'ECONNREFUSED' })
})

t.test('a server that never answers the handshake times out', async t => {
  const sockets = new Set<net.Socket>()
  const mute = net.createServer(s => { sockets.add(s); s.on('error', () => {}) })
  await new Promise<void>(resolve => mute.listen(0, HOST, resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); return new Promise(resolve => mute.close(resolve)) })
  const { port } = mute.address() as net.AddressInfo
  const err = await withTimeout(connectTls({ host: HOST, port, insecure: true, timeout: 300 }).catch((e: unknown) => e), { timeoutMs: WAIT_MS, what: 'connectTls to time out' })
  t.match(err, { code: 'MPORT_ERR_RELAY_UNREACHABLE' })
  t.match((err as Error).message, /: timed out after 0\.3 s$/)
})

t.test('a plain TCP server is reported as not speaking TLS', async t => {
  // resume(): a socket nobody reads never sees the client's FIN and would keep close() waiting.
  const plain = net.createServer(s => { s.on('error', () => {}); s.resume(); s.end('HTTP/1.1 400 Bad Request\r\n\r\n') })
  await new Promise<void>(resolve => plain.listen(0, HOST, resolve))
  t.teardown(() => new Promise(resolve => plain.close(resolve)))
  const { port } = plain.address() as net.AddressInfo
  const err = await connectTls({ host: HOST, port, insecure: true }).catch((e: unknown) => e)
  t.match(err, { code: 'MPORT_ERR_RELAY_UNREACHABLE' })
  t.match((err as Error).message, /TLS handshake failed|closed during the TLS handshake/)
  t.notMatch((err as Error).message, /\n/, 'one line')
})

t.test('channel binding: both ends export the same bytes, each connection its own', async t => {
  const r = await relay(t)
  const a = own(t, await connectTls({ host: HOST, port: r.port, insecure: true }))
  const b = own(t, await connectTls({ host: HOST, port: r.port, insecure: true }))
  await waitFor(() => r.accepted.length === 2, { timeoutMs: WAIT_MS, what: 'both connections accepted' })
  // Accepted order can differ from dial order; match by the client's local port.
  const serverSide = (c: TlsConnection): tls.TLSSocket => {
    const s = r.accepted.find(x => x.remotePort === c.socket.localPort)
    if (s === undefined) throw new Error('accepted socket not found')
    return s
  }
  const bindA = exportAuthBinding(a.socket)
  t.equal(bindA.length, 32)
  t.same(exportAuthBinding(serverSide(a)), bindA, 'client and relay agree')
  t.same(exportAuthBinding(serverSide(b)), exportAuthBinding(b.socket))
  t.notSame(exportAuthBinding(b.socket), bindA, 'another connection binds differently')
  t.equal(a.socket.getProtocol(), 'TLSv1.3')
})

t.test('close() stops accepting and destroys every socket it accepted', async t => {
  const r = await relay(t)
  const clients = [
    own(t, await connectTls({ host: HOST, port: r.port, insecure: true })),
    own(t, await connectTls({ host: HOST, port: r.port, insecure: true })),
  ]
  const pending = net.connect({ host: HOST, port: r.port })
  pending.on('error', () => {})
  t.teardown(() => { pending.destroy() })
  await nextEvent(pending, 'connect', { timeoutMs: WAIT_MS, what: 'handshaking client to connect' })
  await waitFor(() => r.accepted.length === 2 && r.listener.connections === 3, { timeoutMs: WAIT_MS, what: '2 handed-over + 1 handshaking connection' })

  await withTimeout(r.listener.close(), { timeoutMs: WAIT_MS, what: 'listener close' })
  t.equal(r.listener.connections, 0, 'no socket tracked')
  const count = await new Promise<number>((resolve, reject) => r.listener.server.getConnections((err, n) => err ? reject(err) : resolve(n)))
  t.equal(count, 0, 'server counts no connection')
  t.ok(r.accepted.every(s => s.destroyed), 'accepted sockets destroyed')
  for (const [i, c] of clients.entries()) await closed(c.socket, `client ${i} to see the close`)
  await closed(pending, 'handshaking client to see the close')
  await t.rejects(connectTls({ host: HOST, port: r.port, insecure: true }), { code: 'MPORT_ERR_RELAY_UNREACHABLE' }, 'nothing listens any more')
  await r.listener.close() // idempotent
})

t.test('listenTls reports a port in use and rejects a bad handshake timeout', async t => {
  const r = await relay(t)
  await t.rejects(listenTls({ host: HOST, port: r.port, ...certA }, () => {}), { code: 'EADDRINUSE' })
  await t.rejects(listenTls({ host: HOST, port: 0, ...certA, handshakeTimeout: 0 }, () => {}), { code: 'MPORT_ERR_INVALID_CONFIG', key: 'handshakeTimeout' })
})

t.test('an onConnection that throws costs that connection only', async t => {
  const errors: Error[] = []
  let calls = 0
  const listener = await listenTls({ host: HOST, port: 0, ...certA, onError: err => errors.push(err) }, socket => {
    if (++calls === 1) throw new Error('boom')
    socket.pipe(socket)
  })
  t.teardown(() => listener.close())
  const port = listener.address.port
  const first = own(t, await connectTls({ host: HOST, port, insecure: true }))
  first.socket.on('error', () => {})
  await closed(first.socket, 'first client to be dropped')
  t.match(errors, [{ message: 'boom' }])
  const second = own(t, await connectTls({ host: HOST, port, insecure: true }))
  t.equal(await echo(second.socket, 'two'), 'two')
})

t.test('accept errors (EMFILE) are reported and the listener keeps serving', async t => {
  const errors: Error[] = []
  const r = await relay(t, certA, { onError: err => errors.push(err) })
  // What net.Server emits when accept(2) fails; a real EMFILE needs a lowered fd limit.
  const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' })
  r.listener.server.emit('error', emfile)
  t.same(errors, [emfile])
  t.ok(r.listener.server.listening, 'still listening')
  const conn = own(t, await connectTls({ host: HOST, port: r.port, insecure: true }))
  t.equal(await echo(conn.socket, 'after EMFILE'), 'after EMFILE')
})

t.test('connectTcp: tuned socket on success, RelayUnreachableError on refusal', async t => {
  const server = net.createServer(s => { s.on('error', () => {}); s.pipe(s) })
  await new Promise<void>(resolve => server.listen(0, HOST, resolve))
  const { port } = server.address() as net.AddressInfo
  const socket = await connectTcp({ host: HOST, port, timeout: 5_000 })
  t.equal(socket.listenerCount('error'), 0, 'no listener left behind')
  t.equal(socket.listenerCount('connect'), 0)
  socket.write('tcp')
  const [chunk] = await nextEvent<[Buffer]>(socket, 'data', { timeoutMs: WAIT_MS, what: 'tcp echo' })
  t.equal(chunk.toString(), 'tcp')
  socket.destroy()
  await new Promise(resolve => server.close(resolve))
  const err = await connectTcp({ host: HOST, port }).catch((e: unknown) => e)
  t.match(err, { code: 'MPORT_ERR_RELAY_UNREACHABLE', message: `cannot reach relay ${HOST}:${port}: connection refused` })
})

t.test('dial failures read as one line', async t => {
  const sys = (code: string): Error => Object.assign(new Error(`${code} something`), { code })
  t.equal(unreachableReason(sys('ECONNREFUSED')), 'connection refused')
  t.equal(unreachableReason(sys('ENOTFOUND')), 'host not found')
  t.equal(unreachableReason(sys('EHOSTUNREACH')), 'host unreachable')
  t.equal(unreachableReason(sys('ENETUNREACH')), 'network unreachable')
  t.equal(unreachableReason(sys('ETIMEDOUT')), 'connection timed out')
  t.equal(unreachableReason(new Error('first line\nsecond line')), 'first line')
  t.equal(timeoutReason(10_000), 'timed out after 10 s')
  t.equal(timeoutReason(300), 'timed out after 0.3 s')
  t.equal(formatHostPort('::1', 7835), '[::1]:7835')
  t.equal(formatHostPort('relay.test', 7835), 'relay.test:7835')
})

t.test('reuseReadBuffer: the bytes come through input, the socket emits no data events', async t => {
  const r = await relay(t)
  const conn = own(t, await connectTls({ host: HOST, port: r.port, insecure: true, reuseReadBuffer: true }))
  t.ok(conn.input !== undefined, 'an input is returned')
  let dataEvents = 0
  conn.socket.on('data', () => { dataEvents++ })
  const got: Buffer[] = []
  conn.input!.attach(chunk => got.push(Buffer.from(chunk)))
  const text = 'through one reused buffer '.repeat(4000) // about 100 KiB: several TLS records
  conn.socket.write(text)
  await waitFor(() => got.reduce((n, c) => n + c.length, 0) >= text.length, { timeoutMs: WAIT_MS, what: 'the echo' })
  t.equal(Buffer.concat(got).toString(), text, 'the echo, intact')
  t.equal(dataEvents, 0)
  const plain = own(t, await connectTls({ host: HOST, port: r.port, insecure: true }))
  t.equal(plain.input, undefined, 'without the option, no input: the socket reads as usual')
})
