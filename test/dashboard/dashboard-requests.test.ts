/**
 * An http tunnel's recent requests on the dashboard's tunnel page, in Debian's Chromium: a real
 * relay service, client and local web server; requests made through the relay's HTTP port show
 * up with method, path (no query string), status and sizes without a reload. Without Chromium
 * the test skips locally and fails under CI.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { Client } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { cert, certFingerprint, key } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'
import { chromiumMissing as missing, logIn, openPage } from '../helpers/browser.js'

/** One request through the relay's HTTP port for shop.mport.test; resolves with its status. */
function request (port: number, method: string, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: { host: 'shop.mport.test' } }, res => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
    req.on('error', reject)
    req.end()
  })
}

t.test('dashboard: an http tunnel\'s recent requests, live', { skip: missing !== undefined && process.env.CI !== 'true' ? missing : false }, async t => {
  if (missing !== undefined) { t.fail(missing); return }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-dashboard-requests-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0 }, domain: 'mport.test', httpPort: 0, leaseGrace: 200,
  })
  service.relay.on('warning', () => {})
  const web = http.createServer((req, res) => { res.writeHead(req.url === '/gone' ? 410 : 200, { 'content-type': 'text/plain' }); res.end('hello') })
  await new Promise<void>(resolve => web.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await service.close(100); web.close(); rmSync(dir, { recursive: true, force: true }) })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const { raw: token } = await service.store.createToken(alice.id, 'laptop')
  const client = new Client({
    relay: `127.0.0.1:${service.relay.address.port}`, token, fingerprint: certFingerprint, backoff: { initial: 50, max: 200 },
    tunnels: [{ name: 'shop', kind: 'http', localHost: '127.0.0.1', localPort: (web.address() as net.AddressInfo).port, remotePort: 0, subdomain: 'shop' }],
  })
  client.on('error', () => {})
  t.teardown(() => client.close())
  await client.start()

  const { page, errors } = await openPage(t)
  await logIn(page, `http://127.0.0.1:${service.apiAddress!.port}`, 'alice', 'correct horse battery')
  await page.locator('#tunnels tbody tr', { hasText: 'shop' }).locator('.name a').click()
  await page.locator('#facts .state').waitFor()

  const httpPort = service.relay.httpAddress!.port
  t.same([await request(httpPort, 'GET', '/cart?session=s3cr3t'), await request(httpPort, 'DELETE', '/gone')], [200, 410], 'the visitor got its answers')
  const rows = page.locator('#requests tbody tr')
  await waitFor(async () => await rows.count() === 2, { what: 'two requests listed on the tunnel page', timeoutMs: 30_000, intervalMs: 200 })
  t.same(await rows.locator('.method').allTextContents(), ['DELETE', 'GET'], 'newest first')
  t.same(await rows.locator('.path').allTextContents(), ['/gone', '/cart'], 'paths without the query string')
  t.same(await rows.locator('.status').allTextContents(), ['410', '200'], 'statuses')
  t.notOk((await page.content()).includes('s3cr3t'), 'the query string is nowhere on the page')
  t.same(errors, [], 'no script errors')
})
