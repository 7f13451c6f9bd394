/**
 * mport-relay: the relay as a service: the relay core with a persistent store of users,
 * tokens, plans and usage (SQLite or PostgreSQL) and the REST API over it.
 *
 * @packageDocumentation
 */
export { startRelayService, type RelayService, type RelayServiceOptions } from './service/relay-service.js'
export type { RelayReload, RelayReloadResult } from './service/relay-reload.js'
export { RelayTokens, namedTokenPrincipal, type NamedToken, type RemovedToken } from './service/relay-tokens.js'
export { reloadSettings, type ReloadSource, type ReloadOutcome } from './config/relay-reload.js'
export * from './store/index.js'
export * from './api/index.js'
export { RelayOps, RelayMetrics, CertificateExpiry, Readiness, type RelayOpsOptions, type RelayMetricsOptions, type ReadinessOptions, type ReadyState, type NotReadyReason } from './ops/index.js'
export {
  RELAY_SETTINGS, SETTING_NAMES, SETTING_ENV, settingFlags, readSettingsFile, settingProblem, resolveSettings, givenFlags, loadRelaySettings,
  printableSettings, shownValue, maskUrlPassword, snakeKey, serviceOptions, planDefaults, isLive, flagValues, fileOnlyValues, FILE_ONLY_SETTINGS, LIST_SETTINGS,
  type SettingFlag, type NamedTokenSetting, type SettingSpec, type SettingName, type SettingValues, type RelaySettings, type FileSettings, type SettingProblem, type SettingSources,
} from './config/relay-settings.js'
export { relayUsers } from './cli/relay-users.js'
export { AcmeCertificates, type AcmeCertificatesOptions, type AcmeSettings, type AcmeStats, type AcmeClock, type StoredPair } from './acme/index.js'
export { logRelayEvents, logApiRequests, databasePassword, relaySecrets, type RelayLogOptions } from './log/relay-log.js'
export { ClientDownloads, sha256sums, CLIENT_BUNDLE, CLIENT_EXECUTABLE, BUNDLE_MIN_NODE, DEFAULT_DOWNLOAD_DIR, type ClientFile, type ClientDownloadsOptions, type ExecutableSource } from './downloads/client-downloads.js'
export { ClientExecutable, executableUnsupported, SEA_FUSE, type ClientExecutableOptions } from './downloads/client-executable.js'
