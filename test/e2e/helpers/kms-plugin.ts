// The sandbox's real KMS v2 plugin (test/sandbox/kube/cmd/sandbox-kms-plugin, Kubernetes' own
// k8s.io/kms gRPC service) started for one node, with helpers to rotate its key-encryption key, make
// it unhealthy and stop it.
import {spawn, type ChildProcess} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {sandbox, waitFor} from './sandbox.js'

export interface KmsPlugin {
  socket: string
  kekFile: string
  /** the key ID the plugin reports now ("kek-" + 16 hex of the KEK's SHA-256) */
  keyId(): string
  /** a new current KEK; older ones stay and still decrypt */
  rotate(): string
  /** Rewrites this plugin's KEK file from its key list (shared with other plugins via `keks`). */
  sync(): void
  setUnhealthy(message: string | undefined): void
  /** The process has not exited. */
  running(): boolean
  stop(): Promise<void>
}

const idOf = (key: Buffer) => `kek-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`

/**
 * Starts the plugin on `socket` (a host path; a node's /etc/kubernetes is <stateDir>/nodes/<node>/etc-kubernetes).
 * Plugins given the same `keks` array hold the same KEKs (as one KMS behind several nodes would), each
 * in its own file, so one can be made unhealthy alone; after `rotate()` on one, `sync()` the others.
 */
export async function startKmsPlugin(
  socket: string,
  options: {keks?: Buffer[]; binDir?: string} = {},
): Promise<KmsPlugin> {
  // binDir: for a caller outside vitest (bench/kms-scan.ts), which has no injected sandbox
  const binDir = options.binDir ?? sandbox().env.SANDBOX_BIN_DIR
  if (!binDir) throw new Error('SANDBOX_BIN_DIR missing from the sandbox env')
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-kms-'))
  const kekFile = join(dir, 'kek')
  const keks: Buffer[] = options.keks ?? []
  if (keks.length === 0) keks.push(randomBytes(32))
  const write = () => writeFileSync(kekFile, keks.map((k) => `${k.toString('base64')}\n`).join(''), {mode: 0o600})
  write()
  mkdirSync(dirname(socket), {recursive: true})
  rmSync(socket, {force: true})
  const child: ChildProcess = spawn(join(binDir, 'sandbox-kms-plugin'), ['--socket', socket, '--kek-file', kekFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += String(d)))
  await waitFor(
    `the KMS plugin to listen on ${socket}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`KMS plugin exited (${child.exitCode}): ${stderr}`)
      return existsSync(socket)
    },
    30_000,
    50,
  )
  return {
    socket,
    kekFile,
    keyId: () => idOf(keks[0]!),
    rotate: () => {
      keks.unshift(randomBytes(32))
      write()
      return idOf(keks[0]!)
    },
    sync: write,
    setUnhealthy: (message) => {
      if (message === undefined) rmSync(`${kekFile}.unhealthy`, {force: true})
      else writeFileSync(`${kekFile}.unhealthy`, message, {mode: 0o600})
    },
    running: () => child.exitCode === null && child.signalCode === null,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, {recursive: true, force: true})
      rmSync(socket, {force: true})
    },
  }
}
