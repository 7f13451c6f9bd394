/** The terminal helpers of the account commands: a secret from stdin, the hidden prompt, tables. */
import { PassThrough } from 'node:stream'
import t from 'tap'
import { formatTable, promptSecret, readStdinSecret } from '../../src/cli/account-io.js'

t.test('stdin secrets, the hidden prompt, tables', async t => {
  const feed = (s: string): PassThrough => { const p = new PassThrough(); p.end(s); return p }
  t.equal(await readStdinSecret(feed('pw with spaces  \n')), 'pw with spaces  ', 'only the newline is stripped')
  await t.rejects(readStdinSecret(feed('\n')), /no password on stdin/)
  await t.rejects(readStdinSecret(feed('x'.repeat(70_000))), /longer than/)

  // The prompt without a terminal (raw mode is used only on a TTY): Backspace edits, Enter ends.
  const out = new PassThrough()
  let shown = ''
  out.on('data', (b: Buffer) => { shown += b.toString() })
  const input = new PassThrough()
  const answer = promptSecret(input, out, 'Password: ')
  input.write('secreX\u007ft')
  input.write('\r')
  t.equal(await answer, 'secret')
  t.equal(shown, 'Password: \n', 'the typed characters are not echoed')
  const cancelled = new PassThrough()
  const c = promptSecret(cancelled, new PassThrough(), '> ')
  cancelled.write('abc\u0003')
  await t.rejects(c, /cancelled/)

  t.equal(formatTable(['A', 'BB'], [['xxx', 'y'], ['z', 'w']]), 'A    BB\nxxx  y\nz    w')
})
