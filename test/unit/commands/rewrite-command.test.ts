import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {KubeApiError} from '../../../src/kube/types.js'
import {MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS} from '../../../src/usecases/rewrite/webhooks.js'
import {serveFakeCluster} from '../helpers/fake-apiserver.js'
import {CONFIGMAPS, FakeCluster, SECRETS} from '../helpers/fake-cluster.js'

const bin = new URL('../../../bin/run.js', import.meta.url).pathname

let dir: string
let cluster: FakeCluster
let api: Awaited<ReturnType<typeof serveFakeCluster>>

function seed(perNamespace: number) {
  for (const ns of ['alpha', 'beta'])
    for (let i = 0; i < perNamespace; i++)
      cluster.seed(SECRETS, ns, `s-${String(i).padStart(5, '0')}`, {v: `${ns}-${i}`})
}

function start(args: string[]): {
  child: ChildProcess
  done: Promise<{code: number | null; stdout: string; stderr: string}>
} {
  const child = spawn(process.execPath, [bin, 'rewrite', '--kubeconfig', api.kubeconfig, ...args], {
    env: {...process.env, XDG_STATE_HOME: join(dir, 'state'), CI: '1'},
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<{code: number | null; stdout: string; stderr: string}>((resolve) =>
    child.on('close', (code) => resolve({code, stdout, stderr})),
  )
  return {child, done}
}

const plugin = (...args: string[]) => start(args).done

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rewrite-cmd-'))
  cluster = new FakeCluster()
  api = await serveFakeCluster(cluster, dir)
})

afterEach(async () => {
  await api.close()
  await rm(dir, {recursive: true, force: true})
})

describe('kubectl encryption rewrite', {timeout: 150_000}, () => {
  it('rewrites the context namespace by default and prints a summary table', async () => {
    seed(30)
    const r = await plugin('--no-ssh')
    // no nodes to read the encryption config from: secrets only, said on stderr, then the estimate
    expect(r.stderr).toMatch(
      /^Warning: the encryption config could not be read .*; rewriting secrets only\nEstimate: 30 objects in 1 resource, under 1 s at (--qps 300|--concurrency 32)\n$/,
    )
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(
      /^RESOURCE\s+LISTED\s+REWRITTEN\s+ALREADY CURRENT\s+CONFLICTS RETRIED\s+SKIPPED\s+FAILED\nsecrets\s+30\s+30\s+0\s+0\s+0\s+0\n/,
    )
    expect(r.stdout).toContain('namespace alpha: 30 objects')
    expect(
      cluster
        .all(SECRETS)
        .filter((v) => v.key === 'new')
        .map((v) => v.object.metadata.namespace),
    ).toEqual(Array(30).fill('alpha'))
  })

  it('-A -o json: one document; a second run finds everything current', async () => {
    seed(40)
    const first = await plugin('-A', '-o', 'json', '--chunk-size', '7')
    expect(first.code).toBe(0)
    const doc = JSON.parse(first.stdout)
    expect(doc).toMatchObject({
      dryRun: false,
      namespaces: 'all',
      totals: {listed: 80, rewritten: 80, failed: 0},
      failures: [],
    })
    expect(doc.resources).toEqual([
      expect.objectContaining({resource: 'secrets', group: '', version: 'v1', complete: true}),
    ])
    const second = JSON.parse((await plugin('-A', '-o', 'json')).stdout)
    expect(second.totals).toMatchObject({listed: 80, rewritten: 0, alreadyCurrent: 80})
    // nothing left behind once a run completes
    // (a run that finishes before its first checkpoint flush never creates the state dir)
    const left = await readdir(join(dir, 'state', 'kubectl-encryption')).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return []
      throw error
    })
    expect(left).toEqual([])
  })

  it('the estimate gives the stored bytes from /metrics; forbidden /metrics leaves them null, without a warning', async () => {
    seed(10)
    api.serveMetrics({
      status: 200,
      body: [
        '# TYPE apiserver_resource_objects gauge',
        'apiserver_resource_objects{group="",resource="secrets"} 20',
        'apiserver_resource_size_estimate_bytes{group="",resource="secrets"} 40960',
      ].join('\n'),
    })
    // --resource: no config to read, so no warning about that
    const sized = await plugin('-A', '--resource', 'secrets', '--dry-run', '-o', 'json')
    expect(sized.code).toBe(0)
    expect(JSON.parse(sized.stdout).estimate.resources).toEqual([{resource: 'secrets', objects: 20, bytes: 40_960}])
    expect(sized.stderr).toMatch(/^Estimate: 20 objects \(about 41 kB stored\) in 1 resource, [^\n]*\n$/)

    api.serveMetrics({
      status: 403,
      body: JSON.stringify({
        kind: 'Status',
        code: 403,
        reason: 'Forbidden',
        message: 'forbidden: cannot get path "/metrics"',
      }),
    })
    const forbidden = await plugin('-A', '--resource', 'secrets', '--dry-run', '-o', 'json')
    expect(forbidden.code).toBe(0)
    expect(JSON.parse(forbidden.stdout).estimate.resources).toEqual([{resource: 'secrets', objects: 20, bytes: null}])
    expect(forbidden.stderr).toMatch(/^Estimate: 20 objects in 1 resource, [^\n]*\n$/)
  })

  it('lists the objects it could not write and exits 4', async () => {
    seed(5)
    cluster.fault = ({verb, name, namespace}) => {
      if (verb === 'replace' && namespace === 'beta' && name === 's-00002')
        throw new KubeApiError(
          400,
          'BadRequest',
          'admission webhook "deny.example.com" denied the request: frozen by policy',
        )
    }
    const r = await plugin('-A')
    expect(r.code).toBe(4)
    expect(r.stdout).toMatch(
      /secrets\/s-00002 -n beta\s+AdmissionDenied\s+400 BadRequest: admission webhook "deny.example.com" denied the request: frozen by policy/,
    )
    expect(cluster.all(SECRETS).filter((v) => v.key === 'old')).toHaveLength(1)
    expect(r.stderr).toContain('1 object(s) could not be rewritten. Fix the cause and run the same command again')
  })

  it('an apiserver that cannot reach its KMS plugin: Unavailable with its reason, exit 4, run again', async () => {
    seed(3)
    const reason =
      'Internal error occurred: encryptedDEKSource with keyID hash "sha256:ab" expired at 2026-12-06T03:00:00Z (current time is 2026-12-06T03:01:00Z)'
    let replaces = 0
    cluster.fault = ({verb}) => {
      if (verb === 'replace') {
        replaces++
        throw new KubeApiError(500, 'InternalError', reason)
      }
    }
    const r = await plugin('-A', '-o', 'json')
    expect(r.code).toBe(4)
    const doc = JSON.parse(r.stdout) as {failures: Array<{reason: string; message: string}>}
    const n = cluster.all(SECRETS).length
    expect(doc.failures.map((f) => f.reason)).toEqual(Array(n).fill('Unavailable'))
    expect(doc.failures[0]!.message).toBe(`500 InternalError: ${reason}`)
    // Not retried: the apiserver stays unable to encrypt until its plugin answers again.
    expect(replaces).toBe(n)
    expect(r.stderr).toContain(
      `${n} object(s) could not be rewritten (${n} Unavailable: the API server could not store them; for KMS, see 'kubectl encryption status')`,
    )
  })

  it('refuses bad input with exit 2 and changes nothing', async () => {
    seed(3)
    for (const args of [
      ['-A', '-n', 'alpha'],
      ['--resource', 'nosuchthings'],
      ['--concurrency', '0'],
      ['--qps', 'fast'],
    ]) {
      const r = await plugin(...args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/^error: /)
    }
    expect(cluster.calls.replace).toBe(0)
  })

  it('takes the resources from --config, and refuses --only-stale without a known config', async () => {
    seed(2)
    cluster.seed(CONFIGMAPS, 'alpha', 'cm-1', {v: 'x'})
    const config = join(dir, 'enc.yaml')
    await writeFile(
      config,
      `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, configmaps, pandas.awesome.bears.example]
    providers:
      - aescbc: {keys: [{name: key2, secret: ${Buffer.alloc(32, 7).toString('base64')}}]}
      - identity: {}
`,
    )
    const r = await plugin('--config', config, '-o', 'json')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/lists pandas.awesome.bears.example, which the server does not serve; skipped/)
    const doc = JSON.parse(r.stdout)
    expect(doc.config).toEqual({source: 'file', path: config})
    expect(doc.resources.map((x: {resource: string; rewritten: number}) => [x.resource, x.rewritten])).toEqual([
      ['secrets', 2],
      ['configmaps', 1],
    ])
    const stale = await plugin('--only-stale', '--no-ssh')
    expect(stale.code).toBe(3)
    expect(stale.stderr).toMatch(/--only-stale needs the cluster's encryption config/)
  })

  it('names the admission webhooks matching UPDATE and the estimate on stderr before the run, and in -o json', async () => {
    seed(5)
    const webhook = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      rules: [
        {operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], scope: 'Namespaced'},
      ],
      ...extra,
    })
    cluster.seedObject(VALIDATING_WEBHOOKS, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: {name: 'policy'},
      webhooks: [
        webhook('deny.policy.example'),
        webhook('pods.policy.example', {
          rules: [{operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods']}],
        }),
      ],
    })
    cluster.seedObject(MUTATING_WEBHOOKS, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: {name: 'inject'},
      webhooks: [
        webhook('label.inject.example', {failurePolicy: 'Ignore', namespaceSelector: {matchLabels: {inject: 'yes'}}}),
      ],
    })
    const text = await plugin('-A', '--resource', 'secrets')
    expect(text.code, text.stderr).toBe(0)
    const lines = text.stderr.trimEnd().split('\n')
    expect(lines).toEqual([
      expect.stringMatching(
        /^Warning: validating admission webhook deny.policy.example \(ValidatingWebhookConfiguration policy\) matches UPDATE of secrets: it sees every no-op write; failurePolicy Fail: /,
      ),
      expect.stringMatching(
        /^Warning: mutating admission webhook label.inject.example \(MutatingWebhookConfiguration inject\) matches UPDATE of secrets: its namespaceSelector may exclude some objects; .*failurePolicy Ignore: /,
      ),
      expect.stringMatching(/^Estimate: 10 objects in 1 resource, under 1 s at (--qps 300|--concurrency 32)$/),
    ])
    expect(text.stdout).toMatch(/secrets\s+10\s+10\s/)

    const json = await plugin('-A', '--resource', 'secrets', '-o', 'json', '--qps', '4', '--concurrency', '1')
    expect(json.code).toBe(0)
    const doc = JSON.parse(json.stdout)
    expect(doc.webhooks).toEqual([
      expect.objectContaining({
        kind: 'validating',
        configuration: 'policy',
        webhook: 'deny.policy.example',
        failurePolicy: 'Fail',
        resources: ['secrets'],
        seesNoOpWrite: 'all',
      }),
      expect.objectContaining({
        kind: 'mutating',
        configuration: 'inject',
        webhook: 'label.inject.example',
        failurePolicy: 'Ignore',
        seesNoOpWrite: 'some',
        filteredBy: ['namespaceSelector'],
      }),
    ])
    expect(doc.webhooksListError).toBeUndefined()
    // (10 - a burst of 1) / 4 per second; the run takes about that long
    expect(doc.estimate).toMatchObject({
      resources: [{resource: 'secrets', objects: 10}],
      seconds: 2.3,
      qps: 4,
      concurrency: 1,
      limitedBy: 'qps',
    })
    expect(json.stderr).toContain('Estimate: 10 objects in 1 resource, about 2 s at --qps 4\n')
    expect(doc.elapsedMs).toBeGreaterThanOrEqual(2000)
  })

  it('a webhook listing that is forbidden is a warning and webhooksListError; the rewrite still runs', async () => {
    seed(3)
    cluster.fault = ({verb, resource}) => {
      if (verb === 'list' && resource.resource === 'validatingwebhookconfigurations')
        throw new KubeApiError(
          403,
          'Forbidden',
          'validatingwebhookconfigurations.admissionregistration.k8s.io is forbidden: User "dev" cannot list resource "validatingwebhookconfigurations"',
        )
    }
    const r = await plugin('-A', '--resource', 'secrets', '-o', 'json')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(
      /^Warning: could not list admission webhook configurations \(403 Forbidden: validatingwebhookconfigurations.admissionregistration.k8s.io is forbidden: .*\); a webhook matching UPDATE could still deny or slow the rewrite\nEstimate: 6 objects/,
    )
    const doc = JSON.parse(r.stdout)
    expect(doc.webhooksListError).toMatch(
      /^403 Forbidden: validatingwebhookconfigurations.admissionregistration.k8s.io is forbidden/,
    )
    expect(doc.webhooks).toEqual([])
    expect(doc.totals).toMatchObject({listed: 6, rewritten: 6})
  })

  it('dry run writes nothing', async () => {
    seed(4)
    const r = await plugin('-n', 'alpha', '-n', 'beta', '--dry-run')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/WOULD REWRITE/)
    expect(r.stdout).toMatch(/secrets\s+8\s+8\s/)
    expect(cluster.calls.replace).toBe(0)
  })

  it('after SIGKILL, --resume finishes the job without losing or repeating writes', async () => {
    seed(1500)
    cluster.latencyMs = 2
    const run = start(['-A', '--concurrency', '4', '--chunk-size', '100'])
    const stateDir = join(dir, 'state', 'kubectl-encryption')
    // kill once a checkpoint exists and a good part of the work is done
    for (;;) {
      await new Promise((r) => setTimeout(r, 20))
      const files = await readdir(stateDir).catch(() => [])
      if (files.some((f) => f.endsWith('.json')) && cluster.calls.replace > 600) break
    }
    run.child.kill('SIGKILL')
    await run.done
    const file = (await readdir(stateDir)).find((f) => f.endsWith('.json'))
    expect((await stat(join(stateDir, file!))).mode & 0o777).toBe(0o600)
    const before = cluster.calls.replace
    expect(before).toBeLessThan(3000)
    // What the last checkpoint on disk records as done must not be written again; everything else must.
    const saved = JSON.parse(await readFile(join(stateDir, file!), 'utf8')) as {
      units: Record<string, {counters: {rewritten: number; alreadyCurrent: number}}>
    }
    const recordedDone = Object.values(saved.units).reduce(
      (n, u) => n + u.counters.rewritten + u.counters.alreadyCurrent,
      0,
    )
    expect(recordedDone).toBeGreaterThan(0)

    const resumed = await plugin('-A', '--resume', '-o', 'json')
    expect(resumed.code).toBe(0)
    const doc = JSON.parse(resumed.stdout)
    expect(doc).toMatchObject({resumed: true, interrupted: false, totals: {listed: 3000, failed: 0}})
    expect(cluster.all(SECRETS).every((v) => v.key === 'new')).toBe(true)
    expect([...cluster.writes.values()].every((n) => n === 1)).toBe(true)
    expect(cluster.writes.size).toBe(3000)
    // The resume writes exactly what the checkpoint did not record: only writes made after the last
    // save (250 ms at most, a count that depends on the machine's speed) are repeated.
    expect(cluster.calls.replace - before).toBe(3000 - recordedDone)
    expect(await readdir(stateDir)).toEqual([])
  })
})
