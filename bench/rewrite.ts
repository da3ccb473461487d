// Rewrite benchmark (a script, not a timed test): `node --import tsx bench/rewrite.ts [--sizes 2000,20000]
//   [--engines client,go,go-protobuf,svm] [--pipeline-max N] [--stale-sizes 2000] [--state-dir DIR]
//   [--plugin-node-flags '--max-semi-space-size=4;--require=FILE']` (more plugin rows, node flags each).
//
// In a sandbox of its own: N Secrets of about 1 KiB (in 20 namespaces) are created under key k1;
// the write key then changes, so every value is stale, and `kubectl encryption rewrite -A`
// re-encrypts them (the client engine). Before each of the next runs the key changes again:
// bench/rewrite-loop (`go`), a bare client-go program built once into .bench-cache/, lists and
// no-op-updates the same Secrets as the storage-version migrator does, with the plugin's default
// concurrency, QPS and page size and no CLI around it (JSON, as the plugin talks; `go-protobuf`:
// the same with protobuf, client-go's default for built-in types); `rewrite -A --engine svm` hands
// the work to kube-controller-manager's storage-version migrator; `--engines` picks among client,
// client-json, client-http2, go, go-protobuf, go-protobuf-http1 and svm (default client,svm,go;
// rows in that order; `client-http2`: the plugin with KUBECTL_ENCRYPTION_HTTP2 set, one HTTP/2
// connection per apiserver as client-go; `go-protobuf-http1`: client-go with DISABLE_HTTP2 set).
// Then the seed's `kubectl get secrets -A -o json | kubectl replace -f -` (the real kubectl) does
// the same. For the go loop the note gives its own JSON counts and rate from its first list to
// its last write. For svm the note gives the migration's own creation → Succeeded time
// (1 s resolution; the rest is the plugin's start-up, counts and last poll). Then, with 5% stale (the key changes and 19 of
// the 20 namespaces are rewritten first, untimed), `rewrite -A --only-stale` against a full
// `rewrite -A`. Every run is checked in etcd (every value under the new key) and timed; peak RSS
// comes from /proc/<pid>/status VmHWM, polled until the process exits; the servers' CPU is read
// from /proc before and after each run, after 5 s of quiet that give the sandbox's own background
// rate (probes, leases, controllers), shown per object with and without that rate over the run's
// time (a slower run is otherwise charged more for the background); the note gives the requests on
// Secrets that the apiservers counted over the run (apiserver_request_total); the 1-minute load
// average (the machine is shared) is taken before and after each run. Sizes grow in one sandbox (2,000,
// then 18,000 more). A table is printed at the end. `--pipeline-max` skips the kubectl pipeline
// above that size (it can take very long on a loaded machine); skipped is shown.
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {connectCluster} from '../src/kube/connect.js'
import type {KubeCluster} from '../src/kube/types.js'
import {REWRITE_DEFAULTS} from '../src/usecases/rewrite/rewrite.js'
import {newKey, type TestKey} from '../test/e2e/helpers/encryption-setup.js'
import {startSandbox} from '../test/sandbox/sandbox.js'
import {
  benchControlPlane,
  measure,
  printTable,
  quietServerRate,
  requestsBetween,
  requestsOn,
  seedSecrets,
  serverCpu,
  sh,
} from './bench-lib.js'
import {buildGoLoop, type GoLoopResult} from './go-loop.js'

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
/** Rewriters timed at every size besides the kubectl pipeline, in the table order of ENGINES. */
const engines = (arg('--engines') ?? 'client,svm,go').split(',')
const ENGINES = ['client', 'client-json', 'client-http2', 'go', 'go-protobuf', 'go-protobuf-http1', 'svm']
for (const e of engines) if (!ENGINES.includes(e)) throw new Error(`--engines ${e}: one of ${ENGINES.join(', ')}`)
/** Sizes at which --only-stale (5% stale) is compared with a full rewrite (default: every size). */
const staleSizes = arg('--stale-sizes')?.split(',').map(Number) ?? sizes
const stateDir = path.resolve(arg('--state-dir') ?? path.join(root, '.sandbox-bench'))
/** --qps for the plugin and the Go loop alike (the Go loop's burst is the same number). */
const qpsFlag = Number(arg('--qps') ?? REWRITE_DEFAULTS.qps)
/**
 * More plugin rows (HTTP/1.1, at --qps), each with these node flags, `;` between rows and `,` between
 * flags of one row: e.g. `--max-semi-space-size=4` to see what V8's young generation does to peak RSS.
 */
const pluginNodeFlags = (arg('--plugin-node-flags') ?? '')
  .split(';')
  .filter(Boolean)
  .map((row) => row.split(','))
/** More rounds of the plugin and Go loop rows at these QPS (e.g. 5000: the ceiling without the limit). */
const alsoQps = (arg('--also-qps') ?? '').split(',').filter(Boolean).map(Number)
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`)
let sandboxServers = {stateDir, nodeIps: [] as string[]}
/** The sandbox servers' CPU seconds since `before`. */
const since = (before: {apiservers: number; etcd: number}) => {
  const now = serverCpu(sandboxServers)
  return {apiservers: now.apiservers - before.apiservers, etcd: now.etcd - before.etcd}
}
const NAMESPACE_COUNT = 20

/** What one run cost the servers: CPU seconds, the quiet rate measured just before it, its requests on Secrets. */
interface ServerCost {
  apiservers: number
  etcd: number
  quiet: {apiservers: number; etcd: number}
  requests: string
}

/**
 * Runs `run` between readings of the servers' CPU and request counts, after 5 s of quiet that give
 * the sandbox's background rate.
 */
async function withServerCost<T>(env: NodeJS.ProcessEnv, run: () => Promise<T>): Promise<[T, ServerCost]> {
  const quiet = await quietServerRate(sandboxServers)
  const requestsBefore = await requestsOn(env, sandboxServers.nodeIps, 'secrets')
  const before = serverCpu(sandboxServers)
  const result = await run()
  const used = since(before)
  const requests = requestsBetween(requestsBefore, await requestsOn(env, sandboxServers.nodeIps, 'secrets'))
  return [result, {...used, quiet, requests}]
}

/** Per object in ms: the servers' CPU, and the same less their quiet rate over the run's `seconds`. */
function serverCells(cost: ServerCost, seconds: number, objects: number): string[] {
  const ms = (s: number) => (objects > 0 ? ((s * 1000) / objects).toFixed(2) : '')
  return [
    ms(cost.apiservers),
    ms(cost.etcd),
    `${ms(cost.apiservers - cost.quiet.apiservers * seconds)} / ${ms(cost.etcd - cost.quiet.etcd * seconds)}`,
  ]
}

interface MigrationJson {
  metadata: {creationTimestamp: string}
  status?: {conditions?: Array<{type: string; status: string; lastTransitionTime: string}>}
}

async function main() {
  const goLoop = engines.some((e) => e.startsWith('go')) ? await buildGoLoop(log) : ''
  const sandbox = await startSandbox({stateDir, log, ownerMarker: fileURLToPath(import.meta.url)})
  const env: NodeJS.ProcessEnv = {...process.env, ...sandbox.env, CI: '1', XDG_STATE_HOME: path.join(stateDir, 'xdg')}
  const cluster: KubeCluster = await connectCluster({kubeconfig: env.KUBECONFIG})
  sandboxServers = {stateDir, nodeIps: sandbox.layout.nodes.map((n) => n.ip)}
  const {setKeys, countUnder} = benchControlPlane(sandbox, env, cluster)
  const rows: string[][] = []
  let keyIndex = 1
  let seeded = 0
  const keysInUse: TestKey[] = [newKey(`k${keyIndex}`)]
  try {
    await setKeys(keysInUse)
    for (const size of sizes) {
      // grow to `size` Secrets of ~1 KiB (700 random bytes, base64) in 20 namespaces
      log(`seeding up to ${size} Secrets`)
      await seedSecrets(cluster, seeded, size, NAMESPACE_COUNT)
      seeded = size

      const rotate = async () => {
        keysInUse.unshift(newKey(`k${++keyIndex}`))
        keysInUse.splice(3)
        await setKeys(keysInUse)
        return keysInUse[0]!.name
      }

      /**
       * One timed run of one process: seconds, objects/s, peak RSS, the etcd check, CPU per object of
       * the process itself and of the sandbox's three apiservers and etcd over the run, load, a note.
       */
      const addRow = (
        label: string,
        m: {seconds: number; peakRssMiB: number; load: string; cpuSeconds: number},
        servers: ServerCost,
        check: {current: number; total: number},
        note: string,
      ) => {
        rows.push([
          String(size),
          label,
          m.seconds.toFixed(1),
          (size / m.seconds).toFixed(0),
          m.peakRssMiB.toFixed(0),
          `${check.current}/${check.total}`,
          ((m.cpuSeconds * 1000) / size).toFixed(2),
          ...serverCells(servers, m.seconds, size),
          m.load,
          `${note}; requests on secrets: ${servers.requests}`,
        ])
        log(rows.at(-1)!.join(' | '))
      }

      // the plugin speaks HTTP/1.1 unless asked for HTTP/2, client-go HTTP/2 unless DISABLE_HTTP2
      const http2Env = {...env, KUBECTL_ENCRYPTION_HTTP2: '1'}
      const pluginRun = async (label: string, args: string[], key: string, runEnv = env, nodeFlags: string[] = []) => {
        log(`${size}: ${label}`)
        const [m, servers] = await withServerCost(env, () =>
          measure(
            [
              [
                process.execPath,
                [
                  ...nodeFlags,
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
            runEnv,
          ),
        )
        if (m.code !== 0) throw new Error(`${label} failed (exit ${m.code}): ${m.stderr}`)
        const check = await countUnder(key)
        const {totals, objectsPerSecond, elapsedMs, migrations, resources} = JSON.parse(m.stdout) as {
          totals: {rewritten: number; alreadyCurrent: number}
          objectsPerSecond: number
          elapsedMs: number
          migrations?: Array<{name: string}>
          resources: Array<{encoding?: string}>
        }
        // svm: the controller's own time; client: the run's own rate, from its first list to its
        // last write (start-up and config read excluded)
        const own = migrations?.[0]
          ? await migrationTimes(env, migrations[0].name)
          : `${objectsPerSecond.toFixed(0)}/s over its ${(elapsedMs / 1000).toFixed(1)} s after start-up`
        const wire = resources[0]?.encoding ? ` (${resources[0].encoding})` : ''
        addRow(
          label,
          m,
          servers,
          check,
          `rewritten ${totals.rewritten}, already current ${totals.alreadyCurrent}${wire}; ${own}`,
        )
      }

      // the client-go loop at the plugin's defaults; its failures are a row, not the end of the run
      const goRun = async (protobuf: boolean, qps: number, http1 = false) => {
        const k = await rotate()
        const {concurrency, pageSize} = REWRITE_DEFAULTS
        const label = `client-go loop (${protobuf ? 'protobuf' : 'JSON'}${http1 ? ', HTTP/1.1' : ''}, ${concurrency} / ${qps})`
        log(`${size}: ${label}`)
        const [m, servers] = await withServerCost(env, () =>
          measure(
            [
              [
                goLoop,
                [
                  '--concurrency',
                  String(concurrency),
                  '--qps',
                  String(qps),
                  '--burst',
                  String(qps),
                  '--chunk-size',
                  String(pageSize),
                  ...(protobuf ? ['--protobuf'] : []),
                ],
              ],
            ],
            http1 ? {...env, DISABLE_HTTP2: '1'} : env,
          ),
        )
        const check = await countUnder(k)
        let note: string
        try {
          const r = JSON.parse(m.stdout) as GoLoopResult
          const own = r.elapsedMs / 1000
          note = `updated ${r.updated}, conflicts ${r.conflicts}; ${(r.updated / own).toFixed(0)}/s over its own ${own.toFixed(1)} s`
          if (r.notFound || r.errors) note += `; not found ${r.notFound}, errors ${r.errors}`
        } catch {
          note = `no result: ${m.stderr.trim().split('\n').at(-1) ?? ''}`
        }
        if (m.code !== 0) note = `exit ${m.code}; ${note}`
        addRow(label, m, servers, check, note)
      }

      let key = ''
      // the plugin and the Go loop at --qps, then at each --also-qps
      for (const qps of [qpsFlag, ...alsoQps]) {
        const qpsArgs = qps === REWRITE_DEFAULTS.qps ? [] : ['--qps', String(qps)]
        const qpsLabel = qps === REWRITE_DEFAULTS.qps ? '' : `, --qps ${qps}`
        if (engines.includes('client')) {
          key = await rotate()
          await pluginRun(`kubectl encryption rewrite -A (all stale${qpsLabel})`, ['-A', ...qpsArgs], key)
        }
        if (engines.includes('client') && qps === qpsFlag)
          for (const flags of pluginNodeFlags) {
            key = await rotate()
            await pluginRun(`rewrite -A, node ${flags.join(' ')} (all stale)`, ['-A', ...qpsArgs], key, env, flags)
          }
        if (engines.includes('client-json')) {
          key = await rotate()
          await pluginRun(`rewrite -A --wire json (all stale${qpsLabel})`, ['-A', '--wire', 'json', ...qpsArgs], key)
        }
        if (engines.includes('client-http2')) {
          key = await rotate()
          await pluginRun(`rewrite -A, HTTP/2 (all stale${qpsLabel})`, ['-A', ...qpsArgs], key, http2Env)
        }
        if (engines.includes('go')) await goRun(false, qps)
        if (engines.includes('go-protobuf')) await goRun(true, qps)
        if (engines.includes('go-protobuf-http1')) await goRun(true, qps, true)
      }
      if (engines.includes('svm')) {
        key = await rotate()
        await pluginRun('rewrite -A --engine svm (all stale)', ['-A', '--engine', 'svm'], key)
      }

      if (size > pipelineMax) {
        rows.push([
          String(size),
          'kubectl get | kubectl replace (all stale)',
          'skipped',
          '',
          '',
          '',
          '',
          '',
          '',
          '',
          `--pipeline-max ${pipelineMax}`,
        ])
      } else {
        key = await rotate()
        log(`${size}: kubectl get secrets -A -o json | kubectl replace -f - (all stale under ${key})`)
        const [pipe, pipeServers] = await withServerCost(env, () =>
          measure(
            [
              ['kubectl', ['get', 'secrets', '-A', '-o', 'json']],
              ['kubectl', ['replace', '-f', '-']],
            ],
            env,
            pipelineTimeout,
          ),
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
          // per object replaced (the run may have been stopped)
          replaced > 0 ? ((pipe.cpuSeconds * 1000) / replaced).toFixed(2) : '',
          ...serverCells(pipeServers, pipe.seconds, replaced),
          pipe.load,
          [
            pipe.stopped
              ? `stopped after ${pipelineTimeout}s with ${replaced} replaced (first after ${first.toFixed(0)}s)`
              : pipe.code === 0
                ? ''
                : `exit ${pipe.code}`,
            `requests on secrets: ${pipeServers.requests}`,
          ]
            .filter(Boolean)
            .join('; '),
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

/** creation → Succeeded of an svm run's migration (Running is no mark: it is False once done). */
async function migrationTimes(env: NodeJS.ProcessEnv, name: string): Promise<string> {
  const m = JSON.parse(
    await sh(env, 'kubectl', ['get', 'storageversionmigration', name, '-o', 'json']),
  ) as MigrationJson
  const done = m.status?.conditions?.find((x) => x.type === 'Succeeded' && x.status === 'True')
  if (!done) return 'no Succeeded condition'
  const seconds = (Date.parse(done.lastTransitionTime) - Date.parse(m.metadata.creationTimestamp)) / 1000
  return `migration created→Succeeded ${seconds.toFixed(0)} s`
}

await main()
