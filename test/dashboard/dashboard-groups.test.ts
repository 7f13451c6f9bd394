/**
 * A load-balancing group on the dashboard, in Debian's Chromium: two real clients join one
 * group on a real relay service; the tunnels page says how many members take visitors, and the
 * tunnel page lists each member with its state; when one member's client leaves, the tunnels
 * page shows that only one member takes visitors, without a reload. Without Chromium the test skips locally and fails under CI.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { Client, type TunnelSpec } from '../../src/index.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { cert, certFingerprint, key, startEcho } from '../helpers/tunnel.js'
import { waitFor } from '../helpers/wait.js'
import { chromiumMissing as missing, logIn, openPage } from '../helpers/browser.js'

t.test('dashboard: a load-balancing group\'s members and their states, live', { skip: missing !== undefined && process.env.CI !== 'true' ? missing : false }, async t => {
  if (missing !== undefined) { t.fail(missing); return }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-dashboard-groups-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0 }, leaseGrace: 60_000,
  })
  service.relay.on('warning', () => {})
  const echo = await startEcho()
  t.teardown(async () => {
    await service.close(100)
    await echo.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  const { raw: token } = await service.store.createToken(alice.id, 'servers')
  const spec: TunnelSpec = { name: 'web', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0, group: 'web' }
  const clients = [0, 1].map(() => {
    const c = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token, tunnels: [spec], fingerprint: certFingerprint, backoff: { initial: 50, max: 200 } })
    c.on('error', () => {})
    t.teardown(() => c.close())
    return c
  })
  for (const c of clients) await c.start()

  const { page, errors } = await openPage(t)
  await logIn(page, `http://127.0.0.1:${service.apiAddress!.port}`, 'alice', 'correct horse battery')

  // One row per member tunnel, each naming the group and its two ready members.
  const rows = page.locator('#tunnels tbody tr', { hasText: 'web' })
  await waitFor(async () => await rows.count() === 2, { what: 'a row for each member tunnel', timeoutMs: 30_000, intervalMs: 100 })
  t.match(await rows.first().locator('.group').textContent(), /group web \(round robin\): 2 of 2 taking visitors/, 'the tunnels page says how many members take visitors')

  await rows.first().locator('.name a').click()
  const members = page.locator('table.members tbody tr')
  await waitFor(async () => await members.count() === 2, { what: 'the tunnel page to list both members', timeoutMs: 30_000, intervalMs: 100 })
  t.same(await members.locator('.state .badge').allTextContents(), ['ready', 'ready'], 'both members ready')
  t.same(await members.locator('.client').allTextContents(), ['127.0.0.1', '127.0.0.1'], 'each member\'s client address')

  // One client leaves. The relay keeps its place within the lease grace (the address survives a
  // client restart) but sends it no visitor. Back on the tunnels page (a hash change, not a
  // reload), the push channel shows it.
  await page.goto(`http://127.0.0.1:${service.apiAddress!.port}/#/tunnels`)
  await waitFor(async () => await rows.count() === 2, { what: 'the tunnels page again', timeoutMs: 30_000, intervalMs: 100 })
  await clients[1]!.close()
  await waitFor(async () => (await rows.locator('.state .badge').allTextContents()).sort().join() === 'reconnecting,up', { what: 'one member tunnel shown reconnecting', timeoutMs: 30_000, intervalMs: 100 })
  t.same((await rows.locator('.group').allTextContents()).map(x => /(\d) of (\d)/.exec(x)?.slice(1).join('/')), ['1/2', '1/2'], 'both rows say 1 of 2 members takes visitors, without a reload')
  t.same(errors, [], 'no script errors')
})
