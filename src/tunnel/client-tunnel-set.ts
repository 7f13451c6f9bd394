/**
 * A client's tunnel set changing while it runs (a reload): the new list compared with the
 * running one by name. A tunnel whose spec differs in anything is changed (replaced: closed,
 * then opened again); the others are left alone, with their visitor connections.
 */
import { InvalidConfigError } from '../errors.js'
import type { RememberedTunnel } from './client-lease-store.js'
import type { TunnelSpec } from './spec.js'

/** What Client.setTunnels changed, by tunnel name, each list in the order of the new specs (removed: of the old ones). */
export interface TunnelChanges {
  /** Opened: in the new list only. */
  added: string[]
  /** Closed: in the old list only. */
  removed: string[]
  /** Replaced (closed, then opened with the new spec; it asks for its old address again when it has no fixed one). */
  changed: string[]
  /** Untouched: the same spec in both. */
  unchanged: string[]
}

/** True when two specs ask for the same tunnel in every respect. */
export function sameTunnel (a: TunnelSpec, b: TunnelSpec): boolean {
  const list = (l: string[] | undefined): string => JSON.stringify(l ?? [])
  return a.name === b.name && a.localHost === b.localHost && a.localPort === b.localPort && a.remotePort === b.remotePort &&
    (a.kind ?? 'tcp') === (b.kind ?? 'tcp') && a.subdomain === b.subdomain && a.hostname === b.hostname &&
    a.basicAuth === b.basicAuth && list(a.allowIp) === list(b.allowIp) && list(a.denyIp) === list(b.denyIp) &&
    a.proxyProtocol === b.proxyProtocol && a.group === b.group && a.groupKey === b.groupKey && a.groupPolicy === b.groupPolicy &&
    JSON.stringify(a.healthCheck ?? null) === JSON.stringify(b.healthCheck ?? null)
}

/** Compares the running specs with the new ones by name; throws InvalidConfigError when two new ones share a name. */
export function diffTunnels (current: readonly TunnelSpec[], next: readonly TunnelSpec[]): TunnelChanges {
  const before = new Map(current.map(s => [s.name, s]))
  const names = new Set<string>()
  const changes: TunnelChanges = { added: [], removed: [], changed: [], unchanged: [] }
  for (const spec of next) {
    if (names.has(spec.name)) throw new InvalidConfigError('tunnels', `two tunnels are named "${spec.name}"`)
    names.add(spec.name)
    const old = before.get(spec.name)
    if (old === undefined) changes.added.push(spec.name)
    else if (sameTunnel(old, spec)) changes.unchanged.push(spec.name)
    else changes.changed.push(spec.name)
  }
  for (const spec of current) if (!names.has(spec.name)) changes.removed.push(spec.name)
  return changes
}

/**
 * Tunnel ids for a client that loaded a stored lease (its tunnels in `names`): a tunnel takes
 * the id the relay's lease knows it by, the others new ids above every stored one. `stale`:
 * stored tunnels no longer in the list, to close on the relay (the lease still holds them).
 */
export function idsFromStoredLease (names: readonly string[], stored: Readonly<Record<string, RememberedTunnel>>): { ids: number[], stale: number[], next: number } {
  const wanted = new Set(names)
  const taken = new Set<number>()
  const stale: number[] = []
  for (const [name, r] of Object.entries(stored)) {
    if (r.id === undefined) continue
    if (!wanted.has(name)) stale.push(r.id)
    taken.add(r.id)
  }
  let next = Math.max(0, ...taken) + 1
  const used = new Set<number>()
  const ids = names.map(name => {
    const id = stored[name]?.id
    if (id !== undefined && !used.has(id)) { used.add(id); return id }
    return next++
  })
  return { ids, stale, next }
}
