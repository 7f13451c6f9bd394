/**
 * The checked-in API report (api/*.api.md) is what the build exports: an export added, removed
 * or changed shows up here first. After a deliberate change: `npm run build && npm run api`.
 * Every export carries a TSDoc summary.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { buildReport, ROOT, PACKAGES } from '../scripts/api-report.js'

t.test('the API report matches the build', async t => {
  const report = buildReport()
  t.equal(report.files.size, PACKAGES.length, 'one report per package')
  for (const [file, text] of report.files) {
    const checkedIn = existsSync(path.join(ROOT, file)) ? readFileSync(path.join(ROOT, file), 'utf8') : ''
    const a = checkedIn.split('\n')
    const b = text.split('\n')
    const first = a.findIndex((line, i) => line !== b[i])
    t.equal(checkedIn, text, `${file} is up to date${first < 0 ? '' : ` (first difference at line ${first + 1}: checked in ${JSON.stringify(a[first])}, built ${JSON.stringify(b[first])}); run npm run build && npm run api`}`)
  }
})

t.test('every export has a TSDoc summary', async t => {
  t.same(buildReport().undocumented, [], 'exports without a /** summary */ on their declaration')
})
