/**
 * An etcd snapshot file opened for reading, offline: `etcdutl snapshot status` first (a file that is
 * not a snapshot, or is truncated, fails here with a clear error), `etcdutl snapshot restore` into a
 * private temporary data dir, then a throw-away `etcd` on loopback over that dir, read with the
 * DirectEtcdReader. Closing stops etcd and removes the dir; so do errors and SIGINT/SIGTERM.
 *
 * The real binaries do the work (no bbolt parser of our own): they know every snapshot format etcd
 * ever wrote. Nothing of the snapshot's contents reaches argv; the temp dir is 0700.
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {constants} from 'node:fs'
import {access, mkdtemp, rm, stat} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {delimiter, join, resolve} from 'node:path'

import {PluginError, preconditionError} from '../errors.js'
import {DirectEtcdReader} from './direct-etcd-reader.js'
import type {EtcdKeyValue, EtcdRangeOptions, EtcdReader, EtcdReaderInfo} from './etcd-reader.js'

/** What `etcdutl snapshot status` says about the file, and how it was restored. */
export interface SnapshotInfo {
  /** The path as given. */
  file: string
  /** Size of the file in bytes. */
  bytes: number
  /** The etcd revision the snapshot was taken at. */
  revision: number
  /** Keys in the snapshot (all revisions etcd still held), as etcdutl counts them. */
  totalKeys: number
  /** The etcd version that wrote it, when etcdutl knows it. */
  etcdVersion?: string
  /** The sha256 `etcdctl snapshot save` appends was checked; false for a copied `member/snap/db`. */
  integrityChecked: boolean
}

export interface OpenedSnapshot {
  info: SnapshotInfo
  reader: EtcdReader
  /** Stops the temporary etcd and removes its data dir. */
  close(): Promise<void>
}

/** Opens a snapshot file for reading; the scan operation sees only this (tests give a fake). */
export interface SnapshotOpener {
  open(file: string, options?: {onProgress?: (text: string) => void}): Promise<OpenedSnapshot>
}

export interface SnapshotBinaryOptions {
  /** --etcdutl */
  etcdutl?: string
  /** --etcd-binary */
  etcd?: string
  env?: NodeJS.ProcessEnv
}

/** Environment variables that name the binaries when the flags do not. */
export const ETCDUTL_ENV = 'KUBECTL_ENCRYPTION_ETCDUTL'
export const ETCD_ENV = 'KUBECTL_ENCRYPTION_ETCD'

const isExecutable = async (path: string) => {
  try {
    const info = await stat(path)
    if (!info.isFile()) return false
    await access(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The binary a flag, then an environment variable, then PATH names; a clear exit 3 when none. */
export async function findBinary(
  name: 'etcdutl' | 'etcd',
  flag: string,
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const envName = name === 'etcdutl' ? ETCDUTL_ENV : ETCD_ENV
  const code = name === 'etcdutl' ? 'ETCDUTL_NOT_FOUND' : 'ETCD_BINARY_NOT_FOUND'
  const explicit = given
    ? {path: given, from: `${flag} ${given}`}
    : env[envName]
      ? {path: env[envName]!, from: `${envName}=${env[envName]}`}
      : undefined
  if (explicit) {
    if (await isExecutable(explicit.path)) return explicit.path
    throw preconditionError(code, `${explicit.from} is not an executable file`, {
      hint: `Pass the path of the ${name} binary of an etcd release.`,
    })
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && (await isExecutable(join(dir, name)))) return join(dir, name)
  }
  throw preconditionError(code, `${name} was not found on PATH; reading a snapshot needs etcd's ${name}`, {
    hint: `Install ${name} from an etcd release (https://github.com/etcd-io/etcd/releases), or pass ${flag} PATH (or set ${envName}).`,
  })
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolvePort(port))
    })
  })
}

/** The child's environment without ETCD_* settings of the user's shell, which etcd would obey. */
function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')) out[k] = v
  if (process.arch === 'arm64') out.ETCD_UNSUPPORTED_ARCH = 'arm64'
  return out
}

interface RunResult {
  code: number
  stdout: string
  stderr: string
}

function run(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((done) => {
    execFile(program, args, {env, maxBuffer: 16 * 1024 * 1024}, (error, stdout, stderr) => {
      const code = error
        ? typeof (error as {code?: unknown}).code === 'number'
          ? (error as {code: number}).code
          : 1
        : 0
      done({code, stdout: String(stdout), stderr: String(stderr)})
    })
  })
}

/** etcdutl's `Error: …` line; a Go crash (bbolt reading past the end of a truncated file) in words. */
export function etcdutlReason(stderr: string): string {
  const error = stderr
    .split('\n')
    .map((l) => l.trim())
    .reverse()
    .find((l) => l.startsWith('Error: '))
  if (error) return error.slice('Error: '.length)
  if (/^(fatal error|panic|unexpected fault address)/m.test(stderr)) return 'etcdutl crashed reading it'
  return stderr.trim().split('\n').pop() || 'etcdutl failed'
}

/** bbolt's page size is the OS page size where the file was written: 4 KiB, or a multiple of it. */
const DB_PAGE_BYTES = 4096

const notASnapshot = (file: string, reason: string) =>
  preconditionError(
    'SNAPSHOT_INVALID',
    `--snapshot ${file} is not a readable etcd snapshot (truncated, damaged, or not a snapshot): ${reason}`,
    {
      hint: 'Pass a file written by `etcdctl snapshot save` (or a copy of a member/snap/db file), complete.',
    },
  )

/** Reads through a DirectEtcdReader but names the snapshot, so errors do not point at --etcd-* flags. */
class SnapshotReader implements EtcdReader {
  constructor(
    private readonly inner: DirectEtcdReader,
    private readonly info: EtcdReaderInfo,
  ) {}
  get(key: string): Promise<EtcdKeyValue | undefined> {
    return this.inner.get(key)
  }
  range(prefix: string, options?: EtcdRangeOptions): AsyncIterable<EtcdKeyValue[]> {
    return this.inner.range(prefix, options)
  }
  describe(): EtcdReaderInfo {
    return this.info
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

export interface EtcdutlSnapshotOptions extends SnapshotBinaryOptions {
  /** Bound on the temporary etcd becoming healthy (default 120 s: a big snapshot takes a while to open). */
  startTimeoutMs?: number
  /** Stop etcd and remove the temp dir on SIGINT/SIGTERM, then exit 130/143 (default true). */
  handleSignals?: boolean
}

/** The real thing: etcdutl and etcd from the flags, the environment or PATH. */
export class EtcdutlSnapshotOpener implements SnapshotOpener {
  constructor(private readonly options: EtcdutlSnapshotOptions = {}) {}

  async open(file: string, options: {onProgress?: (text: string) => void} = {}): Promise<OpenedSnapshot> {
    const env = this.options.env ?? process.env
    let bytes: number
    try {
      const info = await stat(file)
      if (!info.isFile())
        throw preconditionError('SNAPSHOT_INVALID', `--snapshot ${file} is not a regular file`, {
          hint: 'Pass a file written by `etcdctl snapshot save`.',
        })
      bytes = info.size
    } catch (error) {
      if (error instanceof PluginError) throw error
      const code = (error as NodeJS.ErrnoException).code
      throw preconditionError(
        'SNAPSHOT_NOT_FOUND',
        `cannot read --snapshot ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (error as Error).message)}`,
        {
          hint: 'Pass the path of a file written by `etcdctl snapshot save`.',
        },
      )
    }
    if (bytes === 0) throw notASnapshot(file, 'the file is empty')
    const etcdutl = await findBinary('etcdutl', '--etcdutl', this.options.etcdutl, env)
    const etcd = await findBinary('etcd', '--etcd-binary', this.options.etcd, env)
    const runEnv = childEnv(env)

    options.onProgress?.(`Checking ${file} with etcdutl snapshot status`)
    const status = await run(etcdutl, ['snapshot', 'status', resolve(file), '-w', 'json'], runEnv)
    if (status.code !== 0) throw notASnapshot(file, etcdutlReason(status.stderr))
    let parsed: {revision?: number; totalKey?: number; version?: string}
    try {
      parsed = JSON.parse(status.stdout) as typeof parsed
    } catch {
      throw notASnapshot(
        file,
        `etcdutl snapshot status printed no status (${status.stdout.trim().slice(0, 80) || 'nothing'})`,
      )
    }

    // 0700 (mkdtemp): the restored data holds every value of the snapshot, plaintext Secrets included.
    const dir = await mkdtemp(join(tmpdir(), 'kubectl-encryption-snapshot-'))
    let child: ChildProcess | undefined
    // One cleanup, shared: a signal's handler and the failing open/scan both wait for the same one,
    // and the handler (first in line) exits 130/143 before the error path can report anything.
    let cleaning: Promise<void> | undefined
    const cleanup = () =>
      (cleaning ??= (async () => {
        if (child && child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child!.once('exit', r))
          child.kill('SIGTERM')
          const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000)
          await exited
          clearTimeout(timer)
        }
        await rm(dir, {recursive: true, force: true})
      })())
    const handleSignals = this.options.handleSignals ?? true
    const onSignal = (signal: NodeJS.Signals) => {
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
    }
    if (handleSignals) {
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
    }
    const unhook = () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
    try {
      const [clientPort, peerPort] = [await freePort(), await freePort()]
      const client = `http://127.0.0.1:${clientPort}`
      const peer = `http://127.0.0.1:${peerPort}`
      const member = [
        '--name',
        'snapshot-scan',
        '--initial-cluster',
        `snapshot-scan=${peer}`,
        '--initial-advertise-peer-urls',
        peer,
      ]
      const dataDir = join(dir, 'data')

      options.onProgress?.(`Restoring ${file} into a temporary data dir`)
      let integrityChecked = true
      let restore = await run(etcdutl, ['snapshot', 'restore', resolve(file), '--data-dir', dataDir, ...member], runEnv)
      if (restore.code !== 0 && /missing hash/.test(restore.stderr)) {
        // A copy of member/snap/db has no sha256 appended (etcdctl snapshot save adds one): restore it
        // unchecked, but only when it is whole database pages; anything else is a cut-off file.
        if (bytes % DB_PAGE_BYTES !== 0)
          throw notASnapshot(
            file,
            `its ${bytes} bytes are neither a saved snapshot with its sha256 nor whole database pages (truncated?)`,
          )
        integrityChecked = false
        await rm(dataDir, {recursive: true, force: true})
        restore = await run(
          etcdutl,
          ['snapshot', 'restore', resolve(file), '--data-dir', dataDir, '--skip-hash-check', ...member],
          runEnv,
        )
      }
      if (restore.code !== 0) {
        const reason = etcdutlReason(restore.stderr)
        throw notASnapshot(file, /expected sha256/.test(reason) ? 'its sha256 does not match its contents' : reason)
      }

      options.onProgress?.(`Starting a temporary etcd on ${client}`)
      const args = [
        '--data-dir',
        dataDir,
        ...member,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--log-level',
        'error',
      ]
      child = spawn(etcd, args, {stdio: ['ignore', 'ignore', 'pipe'], env: runEnv})
      let stderr = ''
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4096)
      })
      const spawned = child
      const failedToStart = new Promise<never>((_, reject) => {
        spawned.once('error', (error) =>
          reject(
            preconditionError('ETCD_BINARY_FAILED', `cannot run ${etcd}: ${error.message}`, {
              hint: 'Pass the etcd binary of an etcd release with --etcd-binary PATH.',
            }),
          ),
        )
        spawned.once('exit', (code, signal) =>
          reject(
            preconditionError(
              'SNAPSHOT_ETCD_FAILED',
              `the temporary etcd for --snapshot ${file} stopped (${signal ?? `exit ${code}`}): ${lastLine(stderr)}`,
              {hint: 'Run with an etcd binary of the release that wrote the snapshot (--etcd-binary PATH).'},
            ),
          ),
        )
      })
      failedToStart.catch(() => undefined)
      await Promise.race([waitHealthy(client, this.options.startTimeoutMs ?? 120_000, file), failedToStart])

      const reader = new SnapshotReader(new DirectEtcdReader({endpoints: [client]}), {
        transport: 'direct',
        endpoint: client,
        via: `snapshot ${file}`,
      })
      return {
        info: {
          file,
          bytes,
          revision: Number(parsed.revision ?? 0),
          totalKeys: Number(parsed.totalKey ?? 0),
          ...(parsed.version ? {etcdVersion: parsed.version} : {}),
          integrityChecked,
        },
        reader,
        close: async () => {
          try {
            await reader.close()
          } finally {
            if (handleSignals) unhook()
            await cleanup()
          }
        },
      }
    } catch (error) {
      if (handleSignals) unhook()
      await cleanup()
      throw error
    }
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter(Boolean)
  const line = lines.pop() ?? 'no output'
  try {
    const log = JSON.parse(line) as {msg?: string; error?: string}
    return [log.msg, log.error].filter(Boolean).join(': ') || line
  } catch {
    return line
  }
}

/** etcd's /health answers {"health":"true"} once it serves reads. */
async function waitHealthy(client: string, timeoutMs: number, file: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const response = await fetch(`${client}/health`, {signal: AbortSignal.timeout(2000)})
      const body = (await response.json()) as {health?: string}
      if (body.health === 'true') return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw preconditionError(
        'SNAPSHOT_ETCD_FAILED',
        `the temporary etcd for --snapshot ${file} was not healthy after ${Math.round(timeoutMs / 1000)} s`,
      )
    await new Promise((r) => setTimeout(r, 100))
  }
}
