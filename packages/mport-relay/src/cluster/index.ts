/** Several relays behind one name: the Redis routing registry, the links between nodes, and a relay as one node. */
export { ClusterNode, type ClusterNodeOptions } from './cluster-node.js'
export { RedisRegistry, type RegistryOptions, type RouteRecord, type LeaseRecord, type TunnelClaim, type ClaimResult } from './registry.js'
export { superviseWorkers, isSupervisor, workerIndex, WORKER_ENV, type SupervisorLog } from './workers.js'
