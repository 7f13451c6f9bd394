/**
 * The whole relay as the mport-relay command runs it, for embedding too: the data directory
 * (certificate, built-in token), the store (SQLite in the data dir, or PostgreSQL), user
 * accounts and plans enforced by the relay, usage recorded in batches, and the REST API on
 * its own listener. Closing it drains the relay, then flushes usage and closes the store.
 */
import { isIPv6, type AddressInfo } from 'node:net'
import type { createApi } from '../api/index.js'
import { RelayOps, type RelayOpsOptions } from '../ops/index.js'
import { openStore, StoreAuthenticator, StoreRelayPolicy, UsageRecorder, type SqlStore } from '../store/index.js'
import { fingerprint, loadOrCreateCertificate } from 'mport/transport'
import { AnyAuthenticator, StaticTokens, tokenId } from 'mport/relay'
import { prepareRelayData, type RelayData } from 'mport/relay'
import { Relay, type RelayOptions } from 'mport/relay'
import type { PlanLimits } from 'mport/relay'
import path from 'node:path'

/** The relay's options plus the data dir, the database, plans and the REST API listener. */
export interface RelayServiceOptions extends Omit<RelayOptions, 'cert' | 'key' | 'authenticator' | 'policy'> {
  dataDir: string
  /** Control-listener certificate; default: the data dir's self-signed one. */
  cert?: string
  key?: string
  /** The relay's own access token; default: the data dir's generated one. */
  token?: string
  /** `postgres://…` or a SQLite path; default `mport.db` in the data dir. */
  database?: string
  /** The REST API's listener; none: no API. */
  api?: { host: string, port: number, openSignup?: boolean }
  /** The ops listener (/metrics, /healthz, /readyz) and its metrics; none: neither. */
  ops?: RelayOpsOptions
  /** Plan defaults for user accounts (unset: unlimited); per-user overrides live in the store. */
  planDefaults?: Partial<PlanLimits>
  /** How often usage counters are written (default 10 s). */
  usageFlushInterval?: number // ms
  version?: string
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
  /** Metrics and readiness, when the ops listener is on; `ops.metrics.certificates.set(name, pem)` registers a certificate served. */
  ops: RelayOps | undefined
  /** Where the ops listener listens, when it is on. */
  opsAddress: AddressInfo | undefined
  /** Drains: readiness drops first, then the API and the relay close, the ops listener last. */
  close (graceMs?: number): Promise<void>
}

/** `host:port` as clients write it (IPv6 literals bracketed). */
function controlAddress (host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** Starts the whole relay service (data dir, store, relay, usage recorder, REST API) and returns it once listening. */
export async function startRelayService (opts: RelayServiceOptions): Promise<RelayService> {
  const { dataDir, cert, key, token: givenToken, database, api, ops: opsOpts, usageFlushInterval, version, planDefaults, ...relayOpts } = opts
  const data = await prepareRelayData(dataDir, [opts.publicHost ?? 'localhost'])
  const token = givenToken ?? data.token
  const ops = opsOpts !== undefined ? new RelayOps(opsOpts) : undefined
  const opened = await openStore({ ...(database !== undefined ? { url: database } : { dataDir }), ...(planDefaults !== undefined ? { defaults: planDefaults } : {}) })
  const store = ops?.store(opened) ?? opened // timed, when there are metrics
  const usage = new UsageRecorder(store, { flushIntervalMs: usageFlushInterval ?? 10_000 })
  const storeAuth = new StoreAuthenticator(store)
  const storePolicy = new StoreRelayPolicy(store, usage, storeAuth, [tokenId(token)])
  let https: { httpsCert?: string, httpsKey?: string } = {}
  if (opts.domain !== undefined && opts.httpsPort !== undefined && opts.httpsCert === undefined) {
    https = await wildcardCertificate(dataDir, opts.domain)
  }
  const relay = new Relay({
    ...relayOpts,
    ...https,
    cert: cert ?? data.cert,
    key: key ?? data.key,
    authenticator: new AnyAuthenticator(new StaticTokens([{ token, principal: { id: 'owner', name: 'owner' } }]), storeAuth),
    policy: ops?.policy(storePolicy) ?? storePolicy,
  })
  ops?.metrics.certificates.set('control', cert ?? data.cert)
  const httpsCert = https.httpsCert ?? opts.httpsCert
  if (httpsCert !== undefined && opts.httpsPort !== undefined) ops?.metrics.certificates.set('https', httpsCert)
  let app: Awaited<ReturnType<typeof createApi>> | undefined
  let apiAddress: AddressInfo | undefined
  let opsAddress: AddressInfo | undefined
  try {
    opsAddress = await ops?.listen() // before the relay: /healthz answers and /readyz says "starting" meanwhile
    await relay.listen()
    if (api !== undefined) {
      const { createApi } = await import('../api/index.js') // fastify only when the API is on
      app = await createApi({
        store,
        openSignup: api.openSignup ?? false,
        ...(version !== undefined ? { version } : {}),
        relayAddress: controlAddress(opts.publicHost ?? 'localhost', relay.address.port),
        relayInfo: () => relay.tunnels.map(t => ({
          id: t.key, name: t.name, userId: t.principalId, userName: t.principal, port: t.port,
          ...(t.url !== undefined ? { url: t.url } : {}), online: t.online, connections: t.connections, bytesIn: t.bytesIn, bytesOut: t.bytesOut,
        })),
        closeTunnel: id => relay.closeTunnel(id),
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
    await relay.close(0)
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
    ops,
    opsAddress,
    close: async (graceMs = 10_000) => {
      ops?.drain() // not ready first, while every listener still serves
      await app?.close()
      await relay.close(graceMs)
      await usage.close()
      await store.close()
      await ops?.close()
    },
  }
}

/** A self-signed wildcard certificate for `*.<domain>`, kept in the data dir like the control one. */
async function wildcardCertificate (dataDir: string, domain: string): Promise<{ httpsCert: string, httpsKey: string }> {
  const { cert, key } = await loadOrCreateCertificate(path.join(dataDir, 'https', domain), [`*.${domain}`, domain])
  return { httpsCert: cert, httpsKey: key }
}
