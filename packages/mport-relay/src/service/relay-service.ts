/**
 * The whole relay as the mport-relay command runs it, for embedding too: the data directory
 * (certificate, built-in token), the store (SQLite in the data dir, or PostgreSQL), user
 * accounts and plans enforced by the relay, usage recorded in batches, and the REST API on
 * its own listener. Closing it drains the relay, then flushes usage and closes the store.
 */
import { isIPv6, type AddressInfo } from 'node:net'
import type { ApiOptions, createApi } from '../api/index.js'
import { AcmeCertificates, type AcmeCertificatesOptions } from '../acme/index.js'
import type { ClusterNode, ClusterNodeOptions } from '../cluster/index.js'
import { RelayOps, healthSummary, type RelayOpsOptions } from '../ops/index.js'
import { openStore, StoreAuthenticator, StoreRelayPolicy, UsageRecorder, type SqlStore } from '../store/index.js'
import { fingerprint, loadOrCreateCertificate } from 'mport/transport'
import { AnyAuthenticator } from 'mport/relay'
import { RelayTokens, type NamedToken } from './relay-tokens.js'
import { VisitorLog } from './visitor-log.js'
import { RequestLog } from './request-log.js'
import { reloader, type RelayReload, type RelayReloadResult } from './relay-reload.js'
import { prepareRelayData, type RelayData } from 'mport/relay'
import { Relay, type RelayOptions } from 'mport/relay'
import type { ClientInfo, PlanLimits } from 'mport/relay'
import path from 'node:path'
import { packageVersion } from 'mport/cli'
import { ClientDownloads } from '../downloads/client-downloads.js'
import { ClientExecutable, executableUnsupported } from '../downloads/client-executable.js'

/** The relay's options plus the data dir, the database, plans and the REST API listener. */
export interface RelayServiceOptions extends Omit<RelayOptions, 'cert' | 'key' | 'authenticator' | 'policy' | 'cluster'> {
  dataDir: string
  /** Control-listener certificate; default: the data dir's self-signed one. */
  cert?: string
  key?: string
  /** The relay's own access token; default: the data dir's generated one. */
  token?: string
  /** `postgres://…` or a SQLite path; default `mport.db` in the data dir. */
  database?: string
  /** The REST API's listener (and the dashboard on it); none: no API. `recentVisitors`: visitor connections kept per live tunnel for the tunnel page (default 50; 0: none); `recentRequests`: HTTP requests kept per live http tunnel (default 50; 0: none, and no exchange is read). */
  api?: { host: string, port: number, openSignup?: boolean, recentVisitors?: number, recentRequests?: number, reload?: ApiOptions['reload'], onResponse?: ApiOptions['onResponse'], downloads?: ApiOptions['downloads'] }
  /** More static tokens besides the owner's, each name its own principal (no plan limits); a reload replaces them. */
  tokens?: readonly NamedToken[]
  /** Subdomains nobody may take, besides the built-in ones. */
  reservedNames?: readonly string[]
  /** Which addresses may open a client session on the control port (CIDRs; deny wins). */
  clientIpFilter?: { allow?: readonly string[], deny?: readonly string[] }
  /** The ops listener (/metrics, /healthz, /readyz) and its metrics; none: neither. */
  ops?: RelayOpsOptions
  /** Plan defaults for user accounts (unset: unlimited); per-user overrides live in the store. */
  planDefaults?: Partial<PlanLimits>
  /** How often usage counters are written (default 10 s). */
  usageFlushInterval?: number // ms
  version?: string
  /** Certificates from an ACME CA for the HTTPS port (on demand per name, the base domain with a DNS hook); none: the given or self-signed ones. */
  acme?: Omit<AcmeCertificatesOptions, 'dataDir' | 'domain' | 'held' | 'log' | 'onSoonestExpiry'>
  /** Told one line per ACME event (obtained, renewed, failed); default: nothing. */
  onAcmeLog?: (line: string) => void
  /** Told one line when the client executable (GET /dl/mport-connect-linux-x64) is being made, is ready or failed; default: nothing. */
  onDownloadsLog?: (line: string) => void
  /** Run as one node of a cluster sharing the store (PostgreSQL) and a Redis routing registry (docs/CLUSTER.md); none: alone. */
  cluster?: Omit<ClusterNodeOptions, 'cert' | 'key' | 'bindHost' | 'leaseTtlMs' | 'onWarning'>
}

/** A running relay service: the relay, its store and API, and how to close them in order. */
export interface RelayService {
  relay: Relay
  store: SqlStore
  data: RelayData
  /** Fingerprint of the control certificate. */
  fingerprint: string
  /** The token clients of the relay owner use. */
  token: string
  /** Where the API listens, when it is on. */
  apiAddress: AddressInfo | undefined
  /**
   * Applies reloaded settings to the live relay without dropping what is still allowed (see
   * RelayReload); a field left out stays as it is. Throws InvalidConfigError, having changed
   * nothing, when a value is refused.
   */
  reload (next: RelayReload): Promise<RelayReloadResult>
  /** The ACME certificates, when `acme` is set. */
  acme: AcmeCertificates | undefined
  /** Metrics and readiness, when the ops listener is on; `ops.metrics.certificates.set(name, pem)` registers a certificate served. */
  ops: RelayOps | undefined
  /** Where the ops listener listens, when it is on. */
  opsAddress: AddressInfo | undefined
  /** This node of the cluster, when `cluster` is set. */
  cluster: ClusterNode | undefined
  /** Drains: readiness drops first, then the API and the relay close, the ops listener last. */
  close (graceMs?: number): Promise<void>
}

/** `host:port` as clients write it (IPv6 literals bracketed). */
function controlAddress (host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** Starts the whole relay service (data dir, store, relay, usage recorder, REST API) and returns it once listening. */
export async function startRelayService (opts: RelayServiceOptions): Promise<RelayService> {
  const { dataDir, cert, key, token: givenToken, database, api, ops: opsOpts, usageFlushInterval, version, planDefaults, tokens, reservedNames, clientIpFilter, acme: acmeOpts, onAcmeLog, onDownloadsLog, cluster: clusterOpts, ...relayOpts } = opts
  const data = await prepareRelayData(dataDir, [opts.publicHost ?? 'localhost'])
  const token = givenToken ?? data.token
  const ops = opsOpts !== undefined ? new RelayOps(opsOpts) : undefined
  const opened = await openStore({ ...(database !== undefined ? { url: database } : { dataDir }), ...(planDefaults !== undefined ? { defaults: planDefaults } : {}) })
  const store = ops?.store(opened) ?? opened // timed, when there are metrics
  const usage = new UsageRecorder(store, { flushIntervalMs: usageFlushInterval ?? 10_000 })
  const storeAuth = new StoreAuthenticator(store)
  const staticTokens = new RelayTokens(token, tokens)
  const storePolicy = new StoreRelayPolicy(store, usage, storeAuth, id => staticTokens.has(id))
  let https: { httpsCert?: string, httpsKey?: string } = {}
  if (opts.domain !== undefined && opts.httpsPort !== undefined && opts.httpsCert === undefined) {
    https = await wildcardCertificate(dataDir, opts.domain)
  }
  // ACME may order names a live tunnel or a subdomain reservation holds (asked when needed: the relay is built below).
  const built: { relay?: Relay } = {}
  const acme = acmeOpts === undefined ? undefined : new AcmeCertificates({
    ...acmeOpts,
    dataDir,
    domain: opts.domain,
    held: async name => built.relay?.terminatesName(name) === true || await reservedSubdomain(store, opts.domain, name),
    log: line => onAcmeLog?.(line),
    // One series for every ACME certificate: the one that expires first (the expiry alert covers them all).
    onSoonestExpiry: pair => ops?.metrics.certificates.set('acme', pair.cert),
  })
  await acme?.start()
  // ioredis only when this relay is a node of a cluster.
  const cluster = clusterOpts === undefined ? undefined : new (await import('../cluster/index.js')).ClusterNode({
    ...clusterOpts,
    cert: cert ?? data.cert,
    key: key ?? data.key,
    bindHost: relayOpts.bindHost ?? '0.0.0.0',
    leaseTtlMs: relayOpts.leaseGrace ?? 120_000,
    onWarning: err => built.relay?.emit('warning', err),
  })
  const relay = new Relay({
    ...(cluster !== undefined ? { cluster } : {}),
    ...relayOpts,
    ...https,
    ...(acme !== undefined ? { certificates: acme, acmeChallenges: acme } : {}),
    cert: cert ?? data.cert,
    key: key ?? data.key,
    authenticator: new AnyAuthenticator(staticTokens, storeAuth),
    policy: ops?.policy(storePolicy) ?? storePolicy,
  })
  await relay.reconfigure({ ...(reservedNames !== undefined ? { reservedNames } : {}), ...(clientIpFilter !== undefined ? { clientIpFilter } : {}) })
  ops?.metrics.certificates.set('control', cert ?? data.cert)
  const httpsCert = https.httpsCert ?? opts.httpsCert
  if (httpsCert !== undefined && opts.httpsPort !== undefined) ops?.metrics.certificates.set('https', httpsCert)
  const seen: SeenClients = { clients: new Map(), since: new Map(), left: new Map() }
  let app: Awaited<ReturnType<typeof createApi>> | undefined
  let apiAddress: AddressInfo | undefined
  let opsAddress: AddressInfo | undefined
  // A tunnel that comes up with a name the relay terminates gets its certificate ordered at once.
  if (acme !== undefined) {
    built.relay = relay
    relay.on('tunnel-up', t => {
      const url = relay.tunnels.find(x => x.client === t.client && x.id === t.id)?.url
      if (url?.startsWith('https://') === true) void acme.request(new URL(url).hostname)
    })
  }
  try {
    trackClients(relay, seen)
    const visitors = new VisitorLog(relay, api?.recentVisitors)
    // Without the API nobody can read them: then no exchange is read at all.
    const requests = new RequestLog(relay, api === undefined ? 0 : api.recentRequests)
    opsAddress = await ops?.listen() // before the relay: /healthz answers and /readyz says "starting" meanwhile
    built.relay = relay
    await cluster?.start() // links up and announced before clients arrive
    await relay.listen()
    if (api !== undefined) {
      const { createApi } = await import('../api/index.js') // fastify only when the API is on
      app = await createApi({
        store,
        openSignup: api.openSignup ?? false,
        ...(version !== undefined ? { version } : {}),
        relayAddress: controlAddress(opts.publicHost ?? 'localhost', relay.address.port),
        relayCertificate: { fingerprint: fingerprint(cert ?? data.cert), selfSigned: cert === undefined },
        relayInfo: () => relay.tunnels.map(t => {
          const holder = t.session !== undefined ? seen.clients.get(t.session) : undefined
          const since = seen.since.get(t.key)
          return {
            id: t.key, name: t.name, userId: t.principalId, userName: t.principal, port: t.port, kind: t.kind,
            ...(t.url !== undefined ? { url: t.url } : {}), online: t.online, connections: t.connections, bytesIn: t.bytesIn, bytesOut: t.bytesOut,
            ...(holder !== undefined ? { clientAddress: holder.remoteAddress, clientAgent: holder.agent } : {}), ...(since !== undefined ? { since } : {}),
            ...(t.group !== undefined ? { group: t.group } : {}),
            filter: t.filter, restricted: t.restricted, grants: t.grants,
            lastSeen: t.online ? Date.now() : seen.left.get(t.key) ?? Date.now(),
          }
        }),
        watchTunnels: changed => {
          const events = ['tunnel-up', 'tunnel-down', 'client', 'client-closed'] as const
          for (const e of events) relay.on(e, changed)
          return () => { for (const e of events) relay.off(e, changed) }
        },
        closeTunnel: id => relay.closeTunnel(id),
        tunnelVisitors: id => visitors.recent(id),
        tunnelRequests: id => requests.recent(id),
        grantVisitor: (id, address, until) => relay.grantVisitor(id, address, until),
        relayHealth: async () => {
          const streams = relay.tunnels.reduce((n, t) => n + t.connections, 0)
          if (ops !== undefined) return { ...await healthSummary(ops.metrics), streams }
          const mem = process.memoryUsage()
          return { sessions: relay.clientCount, tunnels: relay.tunnels.length, streams, memory: { rss: mem.rss, heapUsed: mem.heapUsed }, eventLoopLagSeconds: null, store: { calls: 0, p50Seconds: null, p99Seconds: null } }
        },
        ...(api.reload !== undefined ? { reload: api.reload } : {}),
        ...(api.onResponse !== undefined ? { onResponse: api.onResponse } : {}),
        downloads: api.downloads ?? clientDownloads(dataDir, version ?? packageVersion(), onDownloadsLog),
        onRevoke: ({ userId, tokenId: revoked }) => {
          if (revoked === undefined) relay.disconnect(userId)
          else void relay.revalidate(userId)
        },
      })
      await app.listen({ host: api.host, port: api.port })
      apiAddress = app.server.address() as AddressInfo
    }
    ops?.serve(relay)
  } catch (err) {
    acme?.close()
    await relay.close(0)
    await cluster?.close()
    await app?.close()
    await usage.close()
    await store.close()
    await ops?.close()
    throw err
  }
  return {
    relay,
    store,
    data,
    fingerprint: fingerprint(cert ?? data.cert),
    token,
    apiAddress,
    reload: reloader({ relay, store, tokens: staticTokens }),
    acme,
    ops,
    opsAddress,
    cluster,
    close: async (graceMs = 10_000) => {
      ops?.drain() // not ready first, while every listener still serves
      acme?.close()
      await app?.close()
      await relay.close(graceMs)
      await cluster?.close() // after the relay: its tunnels' keys are released, then this node's own
      await usage.close()
      await store.close()
      await ops?.close()
    },
  }
}

/** What the API lists beside the relay's own counters: each client connection, when each tunnel came up, and when its client left (while the relay waits for it). */
interface SeenClients { clients: Map<string, ClientInfo>, since: Map<string, number>, left: Map<string, number> }

function trackClients (relay: Relay, seen: SeenClients): void {
  relay.on('client', info => seen.clients.set(info.id, info))
  relay.on('client-closed', info => {
    seen.clients.delete(info.id)
    // The lease still names this connection here: its tunnels are the ones now waiting.
    for (const t of relay.tunnels) if (t.session === info.id) seen.left.set(t.key, Date.now())
  })
  relay.on('tunnel-up', t => {
    const key = `${t.client}:${t.id}`
    if (!seen.since.has(key)) seen.since.set(key, Date.now())
    seen.left.delete(key)
  })
  relay.on('tunnel-down', t => { seen.since.delete(`${t.client}:${t.id}`); seen.left.delete(`${t.client}:${t.id}`) })
}

/** The bundle from the package, and on a linux-x64 host the executable, made in `<data dir>/downloads` on first request. */
function clientDownloads (dataDir: string, version: string, log: ((line: string) => void) | undefined): ClientDownloads {
  if (executableUnsupported() !== undefined) return new ClientDownloads()
  return new ClientDownloads({ executable: new ClientExecutable({ dir: path.join(dataDir, 'downloads'), version, ...(log !== undefined ? { log } : {}) }) })
}

/** `<label>.<domain>` is a subdomain someone reserved (the store's reservations). */
async function reservedSubdomain (store: SqlStore, domain: string | undefined, name: string): Promise<boolean> {
  if (domain === undefined || !name.endsWith('.' + domain.toLowerCase())) return false
  const label = name.slice(0, -(domain.length + 1))
  return !label.includes('.') && await store.findReservation('subdomain', label) !== undefined
}

/** A self-signed wildcard certificate for `*.<domain>`, kept in the data dir like the control one. */
async function wildcardCertificate (dataDir: string, domain: string): Promise<{ httpsCert: string, httpsKey: string }> {
  const { cert, key } = await loadOrCreateCertificate(path.join(dataDir, 'https', domain), [`*.${domain}`, domain])
  return { httpsCert: cert, httpsKey: key }
}
