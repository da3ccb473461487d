// npm run sandbox                 start in the foreground; Ctrl-C stops everything
// npm run sandbox -- --detach     start in the background, return once ready (for scripts)
// npm run sandbox -- --down       stop the one running in the background (by recorded PIDs)
// npm run sandbox -- --build      only build (or find cached) the Kubernetes binaries, then exit
// options: --state-dir <dir> (default <repo>/.sandbox); SANDBOX_KUBE_VERSION selects the release
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, openSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {ensureKubeBinaries} from './kube-binaries.js'
import {defaultStateDir} from './layout.js'
import {startSandbox} from './sandbox.js'
import {readState, stopRecorded} from './state.js'

const self = fileURLToPath(import.meta.url)
const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const optionValue = (name: string) => {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`))
  if (i < 0) return undefined
  return argv[i]!.includes('=') ? argv[i]!.split('=').slice(1).join('=') : argv[i + 1]
}
const known = new Set(['--down', '--detach', '--build', '--state-dir', '--help', '-h'])
const unknown = argv.filter(
  (a, i) => a.startsWith('-') && !known.has(a.split('=')[0]!) && argv[i - 1] !== '--state-dir',
)
const stateDir = path.resolve(optionValue('--state-dir') ?? defaultStateDir)
const say = (m: string) => process.stderr.write(`sandbox: ${m}\n`)

async function main(): Promise<number> {
  if (flag('--help') || flag('-h')) {
    process.stdout.write('usage: npm run sandbox [-- --detach | --down | --build] [--state-dir DIR]\n')
    return 0
  }
  if (unknown.length > 0) {
    say(`unknown option ${unknown.join(' ')} (try --help)`)
    return 2
  }
  const stateFile = path.join(stateDir, 'state.json')
  if (flag('--down')) {
    const had = await stopRecorded(stateFile, say)
    say(had ? 'stopped' : `nothing running in ${stateDir}`)
    return 0
  }
  if (flag('--build')) {
    const bin = await ensureKubeBinaries(say)
    say(`Kubernetes ${bin.release.version} binaries in ${bin.binDir}`)
    return 0
  }
  // A cold build takes minutes: do it here, in the foreground, where its progress shows.
  await ensureKubeBinaries(say)
  if (flag('--detach')) return detach()

  const handle = await startSandbox({stateDir, log: say, ownerMarker: self})
  say(`ready in ${(handle.startupMs / 1000).toFixed(1)} s: nodes ${handle.nodes.join(', ')}`)
  say(`source ${handle.layout.envFile}`)
  say('Ctrl-C stops the sandbox')
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
    process.once('SIGHUP', resolve)
  })
  await handle.stop()
  return 0
}

/** Re-run this CLI in the foreground as a detached process; return once the env file exists. */
async function detach(): Promise<number> {
  const state = readState(path.join(stateDir, 'state.json'))
  if (state) {
    const {isOurs} = await import('./state.js')
    if (isOurs(state.ownerPid, state.ownerMarker)) {
      say(`already running (pid ${state.ownerPid}); source ${path.join(stateDir, 'env')}`)
      return 0
    }
  }
  const logDir = path.join(path.dirname(stateDir), `${path.basename(stateDir)}.log`)
  mkdirSync(path.dirname(logDir), {recursive: true})
  const out = openSync(logDir, 'w')
  const child = spawn(process.execPath, ['--import', 'tsx', self, '--state-dir', stateDir], {
    detached: true,
    stdio: ['ignore', out, out],
  })
  child.unref()
  const envFile = path.join(stateDir, 'env')
  const deadline = Date.now() + 300_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      say(`failed to start (exit ${child.exitCode}):\n${readFileSync(logDir, 'utf8')}`)
      return 1
    }
    const current = readState(path.join(stateDir, 'state.json'))
    if (current?.ownerPid === child.pid && existsSync(envFile)) {
      say(`running in the background (pid ${child.pid}); source ${envFile}; stop with: npm run sandbox -- --down`)
      return 0
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  say(`not ready after 300 s; log in ${logDir}`)
  return 1
}

main().then(
  (code) => process.exit(code),
  (error) => {
    say((error as Error).message)
    process.exit(1)
  },
)
