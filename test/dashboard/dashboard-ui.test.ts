/**
 * The relay's dashboard in Debian's Chromium (playwright-core), used as an owner would, against
 * a real relay service (store, API, relay on loopback) and real clients: log in; a tunnel
 * appears live when a client connects; its byte counter and live chart move while traffic
 * flows; the connect page makes a token and prints a command, which is run as printed and
 * brings its tunnel up; revoking that token on the tokens page disconnects the client and
 * the page shows it; a user sees no admin page; an admin sees users, all tunnels, health and
 * the audit log. Screenshots of the main pages go to docs/screenshots/ (the README shows them).
 * Without Chromium the test skips locally and fails under CI.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { chromium, type Page } from 'playwright-core'
import { Client } from '../../src/index.js'
import { VERSION } from '../../src/version.js'
import { startRelayService } from '../../packages/mport-relay/src/index.js'
import { cert, certFingerprint, key, startEcho } from '../helpers/tunnel.js'
import { REPO_ROOT, cleanup, spawnBin, type BinProcess } from '../helpers/spawn.js'
import { waitFor } from '../helpers/wait.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
const SHOTS = path.join(REPO_ROOT, 'docs/screenshots')
const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install -y chromium)`

/** Sends `size` bytes through the tunnel's public port on one connection and reads the echo back, leaving it open. */
async function echoThrough (port: number, size: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  let got = 0
  const done = new Promise<void>(resolve => socket.on('data', (c: Buffer) => { got += c.length; if (got >= size) resolve() }))
  socket.write(Buffer.alloc(size, 7))
  await done
  return socket
}

/** True when a visitor to `port` is closed on without getting its bytes back (refused by the relay). */
async function refusedVisitor (port: number): Promise<boolean> {
  const socket = net.connect(port, '127.0.0.1')
  let got = 0
  socket.on('data', (c: Buffer) => { got += c.length })
  socket.on('error', () => {})
  socket.on('connect', () => socket.write('knock'))
  await new Promise(resolve => socket.once('close', resolve))
  return got === 0
}

/** Polls a page check (bounded, with a clear message). */
async function until (check: () => Promise<boolean>, what: string): Promise<void> {
  await waitFor(check, { what, timeoutMs: 60_000, intervalMs: 100 })
}

/** Form controls on the page with no accessible name (no label, no aria-label), by name. */
async function unlabelled (page: Page): Promise<string[]> {
  const out: string[] = []
  for (const el of await page.locator('input, select, textarea').all()) {
    const named = await el.evaluate((e: { labels: { length: number } | null, getAttribute (n: string): string | null }) => (e.labels?.length ?? 0) > 0 || e.getAttribute('aria-label') !== null)
    if (!named) out.push(await el.getAttribute('name') ?? '?')
  }
  return out
}

/** The number in a cell's data-bytes. */
async function cellBytes (page: Page, selector: string): Promise<number> {
  return Number(await page.locator(selector).getAttribute('data-bytes'))
}

t.test('dashboard: login, live tunnels, traffic, connect a machine, revoke, admin', { skip: missing !== undefined && process.env.CI !== 'true' ? missing : false }, async t => {
  if (missing !== undefined) { t.fail(missing); return }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mport-dashboard-'))
  const service = await startRelayService({
    dataDir: dir, host: '127.0.0.1', port: 0, bindHost: '127.0.0.1', publicHost: '127.0.0.1', portRange: { min: 30000, max: 60999 },
    cert, key, api: { host: '127.0.0.1', port: 0 }, ops: { host: '127.0.0.1', port: 0 }, accountingInterval: 100, usageFlushInterval: 200, leaseGrace: 300,
  })
  service.relay.on('warning', () => {})
  const echo = await startEcho()
  const sockets: net.Socket[] = []
  const procs: BinProcess[] = []
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await cleanup()
    await service.close(100)
    await echo.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const alice = await service.store.createUser({ name: 'alice', password: 'correct horse battery' })
  await service.store.createUser({ name: 'root', password: 'admin password 1', role: 'admin' })
  await service.store.setLimitOverrides(alice.id, { monthlyBytes: 64 * 1024 * 1024 })
  const api = `http://127.0.0.1:${service.apiAddress!.port}`
  mkdirSync(SHOTS, { recursive: true })

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  page.setDefaultTimeout(30_000)
  const errors: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  page.on('console', msg => { if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(msg.text()) })
  // Answers the pages got that were not 2xx/3xx: each one expected (tallied below).
  const refused: string[] = []
  page.on('response', r => { if (r.status() >= 400) refused.push(`${r.status()} ${new URL(r.url()).pathname}`) })

  // ---- Log in ----
  await page.goto(`${api}/`)
  await page.getByLabel('User name').fill('alice')
  await page.getByLabel('Password').fill('wrong password')
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.locator('#login-status [role=alert]').waitFor()
  t.match(await page.locator('#login-status').textContent(), /wrong user name or password/, 'a wrong password is refused on the page')
  await page.screenshot({ path: path.join(SHOTS, 'login.png') })
  await page.getByLabel('Password').fill('correct horse battery')
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.locator('#no-tunnels:not([hidden])').waitFor()
  await page.locator('#live.on').waitFor()
  t.equal(await page.locator('nav#nav a', { hasText: 'Admin' }).count(), 0, 'no Admin link for a user')
  const cookies = await context.cookies()
  const session = cookies.find(c => c.name === 'mport_session')
  t.ok(session?.httpOnly === true && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict')
  t.equal(await page.evaluate('document.cookie'), '', 'the page\'s script cannot read it')

  // ---- A tunnel appears live when a real client connects ----
  const { raw: laptopToken } = await service.store.createToken(alice.id, 'laptop')
  const client = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: laptopToken, tunnels: [{ name: 'echo', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0 }], fingerprint: certFingerprint, backoff: { initial: 50, max: 200 } })
  client.on('error', () => {})
  t.teardown(() => client.close())
  await client.start()
  const row = page.locator('#tunnels tbody tr', { hasText: 'echo' })
  await row.waitFor()
  t.equal(await row.locator('.state').textContent(), 'up')
  const port = service.relay.tunnels.find(x => x.name === 'echo')!.port
  t.match(await row.locator('.address code').textContent(), new RegExp(`:${port}$`), 'the public address')
  t.equal(await row.locator('.client').textContent(), `127.0.0.1mport-connect/${VERSION}`, 'the client\'s address and software (its hello\'s agent)')

  // ---- Bytes move while traffic flows (the connection stays open) ----
  sockets.push(await echoThrough(port, 256 * 1024))
  await until(async () => await cellBytes(page, '#tunnels tbody tr .bytes-in') >= 256 * 1024, 'the page to count the first 256 KiB')
  t.equal(await row.locator('.connections').textContent(), '1', 'one open connection')
  const listed = service.relay.tunnels.find(x => x.name === 'echo')!
  t.ok(await cellBytes(page, '#tunnels tbody tr .bytes-in') <= listed.bytesIn, 'the page shows the relay\'s own counter')
  sockets.push(await echoThrough(port, 512 * 1024))
  await until(async () => await cellBytes(page, '#tunnels tbody tr .bytes-in') >= 768 * 1024, 'the page to count the next 512 KiB')
  t.pass('the byte counter moved with the second transfer')
  await page.screenshot({ path: path.join(SHOTS, 'tunnels.png') })
  const phone = await context.newPage()
  await phone.setViewportSize({ width: 390, height: 844 })
  await phone.goto(`${api}/#/tunnels`)
  await phone.locator('#tunnels tbody tr', { hasText: 'echo' }).waitFor()
  await phone.screenshot({ path: path.join(SHOTS, 'tunnels-phone.png') })
  await phone.close()

  // ---- The detail page's live chart moves with traffic ----
  await row.locator('.name a').click()
  await page.locator('#facts .state', { hasText: 'up' }).waitFor()
  const moreTraffic = setInterval(() => { void echoThrough(port, 64 * 1024).then(s => { sockets.push(s); s.end() }, () => {}) }, 300)
  t.teardown(() => clearInterval(moreTraffic))
  await until(async () => Number(await page.locator('#live-chart').getAttribute('data-max')) > 0, 'a non-zero rate on the live chart')
  t.pass('the live chart plotted a non-zero rate')
  // The usage buckets (flushed every 200 ms here) reach the history chart.
  // The page reloads the history every 15 s; choosing the range again reloads it at once.
  await waitFor(async () => {
    await page.selectOption('#range', 'hour')
    await page.dispatchEvent('#range', 'change')
    return Number(await page.locator('#history-chart').getAttribute('data-max')) > 0
  }, { what: 'the usage buckets on the history chart', timeoutMs: 60_000, intervalMs: 500 })
  t.pass('the history chart shows the usage buckets')
  clearInterval(moreTraffic)
  await page.locator('#visitors tbody tr td.address', { hasText: '127.0.0.1' }).first().waitFor()
  t.pass('the finished visitor connections are listed on the tunnel page')
  await page.screenshot({ path: path.join(SHOTS, 'tunnel-detail.png'), fullPage: true })

  // ---- Connect a machine: a token, the printed command, run as printed ----
  await page.goto(`${api}/#/connect`)
  await page.getByLabel('Token name').fill('nas')
  await page.getByLabel('Local port').fill(String(echo.port))
  await page.getByRole('button', { name: 'Create token and show command' }).click()
  const command = (await page.locator('#command').textContent())!
  t.match(command, new RegExp(`^curl -fsSLO ${api.replace(/\./g, '\\.')}/dl/mport-connect\\.mjs && MPORT_TOKEN=mpt_\\S+ node mport-connect\\.mjs `), 'download from this relay; the token rides in the environment, not in the arguments')
  t.match(command, new RegExp(`mport-connect(\\.mjs)? ${echo.port} --relay 127\\.0\\.0\\.1:${service.relay.address.port}`), 'the relay address and the port')
  const aliceSession = (await service.store.createSession(alice.id, 60_000)).raw
  const info = await (await fetch(`${api}/v1/connect-info`, { headers: { authorization: `Bearer ${aliceSession}` } })).json() as { executable?: { name: string } }
  if (info.executable !== undefined) {
    t.match(await page.locator('#executable-command').textContent(), new RegExp(`&& chmod \\+x ${info.executable.name} && MPORT_TOKEN=mpt_\\S+ \\./${info.executable.name} ${echo.port} --relay `), 'the executable\'s command, as this relay offers one')
  } else {
    t.equal(await page.locator('#executable-command').count(), 0, 'no executable command where the relay offers none')
  }
  t.same(await unlabelled(page), [], 'every control on the connect page has a label')
  await page.screenshot({ path: path.join(SHOTS, 'connect.png') })
  t.match(await page.locator('#connect-result').textContent(), new RegExp(`certificate ${service.fingerprint}`), 'the certificate fingerprint to check')
  const nas = runPrinted(command)
  procs.push(nas)
  await waitFor(() => service.relay.tunnels.some(x => x.principal === 'alice' && x.name !== 'echo'), { what: 'the printed command\'s tunnel on the relay', timeoutMs: 60_000, diag: () => nas.output })
  await page.goto(`${api}/#/tunnels`)
  await until(async () => await page.locator('#tunnels tbody tr[data-state=up]').count() === 2, 'two tunnels up on the page')
  t.pass('the new machine\'s tunnel is up on the page')

  // ---- Revoke that token: the client is disconnected and the page shows it ----
  await page.goto(`${api}/#/tokens`)
  await page.getByRole('button', { name: 'Revoke nas' }).click()
  await page.locator('#tokens-status', { hasText: 'revoked' }).waitFor()
  await page.locator('#tokens tr[data-name=nas] .token-state', { hasText: /^revoked/ }).waitFor()
  t.pass('the token is listed as revoked')
  const exit = await nas.waitExit(60_000)
  t.equal(exit.code, 1, 'the disconnected client exits 1')
  t.match(nas.stderr, /authentication failed: wrong or revoked token \[MPORT_ERR_AUTH_FAILED\]/, 'and says why')
  await page.goto(`${api}/#/tunnels`)
  await until(async () => await page.locator('#tunnels tbody tr').count() === 1, 'the revoked machine\'s tunnel to leave the page')
  t.pass('the revoked machine\'s tunnel left the page')
  await page.goto(`${api}/#/tokens`)
  await page.locator('#tokens tr[data-name=nas]').waitFor()
  await page.getByLabel('Name').fill('ci-week')
  await page.getByLabel('Expires').selectOption('168')
  await page.getByRole('button', { name: 'Create token' }).click()
  await page.locator('#new-token').waitFor()
  t.match(await page.locator('#new-token').textContent(), /^mpt_/, 'the new token is shown once')
  await page.locator('#tokens tr[data-name=ci-week] .token-state', { hasText: /^active, expires / }).waitFor()
  t.pass('listed as active, with its expiry')
  const week = (await service.store.listTokens(alice.id)).find(x => x.name === 'ci-week')
  t.ok(week?.expiresAt !== null && week!.expiresAt! > Date.now() + 167 * 3_600_000, 'stored with its expiry, a week out')
  await page.screenshot({ path: path.join(SHOTS, 'tokens.png') })

  // ---- Account: usage against the quota ----
  await page.goto(`${api}/#/account`)
  await page.locator('#quota').waitFor()
  t.ok(Number(await page.locator('#quota').getAttribute('value')) > 0, 'the quota bar shows the month\'s bytes')
  t.same(await unlabelled(page), [], 'every control on the account page has a label')
  await page.screenshot({ path: path.join(SHOTS, 'account.png'), fullPage: true })

  // ---- "Allow my current IP" on a tunnel whose client allows only 10.0.0.0/8 ----
  const { raw: privateToken } = await service.store.createToken(alice.id, 'private')
  const restricted = new Client({ relay: `127.0.0.1:${service.relay.address.port}`, token: privateToken, tunnels: [{ name: 'private', localHost: '127.0.0.1', localPort: echo.port, remotePort: 0, allowIp: ['10.0.0.0/8'] }], fingerprint: certFingerprint, backoff: { initial: 50, max: 200 } })
  restricted.on('error', () => {})
  t.teardown(() => restricted.close())
  await restricted.start()
  const priv = service.relay.tunnels.find(x => x.name === 'private')!
  t.ok(await refusedVisitor(priv.port), 'a visitor from 127.0.0.1 is refused at first')
  await page.goto(`${api}/#/tunnels/${encodeURIComponent(priv.key)}`)
  await page.locator('#access .filter', { hasText: 'allow 10.0.0.0/8' }).waitFor()
  await page.getByLabel('Hours').fill('2')
  await page.getByRole('button', { name: 'Allow my current IP' }).click()
  await page.locator('#grants li', { hasText: '127.0.0.1' }).waitFor()
  const allowed = await echoThrough(priv.port, 16)
  allowed.destroy()
  t.pass('after "Allow my current IP", the same visitor gets through')
  await page.screenshot({ path: path.join(SHOTS, 'allow-ip.png') })
  await restricted.close()

  // ---- A user reaches no admin page ----
  await page.goto(`${api}/#/admin`)
  await page.locator('main h1', { hasText: 'Not found' }).waitFor()
  t.pass('#/admin is not a page for a user')

  // ---- Admin ----
  const adminContext = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const admin = await adminContext.newPage()
  admin.setDefaultTimeout(30_000)
  await admin.goto(`${api}/`)
  // With the keyboard only: the name field has the focus, Tab to the password, Enter submits.
  await admin.locator('#login input[name=name]:focus').waitFor()
  await admin.keyboard.type('root')
  await admin.keyboard.press('Tab')
  await admin.keyboard.type('admin password 1')
  await admin.keyboard.press('Enter')
  await admin.locator('nav#nav a', { hasText: 'Admin' }).click()
  await admin.locator('#users tr[data-name=alice]').waitFor()
  t.same(await unlabelled(admin), [], 'every control on the users page has a label')
  await admin.locator('#new-user').getByLabel('Name').fill('carol')
  await admin.locator('#new-user').getByLabel('Password').fill('carol password 1')
  await admin.getByRole('button', { name: 'Create user' }).click()
  await admin.locator('#users tr[data-name=carol]').waitFor()
  await admin.getByRole('button', { name: 'Disable carol' }).click()
  await admin.locator('#users tr[data-name=carol] .user-state', { hasText: 'disabled' }).waitFor()
  t.ok((await service.store.listUsers()).find(u => u.name === 'carol')?.disabledAt !== null, 'carol was created, then disabled, in the store')
  await admin.getByRole('button', { name: 'Plan of alice' }).click()
  await admin.getByLabel('maxTunnels (empty: the default)').fill('5')
  await admin.getByRole('button', { name: 'Save plan' }).click()
  await admin.locator('#users-status', { hasText: 'Plan of alice saved.' }).waitFor()
  t.equal((await service.store.getLimitOverrides(alice.id)).maxTunnels, 5, 'alice\'s plan override is stored')
  await admin.screenshot({ path: path.join(SHOTS, 'admin-users.png'), fullPage: true })
  await admin.goto(`${api}/#/admin/tunnels`)
  await admin.locator('#all-tunnels tbody tr', { hasText: 'alice' }).waitFor()
  await admin.goto(`${api}/#/admin/health`)
  await admin.locator('#health .tunnels').waitFor()
  t.equal(await admin.locator('#health .tunnels').textContent(), String(service.relay.tunnels.length), 'health counts the relay\'s tunnels')
  await admin.screenshot({ path: path.join(SHOTS, 'admin-health.png') })
  await admin.goto(`${api}/#/admin/audit`)
  await admin.locator('#audit td.action', { hasText: 'token.revoke' }).waitFor()
  await admin.screenshot({ path: path.join(SHOTS, 'admin-audit.png') })

  t.same(errors, [], 'no script errors on the pages')
  t.same([...new Set(refused)], ['401 /v1/session'], 'the only refusals: the session before login and the wrong password')
})

/** Runs the command the connect page printed, as printed, in a shell in an empty dir (a fresh HOME: trust on first use). */
function runPrinted (command: string): BinProcess {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'mport-machine-'))
  return spawnBin('mport-connect', [], { command: { file: '/bin/sh', args: ['-c', command], cwd } })
}
