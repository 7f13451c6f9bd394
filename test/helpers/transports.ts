/**
 * The transport matrix the session tests run over (hashicorp yamux testConnTypes): an
 * in-memory pipe, TCP and TLS on 127.0.0.1 port 0, and "reversed" variants where the client
 * session lives on the accepted socket instead of the connecting one.
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { duplexPair, type DuplexPairOptions } from './duplex-pair.js'
import { withTimeout } from './wait.js'

export interface Connected {
  /** Hosts the client Session (odd stream ids). */
  client: Duplex
  /** Hosts the server Session (even stream ids). */
  server: Duplex
  /** Destroys both ends and any listener; idempotent. */
  close (): Promise<void>
}

export interface TransportCase {
  name: string
  connect (): Promise<Connected>
}

const fixtures = new URL('../fixtures/', import.meta.url)
/** The self-signed localhost certificate and key in test/fixtures (CN=localhost, SAN localhost, 127.0.0.1, ::1). */
export const tlsFixture = {
  cert: readFileSync(new URL('cert.pem', fixtures)),
  key: readFileSync(new URL('key.pem', fixtures)),
}

const CONNECT_TIMEOUT_MS = 10_000

/** An in-memory pair (see duplex-pair.ts for the options). */
export function pipeTransport (opts: DuplexPairOptions = {}): TransportCase {
  return {
    name: 'pipe',
    async connect () {
      const [client, server] = duplexPair(opts)
      return { client, server, close: async () => { await destroyAll([client, server]) } }
    },
  }
}

/** TCP on loopback; `reversed` puts the client session on the accepted socket. */
export function tcpTransport (reversed = false): TransportCase {
  return {
    name: reversed ? 'tcp-reversed' : 'tcp',
    async connect () {
      const server = net.createServer()
      const accepted = new Promise<net.Socket>(resolve => server.once('connection', resolve))
      await listen(server)
      const { port } = server.address() as net.AddressInfo
      const dialed = net.connect({ host: '127.0.0.1', port })
      const connected = new Promise<void>((resolve, reject) => {
        dialed.once('connect', resolve)
        dialed.once('error', reject)
      })
      const [a] = await withTimeout(Promise.all([accepted, connected]), { timeoutMs: CONNECT_TIMEOUT_MS, what: 'a TCP connection on 127.0.0.1' })
      a.setNoDelay(true)
      dialed.setNoDelay(true)
      return pairOf(reversed ? a : dialed, reversed ? dialed : a, server)
    },
  }
}

/** TLS on loopback with the fixture certificate, verified as its own CA. */
export function tlsTransport (reversed = false): TransportCase {
  return {
    name: reversed ? 'tls-reversed' : 'tls',
    async connect () {
      const server = tls.createServer({ cert: tlsFixture.cert, key: tlsFixture.key })
      const accepted = new Promise<tls.TLSSocket>(resolve => server.once('secureConnection', resolve))
      await listen(server)
      const { port } = server.address() as net.AddressInfo
      const dialed = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: tlsFixture.cert, rejectUnauthorized: true })
      const connected = new Promise<void>((resolve, reject) => {
        dialed.once('secureConnect', resolve)
        dialed.once('error', reject)
      })
      const [a] = await withTimeout(Promise.all([accepted, connected]), { timeoutMs: CONNECT_TIMEOUT_MS, what: 'a TLS handshake on 127.0.0.1' })
      a.setNoDelay(true)
      dialed.setNoDelay(true)
      return pairOf(reversed ? a : dialed, reversed ? dialed : a, server)
    },
  }
}

/** pipe, tcp, tcp-reversed, tls, tls-reversed. */
export const transports: readonly TransportCase[] = [
  pipeTransport(),
  tcpTransport(false),
  tcpTransport(true),
  tlsTransport(false),
  tlsTransport(true),
]

function listen (server: net.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function pairOf (client: net.Socket, server: net.Socket, listener: net.Server): Connected {
  // Errors after a test is done (ECONNRESET when one side is destroyed) are the sessions' business;
  // the sockets must not crash the process when no session is attached any more.
  client.on('error', () => {})
  server.on('error', () => {})
  let closing: Promise<void> | undefined
  return {
    client,
    server,
    close () {
      closing ??= (async () => {
        const serverClosed = new Promise<void>(resolve => listener.close(() => resolve()))
        await destroyAll([client, server])
        await withTimeout(serverClosed, { what: 'the test listener to close' })
      })()
      return closing
    },
  }
}

async function destroyAll (sockets: Duplex[]): Promise<void> {
  await withTimeout(Promise.all(sockets.map(s => new Promise<void>(resolve => {
    if (s.closed) return resolve()
    s.once('close', () => resolve())
    s.destroy()
  }))), { what: 'test sockets to close' })
}
