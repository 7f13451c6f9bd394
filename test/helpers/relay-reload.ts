/**
 * What the relay-reload tests share: a relay started from a JSON config file (JSON log lines),
 * SIGHUP after rewriting the file, a local source that pauses mid-stream, a visitor, a tcp
 * client, and API calls.
 */
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type { Test } from 'tap'
import { spawnBin, type BinProcess } from './spawn.js'
import { waitFor } from './wait.js'

export const DOMAIN = 'tunnels.test'

/** Every wait of these tests: generous, for a machine shared by many test runs (a first start makes a certificate). */
export const WAIT_MS = 60_000

/** The relay's config (JSON, rewritten between reloads) on loopback, with JSON log lines. */
export function baseConfig (dir: string): Record<string, unknown> {
  return { host: '127.0.0.1', port: 0, bind_host: '127.0.0.1', public_host: '127.0.0.1', ports: '30000-60999', data_dir: path.join(dir, 'data'), json: true }
}

export function write (file: string, text: string): string {
  writeFileSync(file, text)
  return file
}

export interface RunningRelay { proc: BinProcess, port: number, fingerprint: string, httpPort?: number, config: string }

export async function startRelay (t: Test, dir: string, config: Record<string, unknown>): Promise<RunningRelay> {
  const file = write(path.join(dir, 'relay.json'), JSON.stringify(config, null, 2))
  const proc = spawnBin('mport-relay', ['--config', file])
  t.teardown(() => proc.kill())
  const ev = await proc.waitEvent('listening', undefined, WAIT_MS)
  return {
    proc,
    port: ev.port as number,
    fingerprint: ev.fingerprint as string,
    ...(typeof ev.httpPort === 'number' ? { httpPort: ev.httpPort } : {}),
    config: file,
  }
}

/** Rewrites the config file, sends SIGHUP and returns the relay's answer (`reloaded` or `reload-rejected`). */
export async function sighup (relay: RunningRelay, config: Record<string, unknown> | string): Promise<Record<string, unknown>> {
  write(relay.config, typeof config === 'string' ? config : JSON.stringify(config, null, 2))
  const before = relay.proc.jsonLines().length
  relay.proc.signal('SIGHUP')
  let found: Record<string, unknown> | undefined
  await waitFor(() => {
    found = relay.proc.jsonLines().slice(before).find(o => o.event === 'reloaded' || o.event === 'reload-rejected')
    return found !== undefined
  }, { what: 'the relay\'s reload line', timeoutMs: WAIT_MS, intervalMs: 20 })
  return found!
}

/** A local service that sends `first`, then `rest` once `resume()` is called, then ends. */
export async function pausedSource (first: Buffer, rest: Buffer): Promise<{ port: number, resume (): void, close (): Promise<void> }> {
  let go: () => void = () => {}
  const resumed = new Promise<void>(resolve => { go = resolve })
  const sockets = new Set<net.Socket>()
  const server = net.createServer(s => {
    sockets.add(s)
    s.on('error', () => {})
    s.write(first)
    void resumed.then(() => s.end(rest))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    resume: go,
    close: async () => { for (const s of sockets) s.destroy(); await new Promise(resolve => server.close(resolve)) },
  }
}

/** A visitor reading everything from a public port: `received()` bytes so far, `done` the whole stream. */
export function visitor (port: number): { received (): number, done: Promise<Buffer> } {
  const chunks: Buffer[] = []
  let n = 0
  const socket = net.connect(port, '127.0.0.1')
  const done = new Promise<Buffer>((resolve, reject) => {
    socket.on('data', (c: Buffer) => { chunks.push(c); n += c.length })
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.on('error', reject)
  })
  return { received: () => n, done }
}

/** Starts a client for one tcp tunnel and returns its public port. */
export async function tcpClient (t: Test, relay: RunningRelay, localPort: number, token: string, name = 'src'): Promise<{ proc: BinProcess, publicPort: number }> {
  const proc = spawnBin('mport-connect', [`${name}=${localPort}`, '--relay', `127.0.0.1:${relay.port}`, '--token', token, '--fingerprint', relay.fingerprint, '--no-lease-file'])
  t.teardown(() => proc.kill())
  const line = await proc.waitLine(/^tcp:\/\//, `the tunnel line of ${name}`, WAIT_MS)
  return { proc, publicPort: Number(/^tcp:\/\/127\.0\.0\.1:(\d+) /.exec(line)?.[1]) }
}

export async function api (base: string, method: string, route: string, body?: unknown, bearer?: string): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await fetch(base + route, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  return { status: res.status, json: await res.json() as Record<string, unknown> }
}

/** The API's base URL (the config's api_port, a free port the test picked). */
export function apiBase (config: Record<string, unknown>): string {
  return `http://127.0.0.1:${config.api_port as number}`
}

/** A user with a tunnel token (signed up through the API). */
export async function userToken (base: string, name: string): Promise<string> {
  await api(base, 'POST', '/v1/signup', { name, password: `${name}-password-123` })
  const session = (await api(base, 'POST', '/v1/login', { name, password: `${name}-password-123` })).json.token as string
  return (await api(base, 'POST', '/v1/tokens', { name: 'cli' }, session)).json.token as string
}

