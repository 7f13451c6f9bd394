/**
 * `mport/cli`: what both command-line tools share: output (human or JSON lines), exit codes,
 * secret prompts and the account commands' plumbing. For the bins, not a stable library API.
 *
 * @packageDocumentation
 */
export { strayReporter, createPrinter, oneLine, formatBytes, formatStatus, packageVersion, lastValueWins, ExitCode, type Printer, type PrinterOptions } from './cli/output.js'
export {
  processIo, UsageError, ApiCallError, readStdinSecret, promptSecret, obtainPassword, formatTable, formatTime, lastWins,
  describeFailure, runAccountCommand, type CliIo,
} from './cli/account-io.js'
export { createLogger, resolveLogFormat, LOG_LEVELS, LOG_FORMATS, type LogLevel, type LogFormat, type LoggerOptions } from './cli/log.js'
export { SecretScrubber, MASK } from './cli/redact.js'
export { explainUsage, explainListenError, rawFlagValue, shownNumber, type ListenFlag } from './cli/usage.js'
