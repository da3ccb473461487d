// The client-go peer of `kubectl encryption rewrite` (bench/rewrite-loop, a Go module of its own),
// built once into .bench-cache/ and rebuilt only when its sources are newer than the binary.
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, statSync, utimesSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const moduleDir = path.join(root, 'bench', 'rewrite-loop')

/** The JSON line the loop prints on stdout. */
export interface GoLoopResult {
  listed: number
  updated: number
  conflicts: number
  notFound: number
  errors: number
  elapsedMs: number
}

/** Path of the built loop; builds it first when missing or older than main.go, go.mod or go.sum. */
export async function buildGoLoop(log: (m: string) => void): Promise<string> {
  const out = path.join(root, '.bench-cache', 'rewrite-loop')
  const sources = readdirSync(moduleDir)
    .filter((f) => (f.endsWith('.go') && !f.endsWith('_test.go')) || f === 'go.mod' || f === 'go.sum')
    .map((f) => statSync(path.join(moduleDir, f)).mtimeMs)
  if (existsSync(out) && statSync(out).mtimeMs > Math.max(...sources)) return out
  log('building the client-go loop (first time only)')
  mkdirSync(path.dirname(out), {recursive: true})
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['build', '-trimpath', '-o', out, '.'], {
      cwd: moduleDir,
      stdio: ['ignore', 'inherit', 'inherit'],
      // no VCS stamp: the bench builds from a worktree or a copy alike
      env: {...process.env, GOFLAGS: `${process.env.GOFLAGS ?? ''} -buildvcs=false`.trim()},
    })
    child.once('error', (e) => reject(new Error(`go build in bench/rewrite-loop: ${e.message} (is Go on PATH?)`)))
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`go build in bench/rewrite-loop failed with exit ${code}`)),
    )
  })
  // go build leaves an up-to-date binary untouched: mark it as checked now
  const now = new Date()
  utimesSync(out, now, now)
  return out
}
