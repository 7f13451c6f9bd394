/**
 * Recent visitors per live tunnel, for the dashboard's tunnel page: each finished or refused
 * visitor connection's address, time, bytes and refusal code. Metadata only, a bounded ring
 * per tunnel (`perTunnel`, 0: off), forgotten when the tunnel closes.
 */
import type { Relay } from 'mport/relay'
import type { RecentVisitor } from '../api/index.js'
import { TunnelRings } from './tunnel-rings.js'

export class VisitorLog {
  readonly #rings: TunnelRings<RecentVisitor>

  constructor (relay: Relay, perTunnel = 50, now: () => number = Date.now) {
    this.#rings = new TunnelRings(relay, perTunnel)
    if (!this.#rings.on) return
    relay.on('connection-closed', (info, stats) => this.#rings.add(`${info.tunnel.client}:${info.tunnel.id}`, { at: now(), address: info.remoteAddress, bytesIn: stats.bytesIn, bytesOut: stats.bytesOut }))
    relay.on('visitor-refused', (info, err) => this.#rings.add(`${info.tunnel.client}:${info.tunnel.id}`, { at: now(), address: info.remoteAddress, bytesIn: 0, bytesOut: 0, refused: err.code }))
  }

  /** Newest first; empty for a tunnel with none (or when off). */
  recent (tunnelKey: string): RecentVisitor[] {
    return this.#rings.recent(tunnelKey)
  }
}
