/**
 * Recent visitors per live tunnel, for the dashboard's tunnel page: each finished or refused
 * visitor connection's address, time, bytes and refusal code. Metadata only, a bounded ring
 * per tunnel (`perTunnel`, 0: off), forgotten when the tunnel closes.
 */
import type { Relay } from 'mport/relay'
import type { RecentVisitor } from '../api/index.js'

export class VisitorLog {
  readonly #perTunnel: number
  readonly #rings = new Map<string, RecentVisitor[]>()

  constructor (relay: Relay, perTunnel = 50, now: () => number = Date.now) {
    this.#perTunnel = perTunnel
    if (perTunnel <= 0) return
    relay.on('connection-closed', (info, stats) => this.#add(`${info.tunnel.client}:${info.tunnel.id}`, { at: now(), address: info.remoteAddress, bytesIn: stats.bytesIn, bytesOut: stats.bytesOut }))
    relay.on('visitor-refused', (info, err) => this.#add(`${info.tunnel.client}:${info.tunnel.id}`, { at: now(), address: info.remoteAddress, bytesIn: 0, bytesOut: 0, refused: err.code }))
    // Rings only for live tunnels: a connection that ends after its tunnel closed leaves nothing behind.
    relay.on('tunnel-up', t => { const key = `${t.client}:${t.id}`; if (!this.#rings.has(key)) this.#rings.set(key, []) })
    relay.on('tunnel-down', t => this.#rings.delete(`${t.client}:${t.id}`))
  }

  /** Newest first; empty for a tunnel with none (or when off). */
  recent (tunnelKey: string): RecentVisitor[] {
    return [...(this.#rings.get(tunnelKey) ?? [])].reverse()
  }

  #add (key: string, v: RecentVisitor): void {
    const ring = this.#rings.get(key)
    if (ring === undefined) return
    ring.push(v)
    if (ring.length > this.#perTunnel) ring.shift()
  }
}
