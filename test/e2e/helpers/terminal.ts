// Runs `kubectl encryption …` on a real pseudo-terminal, as a user at a keyboard would: util-linux
// `script` (part of every Debian install) opens the pty, so stdin and stderr of the plugin are a
// terminal. Keys are typed only once the question is on the screen.
import {spawn} from 'node:child_process'

import {pluginOutputs, pluginPath} from './plugin.js'
import {sandbox} from './sandbox.js'

export interface TerminalRun {
  code: number
  /** What the user saw: colour and cursor escapes and carriage returns taken out. */
  screen: string
  /** Raw bytes written to the terminal while the question waited for the answer. */
  whileAsking: string
}

export interface TerminalOptions {
  /** `stty cols/rows` before the command; without it the pty has no size (0×0), as `script` gives it. */
  size?: {cols: number; rows: number}
  /** Typed once `after` shows on the screen. */
  type: {after: string; keys: string}
  /** Appended to the command inside the pty, e.g. `> file` to send stdout somewhere else. */
  redirect?: string
  timeoutMs?: number
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`)
export const plainScreen = (raw: string) => raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')

export function onTerminal(args: string[], options: TerminalOptions): Promise<TerminalRun> {
  const command = [
    options.size ? `stty cols ${options.size.cols} rows ${options.size.rows};` : '',
    'exec kubectl encryption',
    ...args.map(quote),
    options.redirect ?? '',
  ].join(' ')
  // CI would switch the spinner off; on a terminal a user has no CI variable.
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...sandbox().env,
    PATH: pluginPath(),
    TERM: process.env.TERM ?? 'xterm',
  }
  delete env.CI
  const child = spawn('script', ['-qefc', command, '/dev/null'], {env, stdio: ['pipe', 'pipe', 'pipe']})
  let raw = ''
  let askedAt = -1
  let whileAsking = ''
  child.stdout.on('data', (chunk: Buffer) => {
    raw += chunk.toString()
    if (askedAt < 0 && plainScreen(raw).includes(options.type.after)) {
      askedAt = raw.length
      // a moment with the question on the screen: a spinner still running would redraw here
      setTimeout(() => {
        whileAsking = raw.slice(askedAt)
        child.stdin.write(options.type.keys)
      }, 600)
    }
  })
  child.stderr.on('data', (chunk: Buffer) => (raw += chunk.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      child.stdin.destroy()
      const screen = plainScreen(raw)
      pluginOutputs.push(screen)
      resolve({code: code ?? 128, screen, whileAsking})
    }),
  )
}
