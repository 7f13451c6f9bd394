/**
 * `mport/config`: config files (YAML or JSON) checked key by key, and secrets that never print.
 *
 * @packageDocumentation
 */
export { loadConfigFile, checkKnownKeys, closest } from './config/file.js'
export { Secret } from './config/secret.js'
