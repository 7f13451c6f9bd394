/**
 * A relay cluster's backends and nodes on loopback: one PostgreSQL (users, tokens, plans) and
 * one Redis (the routing registry), a user account with a token in the store, and relay
 * processes (`mport-relay` from source) joined to both. Used by test/cluster and bench/cluster.
 */
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { openStore } from '../../packages/mport-relay/src/store/index.js'
import { startPostgres } from './postgres.js'
import { startRedis, type RedisServer } from './redis.js'
import { BinProcess, tmpDir } from './spawn.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url))

export interface ClusterBackends {
  database: string
  redis: RedisServer
  /** A user account's id and raw token (plan: `maxTunnels` when given). */
  userId: string
  token: string
  /** The cluster key every node is started with (through the environment, never argv). */
  clusterKey: string
  stop (): Promise<void>
}

/** PostgreSQL with the store migrated and one user, and an empty Redis. */
export async function startClusterBackends (user = 'alice', plan: { maxTunnels?: number } = {}): Promise<ClusterBackends> {
  const pg = await startPostgres()
  const redis = await startRedis().catch(async err => { await pg.stop(); throw err })
  const database = await pg.createDatabase()
  // Migrations run here, once, before any node starts.
  const store = await openStore({ url: database })
  const account = await store.createUser({ name: user, password: 'correct horse battery' })
  if (plan.maxTunnels !== undefined) await store.setLimitOverrides(account.id, { maxTunnels: plan.maxTunnels })
  const { raw: token } = await store.createToken(account.id, 'laptop')
  await store.close()
  return {
    database,
    redis,
    userId: account.id,
    token,
    clusterKey: randomBytes(24).toString('base64url'),
    async stop () { await redis.stop(); await pg.stop() },
  }
}

/** One relay process of the cluster: control on 127.0.0.1, public ports on `bindHost`, the fixture certificate. */
export function startClusterRelay (b: ClusterBackends, node: string, opts: { bindHost?: string, domain: string, extra?: string[] }): BinProcess {
  return new BinProcess('mport-relay', [
    '--host', '127.0.0.1', '--port', '0', '--bind-host', opts.bindHost ?? '127.0.0.1', '--public-host', '127.0.0.1', '--ports', '30000-60999',
    '--data-dir', tmpDir(`mport-${node}-`), '--json', '--cert', path.join(FIXTURES, 'cert.pem'), '--key', path.join(FIXTURES, 'key.pem'),
    '--database', b.database, '--domain', opts.domain, '--http-port', '0',
    '--cluster-redis', b.redis.url, '--cluster-node', node, '--cluster-link-host', '127.0.0.1', '--cluster-link-port', '0', '--cluster-advertise', '127.0.0.1', '--cluster-ttl', '3',
    ...opts.extra ?? [],
  ], { env: { MPORT_CLUSTER_KEY: b.clusterKey } })
}
