/**
 * mport-relay: the relay as a service: the relay core with a persistent store of users,
 * tokens, plans and usage (SQLite or PostgreSQL) and the REST API over it.
 *
 * @packageDocumentation
 */
export { startRelayService, type RelayService, type RelayServiceOptions } from './service/relay-service.js'
export * from './store/index.js'
export * from './api/index.js'
export { RelayOps, RelayMetrics, CertificateExpiry, Readiness, type RelayOpsOptions, type RelayMetricsOptions, type ReadinessOptions, type ReadyState, type NotReadyReason } from './ops/index.js'
export {
  RELAY_SETTINGS, SETTING_NAMES, SETTING_ENV, settingFlags, readSettingsFile, settingProblem, resolveSettings, givenFlags, loadRelaySettings,
  printableSettings, shownValue, maskUrlPassword, snakeKey, serviceOptions, planDefaults,
  type SettingSpec, type SettingName, type SettingValues, type RelaySettings, type FileSettings, type SettingProblem, type SettingSources,
} from './config/relay-settings.js'
export { relayUsers } from './cli/relay-users.js'
