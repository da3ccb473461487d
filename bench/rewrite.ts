// Rewrite benchmark (a script, not a timed test): `node --import tsx bench/rewrite.ts [--sizes 2000,20000]
//   [--pipeline-max N] [--stale-sizes 2000] [--state-dir DIR]`.
//
// In a sandbox of its own: N Secrets of about 1 KiB (in 20 namespaces) are created under key k1;
// the write key then changes, so every value is stale, and `kubectl encryption rewrite -A`
// re-encrypts them; the key changes again and the seed's `kubectl get secrets -A -o json | kubectl
// replace -f -` (the real kubectl) does the same. Then, with 5% stale (the key changes and 19 of
// the 20 namespaces are rewritten first, untimed), `rewrite -A --only-stale` against a full
// `rewrite -A`. Every run is checked in etcd (every value under the new key) and timed; peak RSS
// comes from /proc/<pid>/status VmHWM, polled until the process exits; the 1-minute load average
// (the machine is shared) is taken before and after each run. Sizes grow in one sandbox (2,000,
// then 18,000 more). A table is printed at the end. `--pipeline-max` skips the kubectl pipeline
// above that size (it can take very long on a loaded machine); skipped is shown.
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {connectCluster} from '../src/kube/connect.js'
import type {ApiResource, KubeCluster} from '../src/kube/types.js'
import {
  aescbcConfig,
  ENC_CONFIG,
  MANIFEST,
  newKey,
  type TestKey,
  withEncryptionFlag,
} from '../test/e2e/helpers/encryption-setup.js'
import {startSandbox} from '../test/sandbox/sandbox.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const arg = (name: string) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
const sizes = (arg('--sizes') ?? '2000,20000').split(',').map(Number)
const pipelineMax = Number(arg('--pipeline-max') ?? Number.POSITIVE_INFINITY)
/**
 * Stops the kubectl pipeline after this many seconds (default: never). Its time is then projected:
 * the time to its first "replaced" line (kubectl get and the start of replace) plus all objects at
 * the rate it replaced them after that (sequential PUTs: a steady rate); the note says so.
 */
const pipelineTimeout = Number(arg('--pipeline-timeout') ?? 0)
/** Sizes at which --only-stale (5% stale) is compared with a full rewrite (default: every size). */
const staleSizes = arg('--stale-sizes')?.split(',').map(Number) ?? sizes
const stateDir = path.resolve(arg('--state-dir') ?? path.join(root, '.sandbox-bench'))
const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`)
const NAMESPACE_COUNT = 20

interface Measured {
  seconds: number
  /** 1-minute load average before and after */
  load: string
  peakRssMiB: number
  code: number | null
  stdout: string
  stderr: string
}

function peak(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : 0
  } catch {
    return 0
  }
}

/** Runs a pipeline of processes (stdout -> stdin) and measures wall time and each one's peak RSS. */
async function measure(
  commands: Array<[string, string[]]>,
  env: NodeJS.ProcessEnv,
  timeoutSeconds = 0,
): Promise<Measured & {peaks: number[]; stopped: boolean; firstOutput?: number}> {
  const loadBefore = loadavg()[0]!
  const started = performance.now()
  const children = commands.map(([cmd, args]) => spawn(cmd, args, {env, stdio: ['pipe', 'pipe', 'pipe']}))
  for (let i = 0; i + 1 < children.length; i++) children[i]!.stdout!.pipe(children[i + 1]!.stdin!)
  children[0]!.stdin!.end()
  const peaks = children.map(() => 0)
  const poll = setInterval(() => {
    for (const [i, c] of children.entries()) peaks[i] = Math.max(peaks[i]!, peak(c.pid))
  }, 20)
  let stderr = ''
  let stdout = ''
  let stopped = false
  const timer =
    timeoutSeconds > 0
      ? setTimeout(() => {
          stopped = true
          for (const c of children) c.kill('SIGTERM')
        }, timeoutSeconds * 1000)
      : undefined
  for (const c of children) c.stderr!.on('data', (d) => (stderr += d))
  let firstOutput: number | undefined
  children.at(-1)!.stdout!.on('data', (d) => {
    firstOutput ??= (performance.now() - started) / 1000
    stdout += d
  })
  const codes = await Promise.all(
    children.map(
      (c) =>
        new Promise<number | null>((resolve) =>
          c.on('exit', (code) => {
            peaks[children.indexOf(c)] = Math.max(peaks[children.indexOf(c)]!, peak(c.pid))
            resolve(code)
          }),
        ),
    ),
  )
  clearInterval(poll)
  clearTimeout(timer)
  const load = `${loadBefore.toFixed(1)}→${loadavg()[0]!.toFixed(1)}`
  return {
    firstOutput,
    stopped,
    load,
    seconds: (performance.now() - started) / 1000,
    peakRssMiB: Math.max(...peaks),
    peaks,
    code: codes.find((c) => c !== 0) ?? 0,
    stdout,
    stderr,
  }
}

function sh(env: NodeJS.ProcessEnv, cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {env})
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`)),
    )
    child.stdin.end(input ?? '')
  })
}

async function main() {
  const sandbox = await startSandbox({stateDir, log, ownerMarker: fileURLToPath(import.meta.url)})
  const env: NodeJS.ProcessEnv = {...process.env, ...sandbox.env, CI: '1', XDG_STATE_HOME: path.join(stateDir, 'xdg')}
  const ssh = (node: string, command: string, input?: string) =>
    sh(env, 'ssh', ['-F', env.SANDBOX_SSH_CONFIG!, node, command], input)
  const writeNode = (node: string, file: string, content: string) => {
    const tmp = `${path.dirname(file)}/.${path.basename(file)}.tmp`
    return ssh(
      node,
      `sudo -n sh -c 'mkdir -p ${path.dirname(file)} && cat > ${tmp} && chmod 0600 ${tmp} && mv ${tmp} ${file}'`,
      content,
    )
  }
  const cluster: KubeCluster = await connectCluster({kubeconfig: env.KUBECONFIG})
  const hash = async (node: string) => {
    const pod = await cluster.objects.get(
      {group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true},
      `kube-apiserver-${node}`,
      'kube-system',
    )
    const ready = ((pod.status as {conditions?: Array<{type: string; status: string}>})?.conditions ?? []).some(
      (c) => c.type === 'Ready' && c.status === 'True',
    )
    return {hash: pod.metadata.annotations?.['kubernetes.io/config.hash'], ready}
  }
  /** The seed's procedure, node by node: write the config, restart the API server, wait until ready. */
  async function setKeys(keys: TestKey[]) {
    for (const node of sandbox.nodes) {
      const before = (await hash(node)).hash
      await writeNode(node, ENC_CONFIG, aescbcConfig(keys))
      const manifest = await ssh(node, `sudo -n cat ${MANIFEST}`)
      await writeNode(
        node,
        MANIFEST,
        manifest.includes('--encryption-provider-config=')
          ? manifest.replace(/^# restarted .*\n/m, '') + `# restarted ${Date.now()}\n`
          : withEncryptionFlag(manifest),
      )
      for (const deadline = Date.now() + 120_000; ; ) {
        const now = await hash(node).catch(() => undefined)
        if (now && now.hash !== before && now.ready) break
        if (Date.now() > deadline) throw new Error(`${node} did not come back`)
        await new Promise((r) => setTimeout(r, 300))
      }
    }
  }
  async function countUnder(key: string): Promise<{total: number; current: number}> {
    const keys = (await sh(env, 'etcdctl', ['get', '--prefix', '/registry/secrets/', '--keys-only']))
      .split('\n')
      .filter((l) => l.startsWith('/registry/secrets/bench-'))
    let current = 0
    // values in pages: etcdctl json, base64 values; only the 30-byte prefix matters
    const out = JSON.parse(await sh(env, 'etcdctl', ['get', '--prefix', '/registry/secrets/bench-', '-w', 'json'])) as {
      kvs?: Array<{value: string}>
    }
    for (const kv of out.kvs ?? [])
      if (Buffer.from(kv.value, 'base64').subarray(0, 30).toString('latin1').startsWith(`k8s:enc:aescbc:v1:${key}:`))
        current++
    return {total: keys.length, current}
  }

  const rows: string[][] = []
  let keyIndex = 1
  let seeded = 0
  const keysInUse: TestKey[] = [newKey(`k${keyIndex}`)]
  try {
    await setKeys(keysInUse)
    for (const size of sizes) {
      // grow to `size` Secrets of ~1 KiB (700 random bytes, base64) in 20 namespaces
      log(`seeding up to ${size} Secrets`)
      for (let n = 0; n < NAMESPACE_COUNT && seeded === 0; n++)
        await cluster.objects
          .create(NAMESPACES, {apiVersion: 'v1', kind: 'Namespace', metadata: {name: `bench-${n}`}})
          .catch(() => undefined)
      let next = seeded
      await Promise.all(
        Array.from({length: 32}, async () => {
          while (next < size) {
            const i = next++
            await cluster.objects.create(SECRETS, {
              apiVersion: 'v1',
              kind: 'Secret',
              metadata: {name: `s-${String(i).padStart(6, '0')}`, namespace: `bench-${i % NAMESPACE_COUNT}`},
              data: {pad: randomBytes(700).toString('base64')},
            })
          }
        }),
      )
      seeded = size

      const rotate = async () => {
        keysInUse.unshift(newKey(`k${++keyIndex}`))
        keysInUse.splice(3)
        await setKeys(keysInUse)
        return keysInUse[0]!.name
      }

      const pluginRun = async (label: string, args: string[], key: string) => {
        log(`${size}: ${label}`)
        const m = await measure(
          [
            [
              process.execPath,
              [
                path.join(root, 'bin/run.js'),
                'rewrite',
                '--ssh-config',
                env.SANDBOX_SSH_CONFIG!,
                ...args,
                '-o',
                'json',
              ],
            ],
          ],
          env,
        )
        if (m.code !== 0) throw new Error(`${label} failed (exit ${m.code}): ${m.stderr}`)
        const check = await countUnder(key)
        const {totals, objectsPerSecond, elapsedMs} = JSON.parse(m.stdout) as {
          totals: {rewritten: number; alreadyCurrent: number}
          objectsPerSecond: number
          elapsedMs: number
        }
        rows.push([
          String(size),
          label,
          m.seconds.toFixed(1),
          (size / m.seconds).toFixed(0),
          m.peakRssMiB.toFixed(0),
          `${check.current}/${check.total}`,
          m.load,
          // the run's own rate, from its first list to its last write (start-up and config read excluded)
          `rewritten ${totals.rewritten}, already current ${totals.alreadyCurrent}; ${objectsPerSecond.toFixed(0)}/s over its ${(elapsedMs / 1000).toFixed(1)} s after start-up`,
        ])
        log(rows.at(-1)!.join(' | '))
      }

      let key = await rotate()
      await pluginRun('kubectl encryption rewrite -A (all stale)', ['-A'], key)

      if (size > pipelineMax) {
        rows.push([
          String(size),
          'kubectl get | kubectl replace (all stale)',
          'skipped',
          '',
          '',
          '',
          '',
          `--pipeline-max ${pipelineMax}`,
        ])
      } else {
        key = await rotate()
        log(`${size}: kubectl get secrets -A -o json | kubectl replace -f - (all stale under ${key})`)
        const pipe = await measure(
          [
            ['kubectl', ['get', 'secrets', '-A', '-o', 'json']],
            ['kubectl', ['replace', '-f', '-']],
          ],
          env,
          pipelineTimeout,
        )
        const pipeCheck = await countUnder(key)
        const replaced = pipe.stdout.split('\n').filter((l) => l.endsWith(' replaced')).length
        // stopped: the time the whole run would take at the rate it replaced at, after its first output
        const first = pipe.firstOutput ?? 0
        const seconds = pipe.stopped && replaced > 0 ? first + (size * (pipe.seconds - first)) / replaced : pipe.seconds
        rows.push([
          String(size),
          'kubectl get | kubectl replace (all stale)',
          pipe.stopped ? `${seconds.toFixed(1)} (projected)` : seconds.toFixed(1),
          (size / seconds).toFixed(0),
          `${pipe.peaks.map((p) => p.toFixed(0)).join('+')}`,
          `${pipeCheck.current}/${pipeCheck.total}`,
          pipe.load,
          pipe.stopped
            ? `stopped after ${pipelineTimeout}s with ${replaced} replaced (first after ${first.toFixed(0)}s)`
            : pipe.code === 0
              ? ''
              : `exit ${pipe.code}`,
        ])
        log(rows.at(-1)!.join(' | '))
      }

      // 5% stale: a new key, then every namespace but bench-0 rewritten (untimed)
      const fivePercentStale = async () => {
        const k = await rotate()
        const others = Array.from({length: NAMESPACE_COUNT - 1}, (_, n) => ['-n', `bench-${n + 1}`]).flat()
        const m = await measure(
          [
            [
              process.execPath,
              [path.join(root, 'bin/run.js'), 'rewrite', '--resource', 'secrets', ...others, '-o', 'json'],
            ],
          ],
          env,
        )
        if (m.code !== 0) throw new Error(`preparing 5% stale failed: ${m.stderr}`)
        return k
      }
      if (staleSizes.includes(size)) {
        key = await fivePercentStale()
        await pluginRun('rewrite -A --only-stale (5% stale)', ['-A', '--only-stale'], key)
        key = await fivePercentStale()
        await pluginRun('rewrite -A (5% stale)', ['-A'], key)
      }
      printTable(rows)
    }
  } finally {
    cluster.close()
    await sandbox.stop()
  }
  printTable(rows)
}

function printTable(rows: string[][]) {
  const headers = ['secrets', 'method', 'seconds', 'objects/s', 'peak RSS MiB', 'under new key', 'load 1m', 'note']
  const all = [headers, ...rows]
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  process.stdout.write(
    '\n' +
      all
        .map((r) =>
          r
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd(),
        )
        .join('\n') +
      '\n',
  )
}

await main()
