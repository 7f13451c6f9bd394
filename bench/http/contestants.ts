/**
 * The contestants of the HTTP bench. Each `start(originPort)` brings its processes up on
 * loopback and resolves with where the load generator sends its GETs, the pids of its own
 * processes (never the origin's or the generator's) and a `stop()` that kills them.
 */
import { startMport } from '../harness/mport.js'
import { portChild } from '../harness/port-child.js'
import { killChild } from '../harness/procs.js'

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

/** The name mport's tunnel gets under the relay's domain; every request carries it as Host. */
export const DOMAIN = 'bench.test'
export const HOST = `web.${DOMAIN}`

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
    const p = await portChild(new URL('./proxy.ts', import.meta.url), [String(originPort)], 'reverse proxy')
    return { port: p.port, pids: () => [p.child.pid as number], stop: () => killChild(p.child) }
  },
}

export const mport: Contestant = {
  key: 'mport',
  name: 'mport http tunnel (relay HTTP port → TLS mux → connect)',
  async start (originPort) {
    const m = await startMport(['--domain', DOMAIN, '--http-port', '0'], ['http', String(originPort), '--subdomain', 'web'])
    try {
      if (m.listening.httpPort === undefined) throw new Error('the relay\'s listening event has no httpPort (bin/mport-relay.ts too old?)')
      if (m.tunnel.url?.includes(HOST) !== true) throw new Error(`tunnel came up as ${m.tunnel.url ?? '?'}, not ${HOST}`)
      return { port: m.listening.httpPort, pids: () => [m.relay.pid as number, m.client.pid as number], stop: m.stop }
    } catch (err) {
      await m.stop()
      throw err
    }
  },
}
