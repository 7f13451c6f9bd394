/**
 * mport-connect: the client's command line beyond the tunnel itself: `login`, `logout` and
 * `tokens` against a relay's REST API, with the credentials file they keep, `forget` for
 * the store of trusted relay certificates, the check of the client's config file, and the
 * inspector of http tunnels' traffic (recorder, local web UI and JSON API, replay).
 *
 * @packageDocumentation
 */
export { connectAccount, credentialsPath, readCredentials, normalizeApi, loginForRelay, type StoredSession, type StoredTunnelToken, type LoginForRelay, type CredentialsFile } from './account-commands.js'
export { forgetRelay, type ForgetResult } from './forget.js'
export { validateClientConfig, CLIENT_CONFIG_KEYS, type ClientFileConfig } from './config/client-config.js'
export { parseTunnelList, parseTunnelObject, TUNNEL_KEYS, type SecretSources } from './config/tunnel-entries.js'
export { reloadLine, restartLine } from './config/reload-lines.js'
export { Inspector, INSPECTOR_DEFAULTS, type InspectorOptions, type InspectorEvents } from './inspect/inspector.js'
export { InspectServer, type InspectServerOptions, type InspectedTunnel } from './inspect/inspect-server.js'
export { inspectedTunnels } from './inspect/inspected-tunnels.js'
export { CappedBody, type Exchange, type ExchangeState, type ExchangeTimes, type RecordedMessage, type RecordedRequest, type RecordedResponse, type WebSocketSummary } from './inspect/exchange.js'
export type { FrameSummary } from './inspect/websocket-frames.js'
export { summarize, type ExchangeSummary, type ExchangeDetail, type BodyJson, type MessageJson, type ExchangeFilter } from './inspect/exchange-json.js'
export type { ReplayEdits } from './inspect/replay.js'
export { INSPECT_FLAGS, inspectSettings, parseByteSize, parseInspectAddr, createInspector, serveInspector, type InspectSettings, type RunningInspector } from './inspect/inspect-settings.js'
export { StatusDisplay, type StatusDisplayOptions } from './status/status-display.js'
export { renderStatus, type StatusModel, type ScreenTunnel, type ScreenRequest } from './status/status-screen.js'
export { TerminalScreen, type ScreenOutput, type TerminalScreenOptions } from './status/terminal-screen.js'
