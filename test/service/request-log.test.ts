/**
 * Recent HTTP requests (GET /v1/tunnels/:id/requests) through a real relay service, client and
 * local web server: keep-alive requests each listed with method, path (query string dropped),
 * status, sizes and the visitor's address, newest first, bounded per tunnel, owner only; a relay
 * keeping none (recentRequests: 0) lists none and reads no exchange.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { Client } from '../../src/index.js'
import { startRelayService, type RelayService } from '../../packages/mport-relay/src/index.js'
import { cert, certFingerprint, key } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'

interface Listed { method: string, path: string, status: number, durationMs: number, requestBytes: number, responseBytes: number, address: string }

async function relayWithWebTunnel (t: Test, recentRequests: number): Promise<{ service: RelayService, httpPort: number, list: (session?: string) => Promise<{ status: number, body: Listed[] }>, owner: string, other: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-requests-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0, recentRequests }, domain: 'mport.test', httpPort: 0, leaseGrace: 200,
  })
  service.relay.on('warning', () => {})
  const web = http.createServer((req, res) => {
    if (req.url?.startsWith('/missing') === true) { res.writeHead(404, { 'content-length': '9' }); res.end('not found'); return }
    req.resume()
    req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('hello from the service') }) // chunked
  })
  await new Promise<void>(resolve => web.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await service.close(100); web.close(); rmSync(dir, { recursive: true, force: true }) })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const bob = await service.store.createUser({ name: 'bob', password: 'another long password' })
  const owner = (await service.store.createSession(alice.id, 60_000)).raw
  const other = (await service.store.createSession(bob.id, 60_000)).raw
  const { raw } = await service.store.createToken(alice.id, 'laptop')
  const client = new Client({
    relay: `127.0.0.1:${service.relay.address.port}`, token: raw, fingerprint: certFingerprint, backoff: { initial: 50, max: 200 },
    tunnels: [{ name: 'web', kind: 'http', localHost: '127.0.0.1', localPort: (web.address() as net.AddressInfo).port, remotePort: 0, subdomain: 'shop' }],
  })
  client.on('error', () => {})
  t.teardown(() => client.close())
  await client.start()
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  const list = async (session = owner): Promise<{ status: number, body: Listed[] }> => {
    const r = await fetch(`${api}/v1/tunnels/${encodeURIComponent(service.relay.tunnels[0]!.key)}/requests`, { headers: { authorization: `Bearer ${session}` } })
    return { status: r.status, body: await r.json() as never }
  }
  return { service, httpPort: service.relay.httpAddress!.port, list, owner, other }
}

/** Sends `requests` one after another on one keep-alive connection to the relay's HTTP port; resolves with the statuses. */
async function keepAlive (port: number, requests: Array<{ method: string, path: string, body?: string }>): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const statuses: number[] = []
  try {
    for (const r of requests) {
      statuses.push(await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: r.method, path: r.path, agent, headers: { host: 'shop.mport.test' } }, res => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
        req.on('error', reject)
        req.end(r.body)
      }))
    }
  } finally {
    agent.destroy()
  }
  return statuses
}

t.test('recent requests: each exchange\'s metadata, newest first, bounded, owner only', async t => {
  const { httpPort, list, other } = await relayWithWebTunnel(t, 3)
  t.same((await list()).body, [], 'none yet')
  const statuses = await keepAlive(httpPort, [
    { method: 'GET', path: '/first' },
    { method: 'POST', path: '/orders?card=4111111111111111', body: 'x'.repeat(100) },
    { method: 'GET', path: '/missing/page' },
    { method: 'HEAD', path: '/head' },
  ])
  t.same(statuses, [200, 200, 404, 200], 'the visitor got its answers')
  await waitFor(async () => (await list()).body.length === 3 && (await list()).body[0]?.method === 'HEAD', { what: 'the last three requests listed' })
  const body = (await list()).body
  t.same(body.map(r => [r.method, r.path, r.status]), [['HEAD', '/head', 200], ['GET', '/missing/page', 404], ['POST', '/orders', 200]], 'newest first, at most 3 kept, the query string never kept')
  const post = body[2]!
  t.ok(post.requestBytes > 100, `the POST's size counts its 100-byte body (${post.requestBytes})`)
  t.ok(body[1]!.responseBytes >= 9, 'the 404 response with its body')
  t.ok(body.every(r => r.address === '127.0.0.1' && Number.isInteger(r.durationMs) && r.durationMs >= 0), 'the visitor\'s address and a duration')
  t.notOk(JSON.stringify(body).includes('4111'), 'nothing of the query string anywhere')
  t.equal((await list(other)).status, 404, 'another user: not found')
})

t.test('recent requests off (recentRequests: 0): none listed, and the relay reads no exchange', async t => {
  const { service, httpPort, list } = await relayWithWebTunnel(t, 0)
  t.equal(service.relay.listenerCount('http-exchange'), 0, 'nobody listens, so the front does not meter')
  t.same(await keepAlive(httpPort, [{ method: 'GET', path: '/a' }, { method: 'GET', path: '/b' }]), [200, 200])
  t.same((await list()).body, [], 'nothing kept')
})
