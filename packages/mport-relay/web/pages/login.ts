/** Log in (or sign up, when the relay allows it) into the session cookie. */
import { call, type SessionState } from '../api.js'
import { field, fill, h, notice } from '../dom.js'

export function loginPage (main: HTMLElement, o: { onSession (s: SessionState): void }): void {
  const name = h('input', { name: 'name', autocomplete: 'username', required: true, maxlength: 64 })
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
  const status = h('div', { id: 'login-status' })
  const submit = async (path: string): Promise<void> => {
    fill(status)
    try {
      o.onSession(await call<SessionState>('POST', path, { name: name.value, password: password.value }))
    } catch (err) {
      fill(status, notice((err as Error).message))
    }
  }
  const form = h('form', { id: 'login', class: 'card narrow', onsubmit: (e: Event) => { e.preventDefault(); void submit('/v1/session') } },
    h('h1', {}, 'Log in'),
    field('User name', name),
    field('Password', password),
    h('button', { type: 'submit' }, 'Log in'),
    h('button', { type: 'button', class: 'secondary', id: 'signup', onclick: () => { void submit('/v1/session/signup') } }, 'Create an account'),
    h('p', { class: 'hint' }, 'Creating an account works only when the relay allows open sign-up.'),
    status)
  fill(main, form)
  name.focus()
}
