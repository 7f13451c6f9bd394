/**
 * The contestants of the HTTP bench. Each `start(originPort)` brings its processes up on
 * loopback and resolves with where the load generator sends its GETs, the pids of its own
 * processes (never the origin's or the generator's) and a `stop()` that kills them.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { LineReader, killChild, spawnLimited } from '../tunnel/procs.js'
import { mportBins } from '../tunnel/contestants.js'

export interface Running {
  port: number
  pids: () => number[]
  stop: () => Promise<void>
}

export interface Contestant {
  key: string
  name: string
  start: (originPort: number) => Promise<Running>
}

const START_TIMEOUT = 20_000
/** The name mport's tunnel gets under the relay's domain; every request carries it as Host. */
export const DOMAIN = 'bench.test'
export const HOST = `web.${DOMAIN}`

/** A TypeScript file of this directory as a Node child (through tsx); every child is killed on exit. */
export function spawnHere (file: string, args: string[], opts: Parameters<typeof spawnLimited>[2] = {}): ChildProcess {
  return spawnLimited(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(file, import.meta.url)), ...args], opts)
}

const jsonOf = <T>(line: string): T => JSON.parse(line.slice(line.indexOf('{'))) as T
const isJsonWith = (key: string) => (l: string): boolean => {
  if (!l.trimStart().startsWith('{')) return false
  try { return key in (JSON.parse(l) as object) } catch { return false }
}

/** A child of this directory that prints {"port": N}. */
export async function portChild (file: string, args: string[], label: string): Promise<{ child: ChildProcess, port: number }> {
  const child = spawnHere(file, args)
  const out = new LineReader(child, label)
  try {
    return { child, port: jsonOf<{ port: number }>(await out.waitLine(isJsonWith('port'), START_TIMEOUT, 'its port')).port }
  } catch (err) {
    await killChild(child)
    throw err
  }
}

export const direct: Contestant = {
  key: 'direct',
  name: 'direct (no proxy)',
  async start (originPort) {
    return { port: originPort, pids: () => [], stop: async () => {} }
  },
}

export const proxy: Contestant = {
  key: 'proxy',
  name: 'Node http reverse proxy (keep-alive agent, no tunnel)',
  async start (originPort) {
    const p = await portChild('./proxy.ts', [String(originPort)], 'reverse proxy')
    return { port: p.port, pids: () => [p.child.pid as number], stop: () => killChild(p.child) }
  },
}

/** Extra node flags for mport's processes (BENCH_MPORT_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
const mportFlags = (): string[] => (process.env.BENCH_MPORT_NODE_FLAGS ?? '').split(' ').filter(Boolean)

export const mport: Contestant = {
  key: 'mport',
  name: 'mport http tunnel (relay HTTP port → TLS mux → connect)',
  async start (originPort) {
    const bins = mportBins()
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'mport-bench-http-'))
    const home = path.join(tmp, 'home')
    mkdirSync(home)
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') }
    const relay = spawnLimited(bins.cmd, [...mportFlags(), ...bins.pre, bins.relay, '--host', '127.0.0.1', '--port', '0', '--bind-host', '127.0.0.1',
      '--public-host', '127.0.0.1', '--data-dir', path.join(tmp, 'data'), '--json', '--domain', DOMAIN, '--http-port', '0'], { env })
    const relayOut = new LineReader(relay, 'mport-relay')
    let client: ChildProcess | undefined
    const stop = async (): Promise<void> => {
      // SIGTERM lets both flush a --cpu-prof profile; killChild escalates to SIGKILL after 2 s.
      await Promise.all((client === undefined ? [relay] : [client, relay]).map(c => killChild(c, 5000)))
      rmSync(tmp, { recursive: true, force: true })
    }
    try {
      const listening = jsonOf<{ port: number, fingerprint: string, httpPort?: number }>(
        await relayOut.waitLine(l => l.includes('"event":"listening"'), START_TIMEOUT, 'listening'))
      if (listening.httpPort === undefined) throw new Error('the relay\'s listening event has no httpPort (bin/mport-relay.ts too old?)')
      const token = readFileSync(path.join(tmp, 'data/token'), 'utf8').trim()
      client = spawnLimited(bins.cmd, [...mportFlags(), ...bins.pre, bins.connect, 'http', String(originPort), '--subdomain', 'web',
        '--relay', `127.0.0.1:${listening.port}`, '--token', token, '--fingerprint', listening.fingerprint, '--json'], { env })
      const clientOut = new LineReader(client, 'mport-connect')
      const tunnel = jsonOf<{ url?: string }>(await clientOut.waitLine(l => l.includes('"event":"tunnel"'), START_TIMEOUT, 'tunnel'))
      if (tunnel.url?.includes(HOST) !== true) throw new Error(`tunnel came up as ${tunnel.url ?? '?'}, not ${HOST}`)
      const c = client
      return { port: listening.httpPort, pids: () => [relay.pid as number, c.pid as number], stop }
    } catch (err) {
      await stop()
      throw err
    }
  },
}
