/** The relay's REST API (fastify, OpenAPI 3). */
export { createApi, apiRoutes, toHttpError, type ApiOptions, type LiveTunnel, type Caller } from './app.js'
