/**
 * The cluster's routing registry in Redis: which node holds which tcp port, subdomain or
 * hostname, each user's tunnels across nodes, the leases clients may move with, and where each
 * node's link listener is. Every key has a TTL that its holder refreshes, so the keys of a node
 * that dies expire by themselves; a holder that finds its key gone (Redis restarted, or it
 * expired while Redis was away) writes it again, so the holders are the truth and Redis a copy.
 *
 * Each change is one Lua script, so check-and-set is atomic in Redis itself (no home-made
 * consensus). Keys hold JSON; one Redis (or a Sentinel-managed primary), not Redis Cluster:
 * the scripts touch several keys.
 */
import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'

/** Who holds a route key: the node, the lease and tunnel on it, and what another node needs to serve visitors for it. */
export interface RouteRecord {
  node: string
  lease: string
  tunnel: number
  principal: string
  kind: 'tcp' | 'http' | 'tls'
  /** The tunnel's visitor filter (CIDRs), so a forwarding node can refuse with the same page. */
  allow?: string[]
  deny?: string[]
  /** The tunnel's basic-auth lines (salted scrypt hashes, never a password). */
  auth?: string[]
}

/** A lease as published: its holder node, its user and the hash of its ticket's secret. */
export interface LeaseRecord { node: string, principal: string, secretHash: string }

/** What one tunnel holds in the registry. */
export interface TunnelClaim {
  /** `port:<n>`, `sub:<label>`, `host:<name>`. */
  routes: string[]
  record: RouteRecord
  /** The user's plan limit on tunnels across the cluster; null: unlimited. */
  maxTunnels: number | null
}

export type ClaimResult = { ok: true } | { ok: false, reason: 'taken', route: string, node: string } | { ok: false, reason: 'limit' }

export interface RegistryOptions {
  /** `redis://…` (or `rediss://…`). */
  url: string
  /** Key prefix (default `mport:`): several clusters may share one Redis. */
  prefix?: string
  /** How long a key lives without a refresh (ms). */
  ttlMs: number
  onError?: (err: Error) => void
}

// KEYS[1] the user's tunnel set, KEYS[2..] route keys. ARGV: record, ttl, now, member, max (-1: none), lease.
const CLAIM = `
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    local d = cjson.decode(v)
    if d.lease ~= ARGV[6] then return {'taken', KEYS[i], d.node} end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  local max = tonumber(ARGV[5])
  if max >= 0 and redis.call('ZCARD', KEYS[1]) >= max then return {'limit'} end
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return {'ok'}
`

// Like CLAIM but for a tunnel that is up: no limit check, and 'lost' when another node or lease holds a key now.
// ARGV: record, ttl, now, member, lease, node.
const REFRESH = `
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    local d = cjson.decode(v)
    if d.lease ~= ARGV[5] or d.node ~= ARGV[6] then return 'lost' end
  end
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return 'ok'
`

// Deletes the route keys this node and lease still hold, and the user's count only if it held them all. ARGV: member, lease, node.
const RELEASE = `
local mine = true
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    local d = cjson.decode(v)
    if d.lease == ARGV[2] and d.node == ARGV[3] then redis.call('DEL', KEYS[i]) else mine = false end
  end
end
if mine then redis.call('ZREM', KEYS[1], ARGV[1]) end
return mine and 1 or 0
`

// Publishes a lease for this node; answers 'moved' when another node holds it now. ARGV: record, ttl, node, take (1: take it over).
const LEASE = `
local v = redis.call('GET', KEYS[1])
if v and ARGV[4] ~= '1' and cjson.decode(v).node ~= ARGV[3] then return 'moved' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'ok'
`

// Deletes a key only while this node holds it. ARGV: node.
const DELETE_MINE = `
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).node == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`

export class RedisRegistry {
  readonly redis: Redis
  readonly #prefix: string
  readonly #ttl: number
  readonly #sha = new Map<string, string>()

  constructor (opts: RegistryOptions) {
    this.#prefix = opts.prefix ?? 'mport:'
    this.#ttl = opts.ttlMs
    // Fail a command fast while Redis is away (the caller refuses or retries on its next round)
    // instead of queueing it for the reconnect.
    this.redis = new Redis(opts.url, { maxRetriesPerRequest: 1, commandTimeout: 2000, lazyConnect: false, retryStrategy: times => Math.min(times * 100, 1000) })
    this.redis.on('error', err => opts.onError?.(err))
  }

  get ttlMs (): number { return this.#ttl }

  key (name: string): string { return this.#prefix + name }

  async claim (c: TunnelClaim, now = Date.now()): Promise<ClaimResult> {
    const r = await this.#run(CLAIM, this.#keys(c), [JSON.stringify(c.record), this.#ttl, now, member(c.record), c.maxTunnels ?? -1, c.record.lease]) as string[]
    if (r[0] === 'ok') return { ok: true }
    if (r[0] === 'limit') return { ok: false, reason: 'limit' }
    return { ok: false, reason: 'taken', route: r[1]!.slice(this.#prefix.length + 'route:'.length), node: r[2]! }
  }

  /** Refreshes a live tunnel's keys (writing them again if Redis lost them); false when another node or lease took one. */
  async refresh (c: TunnelClaim, now = Date.now()): Promise<boolean> {
    return await this.#run(REFRESH, this.#keys(c), [JSON.stringify(c.record), this.#ttl, now, member(c.record), c.record.lease, c.record.node]) === 'ok'
  }

  async release (c: TunnelClaim): Promise<void> {
    await this.#run(RELEASE, this.#keys(c), [member(c.record), c.record.lease, c.record.node])
  }

  /** Publishes a lease held by `node`; `take`: the client moved here, whoever held it before. False: another node holds it now. */
  async holdLease (id: string, rec: LeaseRecord, ttlMs: number, take: boolean): Promise<boolean> {
    return await this.#run(LEASE, [this.key(`lease:${id}`)], [JSON.stringify(rec), ttlMs, rec.node, take ? '1' : '0']) === 'ok'
  }

  async lease (id: string): Promise<LeaseRecord | undefined> {
    return parse<LeaseRecord>(await this.redis.get(this.key(`lease:${id}`)))
  }

  async releaseLease (id: string, node: string): Promise<void> {
    await this.#run(DELETE_MINE, [this.key(`lease:${id}`)], [node])
  }

  async route (route: string): Promise<RouteRecord | undefined> {
    return parse<RouteRecord>(await this.redis.get(this.key(`route:${route}`)))
  }

  /** Every tcp port some node holds, with its record. */
  async ports (): Promise<Map<number, RouteRecord>> {
    const out = new Map<number, RouteRecord>()
    const match = this.key('route:port:*')
    let cursor = '0'
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', 500)
      cursor = next
      if (keys.length === 0) continue
      const values = await this.redis.mget(...keys)
      keys.forEach((k, i) => {
        const rec = parse<RouteRecord>(values[i] ?? null)
        if (rec !== undefined) out.set(Number(k.slice(match.length - 1)), rec)
      })
    } while (cursor !== '0')
    return out
  }

  /** This node's link address, refreshed with the other keys. */
  async announce (node: string, link: string): Promise<void> {
    await this.redis.set(this.key(`node:${node}`), JSON.stringify({ link }), 'PX', this.#ttl)
  }

  async nodeLink (node: string): Promise<string | undefined> {
    return parse<{ link: string }>(await this.redis.get(this.key(`node:${node}`)))?.link
  }

  async forget (node: string): Promise<void> {
    await this.redis.del(this.key(`node:${node}`))
  }

  /** The user's tunnels across the cluster now (expired ones not counted). */
  async tunnelCount (principal: string, now = Date.now()): Promise<number> {
    return await this.redis.zcount(this.key(`tunnels:${principal}`), now, '+inf')
  }

  async close (): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect())
  }

  #keys (c: TunnelClaim): string[] {
    return [this.key(`tunnels:${c.record.principal}`), ...c.routes.map(r => this.key(`route:${r}`))]
  }

  /** EVALSHA, loading the script on NOSCRIPT (a restarted Redis has forgotten it). */
  async #run (script: string, keys: string[], args: Array<string | number>): Promise<unknown> {
    let sha = this.#sha.get(script)
    if (sha === undefined) {
      sha = createHash('sha1').update(script).digest('hex')
      this.#sha.set(script, sha)
    }
    try {
      return await this.redis.evalsha(sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err
      return await this.redis.eval(script, keys.length, ...keys, ...args)
    }
  }
}

/** A tunnel's member in its user's set: the same on whichever node holds the lease. */
function member (r: RouteRecord): string {
  return `${r.lease}:${r.tunnel}`
}

function parse<T> (v: string | null): T | undefined {
  if (v === null) return undefined
  try {
    return JSON.parse(v) as T
  } catch {
    return undefined
  }
}
