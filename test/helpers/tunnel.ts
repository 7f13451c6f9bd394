/**
 * Tunnel fixtures: a relay and clients through the public API on 127.0.0.1 port 0, and the
 * local services tunnels expose (echo, sink).
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { Client, Relay, StaticTokens, fingerprint, type ClientOptions, type RelayOptions, type TunnelSpec } from '../../src/index.js'
import { withTimeout } from './wait.js'

export const cert = readFileSync(fileURLToPath(new URL('../fixtures/cert.pem', import.meta.url)), 'utf8')
export const key = readFileSync(fileURLToPath(new URL('../fixtures/key.pem', import.meta.url)), 'utf8')
export const certFingerprint = fingerprint(cert)
export const TOKEN = 'mpt_test-token-for-loopback-only'
/** A wide range on loopback keeps random-port collisions with other tests unlikely. */
export const TEST_PORTS = { min: 30000, max: 60999 }

export async function startRelay (opts: Partial<RelayOptions> = {}): Promise<Relay> {
  const relay = new Relay({
    host: '127.0.0.1',
    port: 0,
    bindHost: '127.0.0.1',
    publicHost: '127.0.0.1',
    portRange: TEST_PORTS,
    cert,
    key,
    authenticator: new StaticTokens([{ token: TOKEN }]),
    ...opts,
  })
  relay.on('warning', () => {})
  await relay.listen()
  return relay
}

export function tcpSpec (port: number, extra: Partial<TunnelSpec> = {}): TunnelSpec {
  return { name: `t${port}`, localHost: '127.0.0.1', localPort: port, remotePort: 0, ...extra }
}

export function makeClient (relay: Relay, tunnels: TunnelSpec[], opts: Partial<ClientOptions> = {}): Client {
  const client = new Client({
    relay: `127.0.0.1:${relay.address.port}`,
    token: TOKEN,
    tunnels,
    fingerprint: certFingerprint,
    backoff: { initial: 50, max: 500 },
    ...opts,
  })
  client.on('error', () => {})
  return client
}

/** An echo server; `sockets` tracks open connections. */
export async function startEcho (): Promise<{ server: net.Server, port: number, sockets: Set<net.Socket>, close (): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, s => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.pipe(s)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }),
  }
}

export function connectTo (port: number): Promise<net.Socket> {
  return withTimeout(new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true })
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  }), { what: `TCP connect to 127.0.0.1:${port}` })
}

/** Writes `data`, half-closes, and collects everything the other side sends until it ends. */
export function roundTrip (socket: net.Socket, data: Buffer): Promise<Buffer> {
  return withTimeout(new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.on('error', reject)
    socket.end(data)
  }), { what: `echo of ${data.length} bytes`, timeoutMs: 60_000 })
}

/** Resolves true when the port refuses connections (nothing listening). */
export function isClosed (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', () => resolve(true))
  })
}
