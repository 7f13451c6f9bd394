/** The client's tunnels as the inspector lists them, saying which ones it cannot see into and why. */
import type { TunnelSpec, TunnelStatus } from 'mport/client'
import type { InspectedTunnel } from './inspect-server.js'

/** Each tunnel's status with its spec's kind (paired by name: a reload may change the list). */
export function inspectedTunnels (statuses: readonly TunnelStatus[], specs: readonly TunnelSpec[]): InspectedTunnel[] {
  return statuses.map(s => {
    const kind = specs.find(x => x.name === s.name)?.kind ?? 'tcp'
    const t: InspectedTunnel = { name: s.name, kind, local: s.local, ...(s.url !== undefined ? { url: s.url } : {}) }
    if (kind === 'tls') t.notInspected = 'a tls tunnel carries the visitor\'s own TLS to the service: the client sees only ciphertext'
    else if (kind === 'tcp') t.notInspected = 'a tcp tunnel carries any protocol: only http tunnels are recorded'
    return t
  })
}
