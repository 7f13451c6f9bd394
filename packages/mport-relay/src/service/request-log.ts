/**
 * Recent HTTP requests per live http tunnel, for the dashboard's tunnel page: method, path
 * (no query string), status, duration and sizes, with the visitor's address. Metadata only,
 * never headers or bodies; a bounded ring per tunnel (`perTunnel`, 0: off, and then the relay
 * reads no exchange at all), forgotten when the tunnel closes.
 */
import type { Relay } from 'mport/relay'
import type { RecentRequest } from '../api/index.js'
import { TunnelRings } from './tunnel-rings.js'

export class RequestLog {
  readonly #rings: TunnelRings<RecentRequest>

  constructor (relay: Relay, perTunnel = 50) {
    this.#rings = new TunnelRings(relay, perTunnel)
    if (!this.#rings.on) return
    relay.on('http-exchange', (info, r) => this.#rings.add(`${info.tunnel.client}:${info.tunnel.id}`, { ...r, address: info.remoteAddress }))
  }

  /** Newest first; empty for a tunnel with none (or when off). */
  recent (tunnelKey: string): RecentRequest[] {
    return this.#rings.recent(tunnelKey)
  }
}
