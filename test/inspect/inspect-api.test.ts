/**
 * The inspector on real traffic: undici visitors → a real relay (domain, shared HTTP port) →
 * a real client → a node:http service. The exchanges in the JSON API carry the right headers,
 * bodies (JSON, binary, chunked, over the cap), status and ordered timings; filters work;
 * replay reaches the service again (counted there) and returns its new response; the API
 * refuses other Hosts and cross-origin POSTs; the ring stays within its bounds over 10,000
 * requests.
 */
import { Readable } from 'node:stream'
import t from 'tap'
import { Pool } from 'undici'
import type { ExchangeDetail, ExchangeSummary } from '../../packages/mport-connect/src/inspect/exchange-json.js'
import { waitFor } from '../helpers/wait.js'
import { api, BIG, BINARY, setup, visit, type Setup } from './fixtures.js'
import { tcpSpec } from '../helpers/tunnel.js'

async function listed (s: Setup, query = ''): Promise<ExchangeSummary[]> {
  return (await api<{ requests: ExchangeSummary[] }>(s, `/api/requests${query}`)).json.requests
}

/** The detail of the newest exchange for `path`, once it is no longer pending. */
async function settled (s: Setup, path: string): Promise<ExchangeDetail> {
  let found: ExchangeSummary | undefined
  await waitFor(async () => {
    found = (await listed(s)).find(e => e.url === path && e.state !== 'pending')
    return found !== undefined
  }, { what: `a finished exchange for ${path} in the inspector`, timeoutMs: 30_000, intervalMs: 20 })
  return (await api<ExchangeDetail>(s, `/api/requests/${found!.id}`)).json
}

function header (m: { headers: Array<[string, string]> }, name: string): string | undefined {
  return m.headers.find(([n]) => n.toLowerCase() === name)?.[1]
}

t.test('exchanges through a real relay: headers, bodies, status, timings, filters', async t => {
  const s = await setup({}, [{ ...tcpSpec(1), name: 'secure', kind: 'tls', subdomain: 'secure' }])
  t.teardown(() => s.close())

  const json = await visit(s, '/json?q=1', { method: 'POST', headers: { 'content-type': 'application/json', 'x-test': 'yes' }, body: JSON.stringify({ hello: 'world' }) })
  t.equal(json.status, 200)
  const bin = await visit(s, '/binary')
  t.same(bin.body, BINARY)
  const chunked = await visit(s, '/chunked')
  t.equal(chunked.body.toString(), 'one,two,three')
  t.equal(chunked.headers['transfer-encoding'], 'chunked', 'the service answered chunked')
  const big = await visit(s, '/big')
  t.equal(big.body.length, BIG, 'the visitor got the whole body: the tap never changes the bytes')
  const upload = Buffer.alloc(BIG, 0x41)
  await visit(s, '/form', { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: Readable.from([upload.subarray(0, 500_000), upload.subarray(500_000)]) })
  t.equal(s.app.bodies.get('/form')?.length, BIG, 'the service got the whole upload')
  t.equal((await visit(s, '/missing')).status, 404)

  const dj = await settled(s, '/json?q=1')
  t.equal(dj.method, 'POST')
  t.equal(dj.tunnel, 'shop')
  t.equal(dj.status, 200)
  t.equal(dj.state, 'complete')
  t.equal(header(dj.request, 'x-test'), 'yes', 'the visitor\'s header')
  t.equal(header(dj.request, 'host'), s.host)
  t.equal(header(dj.request, 'x-forwarded-for'), '127.0.0.1', 'the relay\'s header, as the service saw it')
  t.same(dj.request.body, { size: 17, kept: 17, truncated: false, contentType: 'application/json', encoding: 'utf8', data: '{"hello":"world"}' })
  t.same(JSON.parse(dj.response!.body.data), { got: { hello: 'world' }, count: 1 })
  t.equal(header(dj.response!, 'content-type'), 'application/json')
  t.ok(dj.ttfbMs! >= 0 && dj.durationMs! >= dj.ttfbMs!, `time to first byte ${dj.ttfbMs} ≤ total ${dj.durationMs}`)
  t.ok(dj.times.requestEndMs! <= dj.times.firstByteMs! && dj.times.firstByteMs! <= dj.times.endMs!, 'request end ≤ first byte ≤ end')

  const db = await settled(s, '/binary')
  t.equal(db.response!.body.encoding, 'base64')
  t.same(Buffer.from(db.response!.body.data, 'base64'), BINARY, 'binary body exact')

  const dc = await settled(s, '/chunked')
  t.equal(header(dc.response!, 'transfer-encoding'), 'chunked')
  t.equal(dc.response!.body.data, 'one,two,three', 'chunked body decoded')

  const dbig = await settled(s, '/big')
  t.same({ size: dbig.response!.body.size, kept: dbig.response!.body.kept, truncated: dbig.response!.body.truncated }, { size: BIG, kept: 1024 * 1024, truncated: true }, 'over the cap: counted, 1 MiB kept')
  t.equal(dbig.responseBytes, BIG)
  const dup = await settled(s, '/form')
  t.same({ size: dup.request.body.size, kept: dup.request.body.kept }, { size: BIG, kept: 1024 * 1024 }, 'request body over the cap')

  // Every request went over one keep-alive connection.
  const all = await listed(s)
  t.equal(all.length, 6)
  t.equal(new Set(all.map(e => e.connection)).size, 1, 'one visitor connection, six exchanges')
  t.same(all.map(e => e.id), [...all.map(e => e.id)].sort((a, b) => b - a), 'newest first')

  t.same((await listed(s, '?method=post')).map(e => e.url), ['/json?q=1'])
  t.same((await listed(s, '?status=4xx')).map(e => e.url), ['/missing'])
  t.same((await listed(s, '?status=200&path=/bi')).map(e => e.url), ['/big', '/binary'], 'status and path together, newest first')
  t.equal((await api(s, '/api/requests?status=abc')).status, 400, 'a bad status filter is a 400')

  const tunnels = (await api<{ tunnels: Array<{ name: string, kind: string, notInspected?: string, url?: string }> }>(s, '/api/tunnels')).json.tunnels
  t.equal(tunnels.find(x => x.name === 'shop')?.notInspected, undefined)
  t.match(tunnels.find(x => x.name === 'secure')?.notInspected, /ciphertext/, 'a tls tunnel says it cannot be inspected')
})

t.test('replay hits the local service again and returns its new response; edits', async t => {
  const s = await setup()
  t.teardown(() => s.close())
  await visit(s, '/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })
  const original = await settled(s, '/json')
  t.equal(s.app.hits.get('/json'), 1)

  const r1 = await api<ExchangeDetail>(s, `/api/requests/${original.id}/replay`, { method: 'POST', body: {} })
  t.equal(r1.status, 200)
  t.equal(s.app.hits.get('/json'), 2, 'the service was asked again')
  t.equal(r1.json.replayOf, original.id)
  t.equal(r1.json.status, 200)
  t.same(JSON.parse(r1.json.response!.body.data), { got: { n: 1 }, count: 2 }, 'the new response, not the old one')
  t.equal(header(r1.json.response!, 'x-served-count'), '2')

  const r2 = await api<ExchangeDetail>(s, `/api/requests/${original.id}/replay`, { method: 'POST', body: { path: '/json?edited=1', headers: [['Content-Type', 'application/json'], ['X-Edited', '1']], body: '{"n":2}' } })
  t.equal(r2.status, 200)
  t.same(JSON.parse(r2.json.response!.body.data), { got: { n: 2 }, count: 3 }, 'the edited body reached the service')
  t.equal(r2.json.url, '/json?edited=1')
  t.equal(header(r2.json.request, 'X-Edited'.toLowerCase()), '1')
  t.ok((await listed(s)).some(e => e.id === r2.json.id && e.replayOf === original.id), 'the replay is in the list')

  t.equal((await api(s, `/api/requests/${original.id}/replay`, { method: 'POST', body: { method: 'G E T' } })).status, 400, 'a bad method is refused')
  const unknown = await api<{ error: string, code: string }>(s, `/api/requests/${original.id}/replay`, { method: 'POST', body: { colour: 'red' } })
  t.same([unknown.status, unknown.json.code], [400, 'MPORT_ERR_INVALID_REPLAY'], 'an unknown field is refused')
  t.match(unknown.json.error, /unknown replay field "colour"/)
  t.equal((await api(s, '/api/requests/999999/replay', { method: 'POST', body: {} })).status, 404)
  t.equal(s.app.hits.get('/json'), 3, 'refused replays sent nothing')

  // A body over the cap cannot be replayed as it was (only 1 MiB was kept).
  await visit(s, '/form', { method: 'POST', body: Buffer.alloc(BIG, 1) })
  const big = await settled(s, '/form')
  const refused = await api<{ error: string }>(s, `/api/requests/${big.id}/replay`, { method: 'POST', body: {} })
  t.equal(refused.status, 409)
  t.equal((refused.json as unknown as { code: string }).code, 'MPORT_ERR_REPLAY_UNAVAILABLE')
  t.match(refused.json.error, /only 1048576 were kept/)
})

t.test('only this inspector\'s Host and origin are served (DNS rebinding, cross-site POSTs)', async t => {
  const s = await setup()
  t.teardown(() => s.close())
  await visit(s, '/x')
  const e = await settled(s, '/x')
  const port = new URL(s.api).port
  const raw = (path: string, headers: Record<string, string>, method = 'GET'): Promise<number> => new Promise((resolve, reject) => {
    import('node:http').then(({ default: http }) => {
      const req = http.request({ host: '127.0.0.1', port, path, method, headers, setHost: false }, res => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end(method === 'POST' ? '{}' : undefined)
    }, reject)
  })
  t.equal(await raw('/api/requests', { host: `evil.example:${port}` }), 403, 'a rebinding name is refused')
  t.equal(await raw('/api/requests', { host: `localhost:${port}` }), 200)
  t.equal(await raw(`/api/requests/${e.id}/replay`, { host: `127.0.0.1:${port}`, origin: 'http://evil.example', 'content-type': 'application/json' }, 'POST'), 403, 'a cross-origin POST is refused')
  t.equal(s.app.hits.get('/x'), 1, 'nothing was replayed')
  const page = await fetch(`${s.api}/`)
  t.match(page.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/)
  t.match(await page.text(), /<title>mport inspector<\/title>/)
})

t.test('the ring stays within its bounds under 10,000 requests', async t => {
  const maxExchanges = 300
  const maxBytes = 512 * 1024
  const s = await setup({ maxExchanges, maxBytes, bodyLimit: 64 * 1024 })
  t.teardown(() => s.close())
  let most = { exchanges: 0, bytes: 0 }
  s.inspector.on('exchange', () => {
    const u = s.inspector.usage
    most = { exchanges: Math.max(most.exchanges, u.exchanges), bytes: Math.max(most.bytes, u.bytes) }
  })
  const TOTAL = 10_000
  let next = 0
  // 8 keep-alive connections, each sending its requests one after another.
  const pool = new Pool(`http://127.0.0.1:${s.relay.httpAddress!.port}`, { connections: 8 })
  t.teardown(() => pool.close())
  const worker = async (): Promise<void> => {
    while (next < TOTAL) {
      const i = next++
      const body = i % 50 === 0 ? Buffer.alloc(100_000, 0x61) : `n=${i}`
      const r = await visit(s, `/n/${i}`, { method: 'POST', body }, pool)
      if (r.status !== 200) throw new Error(`request ${i}: status ${r.status}`)
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  await waitFor(() => s.inspector.list().every(e => e.state !== 'pending'), { what: 'every exchange finished', timeoutMs: 30_000 })
  const u = s.inspector.usage
  t.ok(most.exchanges <= maxExchanges, `never over ${maxExchanges} exchanges (most ${most.exchanges})`)
  t.ok(most.bytes <= maxBytes, `never over ${maxBytes} bytes (most ${most.bytes})`)
  t.ok(u.exchanges > 0 && u.exchanges <= maxExchanges)
  const ids = s.inspector.list().map(e => e.id)
  t.equal(Math.max(...ids), TOTAL, 'the newest request is kept')
  t.equal(s.app.hits.size, TOTAL, 'the service saw every request')
  t.comment(`ring after ${TOTAL} requests: ${u.exchanges} exchanges, ${u.bytes} bytes; most ${most.exchanges} / ${most.bytes}`)
})
