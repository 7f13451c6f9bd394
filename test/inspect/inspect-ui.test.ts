/**
 * The inspector page in Debian's Chromium (playwright-core), used as a developer would: the
 * list fills from traffic through a real relay and updates live, the filters narrow it, the
 * detail shows JSON pretty-printed, an image and a hex dump, and Replay shows the service's
 * new response beside the old one. Screenshots of each step are kept in a temp dir (printed).
 * Without Chromium the test skips locally and fails under CI.
 */
import { existsSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { chromium, type Page } from 'playwright-core'
import { setup, visit } from './fixtures.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']

/** Waits until the list shows `n` rows (the filters apply on input). */
async function rowsAre (page: Page, n: number): Promise<void> {
  await page.waitForFunction(`document.querySelectorAll('#requests tbody tr').length === ${n}`)
}

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install -y chromium)`

t.test('list, live update, filters, detail and replay in a real browser', { skip: missing !== undefined && process.env.CI !== 'true' ? missing : false }, async t => {
  if (missing !== undefined) { t.fail(missing); return }
  const s = await setup()
  t.teardown(() => s.close())
  const shots = mkdtempSync(path.join(os.tmpdir(), 'mport-inspect-ui-'))
  t.comment(`screenshots in ${shots}`)

  await visit(s, '/json', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'world', items: [1, 2, 3] }) })
  await visit(s, '/image.png')
  await visit(s, '/binary')
  await visit(s, '/form', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=Ada+Lovelace&lang=en' })
  await visit(s, '/missing')

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 })
  t.teardown(() => browser.close())
  const page: Page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
  page.setDefaultTimeout(30_000)
  const errors: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
  await page.goto(`${s.api}/`)

  const rows = page.locator('#requests tbody tr')
  await rows.nth(4).waitFor()
  t.equal(await rows.count(), 5, 'five requests listed')
  t.equal(await rows.first().locator('.path').textContent(), '/missing', 'newest first')
  t.equal(await rows.first().locator('.status').textContent(), '404')
  await page.locator('#live.on').waitFor()
  t.match(await page.locator('#tunnels').textContent(), /shop\.tunnels\.test/, 'the tunnel is shown')
  await page.screenshot({ path: path.join(shots, '1-list.png') })

  // Live: a request sent while the page is open appears without a reload.
  await visit(s, '/live-update')
  await page.locator('#requests tbody tr', { hasText: '/live-update' }).waitFor()
  t.equal(await rows.count(), 6, 'the new request appeared live')

  // Filters.
  await page.selectOption('#filters [name=method]', 'POST')
  await rowsAre(page, 2)
  t.same(await page.locator('#requests tbody .path').allTextContents(), ['/form', '/json'], 'method filter')
  await page.selectOption('#filters [name=method]', '')
  await page.fill('#filters [name=status]', '4xx')
  await rowsAre(page, 1)
  t.same(await page.locator('#requests tbody .path').allTextContents(), ['/missing'], 'status filter')
  await page.fill('#filters [name=status]', '')
  await page.fill('#filters [name=path]', '/bin')
  await rowsAre(page, 1)
  await page.screenshot({ path: path.join(shots, '2-filtered.png') })
  await page.fill('#filters [name=path]', '')

  // Detail: a hex dump for binary, an image, a form as fields, JSON pretty-printed.
  await page.locator('#requests tbody tr', { hasText: '/binary' }).click()
  await page.locator('#original pre.hex').waitFor()
  t.match(await page.locator('#original pre.hex').textContent(), /^00000000 {2}00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f/, 'hex dump')
  await page.locator('#requests tbody tr', { hasText: '/image.png' }).click()
  const img = page.locator('#original img.body')
  await img.waitFor()
  await t.resolves(img.evaluate(e => (e as unknown as { decode (): Promise<void> }).decode()), 'the image decodes')
  t.equal(await img.evaluate(e => (e as unknown as { naturalWidth: number }).naturalWidth), 32, 'the PNG is shown')
  await page.screenshot({ path: path.join(shots, '3-image.png') })
  await page.locator('#requests tbody tr', { hasText: '/form' }).click()
  await page.locator('#original dl.form').waitFor()
  t.match(await page.locator('#original dl.form').textContent(), /nameAda Lovelace/, 'form fields decoded')
  await page.locator('#requests tbody tr', { hasText: '/json' }).click()
  await page.locator('#original pre.json').first().waitFor()
  t.match(await page.locator('#original pre.json').first().textContent(), /{\n {2}"hello": "world",\n {2}"items": \[/, 'JSON pretty-printed')
  await page.screenshot({ path: path.join(shots, '4-detail.png') })

  // Replay: the service is asked again; its new response is shown beside the old one.
  t.equal(s.app.hits.get('/json'), 1)
  await page.click('#replay')
  await page.locator('#replayed pre.json').last().waitFor()
  t.equal(s.app.hits.get('/json'), 2, 'the replay reached the service')
  t.match(await page.locator('#replayed').textContent(), /"count": 2/, 'the new response')
  t.match(await page.locator('#original').textContent(), /"count": 1/, 'the old response beside it')
  t.ok(await page.locator('#replayed').isVisible())
  await page.screenshot({ path: path.join(shots, '5-replay.png') })

  // Edit & replay: a changed body reaches the service.
  await page.click('#edit-replay')
  await page.fill('#replay-form [name=body]', '{"edited":true}')
  await page.click('#replay-form button[type=submit]')
  await page.locator('#replayed', { hasText: '"edited": true' }).waitFor()
  t.equal(s.app.hits.get('/json'), 3)
  t.equal(s.app.bodies.get('/json')?.toString(), '{"edited":true}')
  await page.screenshot({ path: path.join(shots, '6-edited-replay.png'), fullPage: true })
  t.same(errors, [], 'no errors in the page (CSP included)')
})
