/**
 * The relay hands out its own client, for machines where npm is slow or blocked:
 *
 *   GET /dl/mport-connect.mjs         the client in one file (needs only Node), public
 *   GET /dl/mport-connect-linux-x64   a Linux x64 executable, when this relay offers one
 *   GET /dl/SHA256SUMS                `sha256sum -c --ignore-missing SHA256SUMS` checks a download
 *   GET /v1/connect-info              (user) the relay address, its certificate fingerprint, the
 *                                     downloads with size and SHA-256, and ready command lines
 *
 * The files are public like the npm packages they come from: nothing in them is secret. The
 * command lines carry no token; the caller (the dashboard's "Connect a machine" page) adds one.
 */
import { createReadStream } from 'node:fs'
import { isIPv6 } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { UnavailableError } from 'mport/errors'
import { CLIENT_BUNDLE, CLIENT_EXECUTABLE, ClientDownloads, sha256sums, type ClientFile } from '../downloads/client-downloads.js'
import type { ApiContext } from './context.js'
import { errors, secured } from './schemas.js'

/** A host (with port) safe to put in a command line; anything else falls back to the listener's address. */
const SAFE_HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/

const binary = (type: string, description: string): Record<string, unknown> => ({ description, content: { [type]: { schema: { type: 'string', format: 'binary' } } } })

/** Headers that let a user check a download and a cache revalidate it (the URL names no version, so: no-cache + ETag). */
function fileHeaders (reply: FastifyReply, f: ClientFile, version: string): void {
  void reply
    .header('content-type', f.contentType)
    .header('content-length', f.size)
    .header('etag', `"sha256-${f.sha256}"`)
    .header('x-content-sha256', f.sha256)
    .header('last-modified', new Date(f.mtimeMs).toUTCString())
    .header('cache-control', 'public, no-cache')
    .header('content-disposition', `attachment; filename="${f.name}"`)
    .header('x-content-type-options', 'nosniff')
    .header('x-mport-version', version)
}

/** Sends the file, or 304 when the caller's copy is this one. */
function sendFile (req: FastifyRequest, reply: FastifyReply, f: ClientFile, version: string): FastifyReply {
  fileHeaders(reply, f, version)
  const seen = req.headers['if-none-match']
  if (seen !== undefined && seen.split(',').map(s => s.trim()).includes(`"sha256-${f.sha256}"`)) {
    void reply.removeHeader('content-length')
    return reply.code(304).send()
  }
  // HEAD: the headers (size, checksum) without reading the file.
  return req.method === 'HEAD' ? reply.send() : reply.send(createReadStream(f.path))
}

/** The origin the caller reached the API on, for download URLs (the socket's own address when the Host header is not a plain host). */
function origin (req: FastifyRequest): string {
  if (SAFE_HOST.test(req.host)) return `${req.protocol}://${req.host}`
  const { localAddress = '127.0.0.1', localPort } = req.socket
  return `${req.protocol}://${isIPv6(localAddress) ? `[${localAddress}]` : localAddress}:${localPort}`
}

const downloadSchema = {
  type: 'object',
  required: ['name', 'url', 'size', 'sha256', 'runsOn'],
  properties: {
    name: { type: 'string', example: CLIENT_BUNDLE },
    url: { type: 'string' },
    size: { type: 'integer', description: 'bytes' },
    sha256: { type: 'string', description: 'hex SHA-256 of the file (also in SHA256SUMS and the x-content-sha256 header)' },
    runsOn: { type: 'string', example: 'Node >= 20.19' },
  },
} as const

export const connectInfoSchema = {
  type: 'object',
  required: ['version', 'relay', 'fingerprint', 'pinFingerprint', 'downloads', 'sha256sums', 'commands'],
  properties: {
    version: { type: 'string', description: 'The relay\'s version; the downloaded client prints the same with --version.' },
    relay: { type: 'string', description: 'The control address clients connect to (host:port): mport-connect --relay.' },
    fingerprint: { type: 'string', description: 'SHA-256 of the control certificate, sha256:<hex>: mport-connect --fingerprint.' },
    pinFingerprint: { type: 'boolean', description: 'true when the certificate is the relay\'s self-signed one: clients must pin it (the commands do). false: a certificate the clients\' CAs verify.' },
    downloads: { type: 'array', items: downloadSchema, description: 'The client files there now, with size and SHA-256.' },
    executable: {
      type: 'object',
      required: ['name', 'url', 'ready'],
      description: 'Present when this relay offers a Linux x64 executable; it is made on this host, so it may not be ready yet (the first download waits for it).',
      properties: { name: { type: 'string', example: CLIENT_EXECUTABLE }, url: { type: 'string' }, ready: { type: 'boolean' } },
    },
    sha256sums: { type: 'string', description: 'URL of SHA256SUMS.' },
    commands: {
      type: 'object',
      required: ['npx'],
      description: 'Ready command lines for one tcp tunnel to the local port asked for, without a token: add --token <token> (or set MPORT_TOKEN).',
      properties: {
        npx: { type: 'string', description: 'With npm: npx mport-connect …' },
        download: { type: 'string', description: 'Without npm (Node only): download mport-connect.mjs and run it.' },
        verify: { type: 'string', description: 'Check the downloaded file against SHA256SUMS.' },
        executable: { type: 'string', description: 'Without Node (Linux x64): download the executable and run it.' },
      },
    },
  },
} as const

export function downloadRoutes (app: FastifyInstance, ctx: ApiContext): void {
  const { opts } = ctx
  const downloads = opts.downloads ?? new ClientDownloads()

  /** A file route: public, with ETag revalidation and a typed 404 when the file is not there. */
  const fileRoute = (name: string, summary: string, type: string, get: () => Promise<ClientFile>): void => {
    // HEAD of its own: fastify's automatic one would read the whole file to discard it.
    app.route({
      method: ['GET', 'HEAD'],
      url: `/dl/${name}`,
      config: { auth: 'public' },
      schema: {
        tags: ['downloads'],
        summary,
        response: { 200: binary(type, 'The file; ETag and x-content-sha256 carry its SHA-256.'), 304: { description: 'The caller\'s copy (If-None-Match) is this one.', type: 'null' }, ...errors(404) },
      },
      handler: async (req, reply) => sendFile(req, reply, await get(), opts.version),
    })
  }
  fileRoute(CLIENT_BUNDLE, 'The client in one file: `curl -fsSLO …/dl/mport-connect.mjs && node mport-connect.mjs 5555 --relay … --fingerprint …` with only Node >= 20.19.',
    'text/javascript', () => downloads.bundle())
  fileRoute(CLIENT_EXECUTABLE, 'The client as a Linux x64 executable (Node built in, ~100 MB), when this relay offers it; made on the relay host on first use, so the first download waits for it.',
    'application/octet-stream', () => downloads.executable())

  app.get('/dl/SHA256SUMS', {
    config: { auth: 'public' },
    schema: {
      tags: ['downloads'],
      summary: 'SHA-256 of each client file there now, in sha256sum\'s format: `sha256sum -c --ignore-missing SHA256SUMS`.',
      response: { 200: { description: 'One "<hex>  <name>" line per file.', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  }, async (_req, reply) => reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'public, no-cache').send(sha256sums(await downloads.available())))

  app.get<{ Querystring: { port: number } }>('/v1/connect-info', {
    config: { auth: 'user' },
    schema: {
      tags: ['relay'],
      summary: 'What a client needs to connect to this relay: its address, its certificate fingerprint, the client downloads and ready command lines (without a token).',
      security: secured,
      querystring: { type: 'object', additionalProperties: false, properties: { port: { type: 'integer', minimum: 1, maximum: 65535, default: 5555, description: 'The local port the command lines expose.' } } },
      response: { 200: connectInfoSchema, ...errors(400, 401, 503) },
    },
  }, async req => {
    if (opts.relayAddress === undefined || opts.relayCertificate === undefined) throw new UnavailableError('connect info (the relay\'s address and certificate)')
    const base = origin(req)
    const { fingerprint, selfSigned } = opts.relayCertificate
    const args = `${req.query.port} --relay ${opts.relayAddress}${selfSigned ? ` --fingerprint ${fingerprint}` : ''}`
    const files = await downloads.available()
    const url = (name: string): string => `${base}/dl/${name}`
    const bundle = files.find(f => f.name === CLIENT_BUNDLE)
    const exeReady = files.some(f => f.name === CLIENT_EXECUTABLE)
    return {
      version: opts.version,
      relay: opts.relayAddress,
      fingerprint,
      pinFingerprint: selfSigned,
      downloads: files.map(f => ({ name: f.name, url: url(f.name), size: f.size, sha256: f.sha256, runsOn: f.runsOn })),
      ...(downloads.offersExecutable ? { executable: { name: CLIENT_EXECUTABLE, url: url(CLIENT_EXECUTABLE), ready: exeReady } } : {}),
      sha256sums: url('SHA256SUMS'),
      commands: {
        npx: `npx mport-connect ${args}`,
        ...(bundle !== undefined
          ? {
              download: `curl -fsSLO ${url(CLIENT_BUNDLE)} && node ${CLIENT_BUNDLE} ${args}`,
              verify: `curl -fsSLO ${url('SHA256SUMS')} && sha256sum -c --ignore-missing SHA256SUMS`,
            }
          : {}),
        ...(downloads.offersExecutable ? { executable: `curl -fsSLO ${url(CLIENT_EXECUTABLE)} && chmod +x ${CLIENT_EXECUTABLE} && ./${CLIENT_EXECUTABLE} ${args}` } : {}),
      },
    }
  })
}
