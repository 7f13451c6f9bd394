/** The relay's REST API (fastify, OpenAPI 3). */
export { createApi, apiRoutes, type ApiOptions, type ApiRequestLog, type LiveTunnel, type LiveTunnelGroup, type Caller, type RelayHealth, type RecentRequest, type RecentVisitor } from './app.js'
export { API_STATUS, statusFor, toHttpError } from './status.js'
