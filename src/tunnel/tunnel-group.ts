/**
 * Load-balancing groups: several clients' tunnels behind one public address (a TCP port, a
 * subdomain or a hostname). The group owns the address while any member holds it; each
 * visitor goes to one member, picked by the group's policy (round robin or least
 * connections) among the members that take visitors: connected, not draining, healthy.
 * Membership needs the same user, or the group's key (kept as a hash, compared in constant time).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { GroupKeyError, GroupMismatchError } from '../errors.js'
import type { Session } from '../mux/session.js'
import type { Lease, PublicTunnel } from './lease.js'
import type { GroupPolicy, OpenRequest, RelayMessage } from './messages.js'

/** Where a member is: `ready` takes new visitors; the others get none. */
export type MemberState = 'ready' | 'draining' | 'unhealthy' | 'gone'

/** What a group uses of a member's client connection. */
export interface GroupHolder {
  readonly session: Session
  readonly control: { send (msg: RelayMessage): void }
  readonly info?: { readonly id: string, readonly remoteAddress: string }
  /** The client's software, from its hello (`mport-connect/0.1.0`). */
  readonly agent?: string
}

/** One member: a lease's tunnel in the group, and what its client said about itself. */
export interface GroupMember<C extends GroupHolder = GroupHolder> {
  readonly lease: Lease<C>
  readonly tunnel: PublicTunnel
  /** The client is stopping (`drain`): no new visitors until the lease is taken up again. */
  draining: boolean
  /** The last health check the client reported (true until it reports one). */
  healthy: boolean
  healthDetail: string | undefined
}

/** A member as listings show it. */
export interface GroupMemberInfo {
  /** The member's lease id (as TunnelInfo.client). */
  client: string
  /** The connection holding the lease now (ClientInfo.id), absent while it is away. */
  session?: string
  remoteAddress?: string
  agent?: string
  state: MemberState
  /** Visitor connections open to this member. */
  connections: number
  /** Why the last health check failed, while unhealthy. */
  healthDetail?: string
}

/** A group as listings show it. */
export interface GroupInfo {
  name: string
  policy: GroupPolicy
  /** True when other users' tunnels may join with the group's key. */
  keyed: boolean
  members: GroupMemberInfo[]
}

/**
 * The public address a group holds, set by the relay's tunnel registry when it binds or claims
 * it; its visitor filter and basic auth are the whole group's: those of the member that founded it.
 */
export type GroupAddress = Pick<PublicTunnel, 'kind' | 'port' | 'server' | 'subdomain' | 'hostname' | 'filter' | 'auth'>

export class TunnelGroup<C extends GroupHolder = GroupHolder> {
  readonly name: string
  readonly policy: GroupPolicy
  /** The key of this group in TunnelGroups. */
  readonly scope: string
  readonly address: GroupAddress
  readonly #keyHash: Buffer | undefined
  readonly #members: Array<GroupMember<C>> = []
  /** Round robin: where the next search for a member starts. */
  #cursor = 0

  constructor (scope: string, name: string, policy: GroupPolicy, key: string | undefined, address: GroupAddress) {
    this.scope = scope
    this.name = name
    this.policy = policy
    this.address = address
    this.#keyHash = key === undefined ? undefined : hashKey(key)
  }

  get members (): ReadonlyArray<GroupMember<C>> { return this.#members }

  /** Throws GroupKeyError unless `key` is this group's key (constant time; a keyless group is scoped to its user already). */
  checkKey (key: string | undefined): void {
    if (this.#keyHash === undefined) return
    if (key === undefined || !timingSafeEqual(hashKey(key), this.#keyHash)) throw new GroupKeyError(this.name)
  }

  /** Throws GroupMismatchError unless `msg` asks for this group's tunnel (its kind, and its port or names when it names any). */
  checkMatches (msg: OpenRequest): void {
    const a = this.address
    const kind = msg.kind ?? 'tcp'
    if (kind !== a.kind) throw new GroupMismatchError(this.name, `is a ${a.kind} tunnel, not ${kind}`)
    if (kind === 'tcp' && msg.port !== 0 && msg.port !== a.port) throw new GroupMismatchError(this.name, `is on port ${a.port}, not ${msg.port}`)
    const sub = msg.subdomain?.toLowerCase()
    if (sub !== undefined && sub !== a.subdomain) throw new GroupMismatchError(this.name, `is not on subdomain ${sub}`)
    const host = msg.hostname?.toLowerCase()
    if (host !== undefined && host !== a.hostname) throw new GroupMismatchError(this.name, `is not on hostname ${host}`)
  }

  add (lease: Lease<C>, tunnel: PublicTunnel): GroupMember<C> {
    const m: GroupMember<C> = { lease, tunnel, draining: false, healthy: true, healthDetail: undefined }
    this.#members.push(m)
    this.notify()
    return m
  }

  /** Removes a lease's tunnel; true when the group is left empty (then its address is to be released). */
  remove (lease: Lease<C>, tunnelId: number): boolean {
    const i = this.#members.findIndex(m => m.lease === lease && m.tunnel.id === tunnelId)
    if (i >= 0) {
      this.#members.splice(i, 1)
      if (this.#cursor > i) this.#cursor--
    }
    this.notify()
    return this.#members.length === 0
  }

  member (lease: Lease<C>, tunnelId: number): GroupMember<C> | undefined {
    return this.#members.find(m => m.lease === lease && m.tunnel.id === tunnelId)
  }

  stateOf (m: GroupMember<C>): MemberState {
    const h = m.lease.holder
    if (h === undefined || h.session.closed) return 'gone'
    if (m.draining) return 'draining'
    return m.healthy ? 'ready' : 'unhealthy'
  }

  /**
   * The member the next visitor goes to, among the ready ones not in `tried` (those whose
   * stream failed for this visitor already); undefined when none is left.
   */
  pick (tried: ReadonlySet<GroupMember<C>>): GroupMember<C> | undefined {
    const n = this.#members.length
    let best: GroupMember<C> | undefined
    let bestAt = 0
    for (let k = 0; k < n; k++) {
      const at = (this.#cursor + k) % n
      const m = this.#members[at]!
      if (tried.has(m) || this.stateOf(m) !== 'ready') continue
      if (this.policy === 'roundrobin') { best = m; bestAt = at; break }
      // Least connections; ties go to the first in turn, so idle members take turns too.
      if (best === undefined || m.tunnel.connections.size < best.tunnel.connections.size) { best = m; bestAt = at }
    }
    if (best !== undefined) this.#cursor = (bestAt + 1) % n
    return best
  }

  /** Tells every connected member how many members there are and how many take visitors. */
  notify (): void {
    const members = this.#members.length
    const available = this.#members.filter(m => this.stateOf(m) === 'ready').length
    for (const m of this.#members) {
      const h = m.lease.holder
      if (h !== undefined && !h.session.closed) h.control.send({ t: 'group', id: m.tunnel.id, name: this.name, members, available })
    }
  }

  info (): GroupInfo {
    return {
      name: this.name,
      policy: this.policy,
      keyed: this.#keyHash !== undefined,
      members: this.#members.map(m => {
        const h = m.lease.holder
        const state = this.stateOf(m)
        return {
          client: m.lease.id,
          ...(h?.info !== undefined ? { session: h.info.id, remoteAddress: h.info.remoteAddress } : {}),
          ...(h?.agent !== undefined ? { agent: h.agent } : {}),
          state,
          connections: m.tunnel.connections.size,
          ...(state === 'unhealthy' && m.healthDetail !== undefined ? { healthDetail: m.healthDetail } : {}),
        }
      }),
    }
  }
}

/** The relay's groups, by scope: a keyed group by its name alone, a keyless one within its user. */
export class TunnelGroups<C extends GroupHolder = GroupHolder> {
  readonly #groups = new Map<string, TunnelGroup<C>>()

  /** Where `msg` (which names a group) belongs: other users may join a keyed group, nobody else a keyless one. */
  static scopeOf (msg: OpenRequest & { group: string }, principalId: string): string {
    return msg.groupKey !== undefined ? `key\0${msg.group}` : `user\0${principalId}\0${msg.group}`
  }

  get (scope: string): TunnelGroup<C> | undefined {
    return this.#groups.get(scope)
  }

  set (group: TunnelGroup<C>): void {
    this.#groups.set(group.scope, group)
  }

  delete (group: TunnelGroup): void {
    if (this.#groups.get(group.scope) === group) this.#groups.delete(group.scope)
  }

  /** The groups one of whose members is on `lease`. */
  * of (lease: Lease<C>): Generator<TunnelGroup<C>> {
    for (const g of this.#groups.values()) if (g.members.some(m => m.lease === lease)) yield g
  }
}

function hashKey (key: string): Buffer {
  return createHash('sha256').update(key).digest()
}
