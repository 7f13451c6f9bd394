/** Assertions on what a bin printed: one-line failures without stack traces. */
import type { Test } from 'tap'

/** The first line of a Node stack frame, as printed under an error. */
export const STACK_LINE = /^ {4}at /m

/** Exactly one non-empty line on stderr, matching `re`, and no stack trace. */
export function oneStderrLine (tt: Test, stderr: string, re: RegExp, what: string): void {
  const lines = stderr.split('\n').filter(l => l.trim() !== '')
  tt.equal(lines.length, 1, `${what}: exactly one line on stderr, got ${JSON.stringify(stderr)}`)
  tt.match(lines[0] ?? '', re, `${what}: the line says why`)
  tt.notMatch(stderr, STACK_LINE, `${what}: no stack trace`)
}
