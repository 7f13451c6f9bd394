/**
 * Debian's Chromium for the page tests, through playwright-core (never a browser download):
 * why it is missing, a page in a fresh headless browser closed at teardown, and the
 * dashboard's login as a user would do it.
 */
import { existsSync } from 'node:fs'
import type { Test } from 'tap'
import { chromium, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
/** Why the page tests cannot run here, or undefined. */
export const chromiumMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install -y chromium)`

/** A page in a new headless Chromium (closed at teardown), collecting the script errors it sees. */
export async function openPage (t: Test): Promise<{ page: Page, errors: string[] }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  page.setDefaultTimeout(30_000)
  const errors: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  return { page, errors }
}

/** Logs in on the dashboard at `api` as `user`. */
export async function logIn (page: Page, api: string, user: string, password: string): Promise<void> {
  await page.goto(`${api}/`)
  await page.getByLabel('User name').fill(user)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Log in' }).click()
}
