/** The relay's operations side: Prometheus metrics, readiness, and the ops listener that serves them. */
export { RelayOps, type RelayOpsOptions } from './relay-ops.js'
export { RelayMetrics, DEFAULT_MAX_TUNNEL_SERIES, DEFAULT_MAX_USER_SERIES, type RelayMetricsOptions } from './metrics.js'
export { CertificateExpiry } from './certificate-expiry.js'
export { Readiness, type ReadinessOptions, type ReadyState, type NotReadyReason } from './readiness.js'
export { startOpsServer, type OpsServer, type OpsServerOptions } from './ops-server.js'
export { BoundedLabels, OTHER } from './bounded-labels.js'
export { healthSummary, bucketQuantile, type HealthSummary } from './health-summary.js'
