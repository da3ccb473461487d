/**
 * Before a rewrite (issue 17 item 3), on the sandbox's real kube-apiserver: the plugin names every
 * admission webhook whose rules match UPDATE of the rewritten resources and prints an estimate from
 * the API's own count, before the first write; -o json carries both. The webhook registered here
 * matches UPDATE of Secrets in this file's namespace only (namespaceSelector) and points at a
 * Service that does not exist, with failurePolicy Ignore: the apiserver really calls it on every
 * no-op write, fails to reach it and lets the write through. A user without RBAC to list webhook
 * configurations gets a warning and webhooksListError, and the rewrite still runs. The estimate's
 * stored bytes come from the apiservers' own size metrics (once they have counted, about a minute
 * after the Secrets exist); the user without RBAC for /metrics gets no size, and no warning either.
 */
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {DENY_UPDATE_WEBHOOK} from '../sandbox/admission-webhook.js'
import {pluginPath} from './helpers/plugin.js'
import {kubectl, ok, run, sandbox, waitFor} from './helpers/sandbox.js'

const id = randomBytes(3).toString('hex')
const NS = `rwh-${id}`
const CONFIGURATION = `rewrite-warning-${id}.e2e.kubectl-encryption.test`
const WEBHOOK = 'ignore-missing.e2e.kubectl-encryption.test'
const COUNT = 25
let tmp: string

/** `kubectl encryption ARGS` with stderr and stdout in one pipe, so the order they were written in shows. */
function pluginMerged(args: string[], env: Record<string, string> = {}) {
  return run('sh', ['-c', 'exec kubectl encryption "$@" 2>&1', 'sh', ...args], {
    env: {PATH: pluginPath(), CI: '1', XDG_STATE_HOME: tmp, ...env},
    timeoutMs: 170_000,
  })
}

function plugin(args: string[], env: Record<string, string> = {}) {
  return run('kubectl', ['encryption', ...args], {
    env: {PATH: pluginPath(), CI: '1', XDG_STATE_HOME: tmp, ...env},
    timeoutMs: 170_000,
  })
}

/** apiserver_admission_webhook_fail_open_count of this file's webhook, summed over every node's API server. */
async function failOpenCalls(): Promise<number> {
  let sum = 0
  for (const node of sandbox().nodes) {
    const metrics = await ok('kubectl', [
      `--server=https://${sandbox().nodeIps[node]}:6443`,
      'get',
      '--raw',
      '/metrics',
    ])
    for (const m of metrics.matchAll(/^apiserver_admission_webhook_fail_open_count\{([^}]*)\} (\d+)$/gm))
      if (m[1]!.includes(`name="${WEBHOOK}"`)) sum += Number(m[2])
  }
  return sum
}

/**
 * Per node, the average stored bytes of a Secret as its API server's /metrics says (size estimate over
 * object count); undefined for a node that has no size for Secrets yet.
 */
async function secretAverages(): Promise<Array<number | undefined>> {
  const averages: Array<number | undefined> = []
  for (const node of sandbox().nodes) {
    const metrics = await ok('kubectl', [
      `--server=https://${sandbox().nodeIps[node]}:6443`,
      'get',
      '--raw',
      '/metrics',
    ])
    const value = (name: string) =>
      Number(new RegExp(`^${name}\\{group="",resource="secrets"\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN)
    const bytes = value('apiserver_resource_size_estimate_bytes')
    const objects = value('apiserver_resource_objects')
    averages.push(bytes > 0 && objects > 0 ? bytes / objects : undefined)
  }
  return averages
}

const apply = (object: unknown) => ok('kubectl', ['apply', '-f', '-'], {input: JSON.stringify(object)})

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'rwh-e2e-'))
  await ok('kubectl', ['create', 'namespace', NS])
  for (let i = 0; i < COUNT; i++)
    await ok('kubectl', [
      'create',
      'secret',
      'generic',
      `s-${String(i).padStart(3, '0')}`,
      '-n',
      NS,
      `--from-literal=v=${i}`,
    ])
  await apply({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: {name: CONFIGURATION},
    webhooks: [
      {
        name: WEBHOOK,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Ignore',
        timeoutSeconds: 2,
        clientConfig: {service: {namespace: NS, name: 'no-such-service', path: '/validate', port: 443}},
        rules: [
          {operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], scope: 'Namespaced'},
        ],
        namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': NS}},
      },
    ],
  })
}, 180_000)

// The API servers count stored objects and their sizes about once a minute: wait until every one
// (the load balancer may send the plugin to any) has a size for Secrets.
beforeAll(async () => {
  await waitFor(
    'every API server to report the stored size of Secrets on /metrics',
    async () => (await secretAverages()).every((a) => a !== undefined),
    150_000,
    2_000,
  )
}, 170_000)

afterAll(async () => {
  await kubectl(['delete', 'validatingwebhookconfiguration', CONFIGURATION, '--ignore-not-found'])
  await kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false'])
  if (tmp) rmSync(tmp, {recursive: true, force: true})
}, 180_000)

describe('rewrite: admission webhooks and estimate before the run (sandbox)', () => {
  it('names the webhook and the estimate on stderr before the result', async () => {
    const before = await failOpenCalls()
    const r = await pluginMerged(['rewrite', '-n', NS, '--resource', 'secrets', '--qps', '5', '--concurrency', '4'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const out = r.stdout
    const warning = out.indexOf(
      `Warning: validating admission webhook ${WEBHOOK} (ValidatingWebhookConfiguration ${CONFIGURATION}) matches UPDATE of secrets: `,
    )
    // (25 - a burst of 4) / 5 per second; their stored size from the API server's metrics
    const estimate = out.search(
      new RegExp(
        `^Estimate: ${COUNT} objects \\(about \\d+(\\.\\d)? k?B stored\\) in 1 resource, about 4 s at --qps 5$`,
        'm',
      ),
    )
    const result = out.search(/^RESOURCE\s+LISTED/m)
    expect(warning, out).toBeGreaterThanOrEqual(0)
    expect(estimate, out).toBeGreaterThan(warning)
    expect(result, out).toBeGreaterThan(estimate)
    const line = out.slice(warning).split('\n')[0]!
    expect(line).toContain('its namespaceSelector may exclude some objects; it sees the no-op write of the rest')
    expect(line).toContain('failurePolicy Ignore: if it is down each write waits up to 2s, then goes on')
    // the sandbox's own deny-update webhook matches UPDATE of */* behind a matchCondition
    expect(out).toMatch(
      new RegExp(
        `Warning: validating admission webhook ${DENY_UPDATE_WEBHOOK.replaceAll('.', '\\.')} .*its matchConditions may exclude some objects.*failurePolicy Fail`,
      ),
    )
    // the webhook could not be reached; Ignore let every no-op write through
    expect(out).toMatch(new RegExp(`^secrets\\s+${COUNT}\\s+\\d+\\s+\\d+\\s+0\\s+0\\s+0$`, 'm'))
    // and it did see each of them: every API server counts the calls it failed open on
    expect(await failOpenCalls()).toBeGreaterThanOrEqual(before + COUNT)
  })

  it('-o json carries webhooks and estimate with the rewrite result', async () => {
    const averages = (await secretAverages()).filter((a) => a !== undefined)
    const r = await plugin([
      'rewrite',
      '-n',
      NS,
      '--resource',
      'secrets',
      '-o',
      'json',
      '--qps',
      '5',
      '--concurrency',
      '4',
    ])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.webhooks).toContainEqual({
      kind: 'validating',
      configuration: CONFIGURATION,
      webhook: WEBHOOK,
      failurePolicy: 'Ignore',
      matchPolicy: 'Equivalent',
      timeoutSeconds: 2,
      resources: ['secrets'],
      seesNoOpWrite: 'some',
      filteredBy: ['namespaceSelector'],
    })
    expect(doc.webhooksListError).toBeUndefined()
    expect(doc.estimate).toEqual({
      resources: [{resource: 'secrets', objects: COUNT, bytes: expect.any(Number)}],
      seconds: 4.2,
      qps: 5,
      concurrency: 4,
      limitedBy: 'qps',
    })
    // the estimate is about what the run then took (a few list and namespace requests come on top)
    expect(doc.elapsedMs / 1000).toBeGreaterThan(doc.estimate.seconds * 0.8)
    expect(doc.elapsedMs / 1000).toBeLessThan(doc.estimate.seconds * 2 + 2)
    expect(doc.totals).toMatchObject({listed: COUNT, failed: 0})
    expect(r.stderr).toContain(`Warning: validating admission webhook ${WEBHOOK} `)
    // the objects counted times the average an API server reported (its next count may move it a little)
    const bytes = doc.estimate.resources[0].bytes as number
    expect(
      averages.some((a) => Math.abs(bytes - COUNT * a) <= 0.1 * COUNT * a),
      `${bytes} vs ${COUNT} x ${averages}`,
    ).toBe(true)
    expect(r.stderr).toMatch(new RegExp(`Estimate: ${COUNT} objects \\(about .* stored\\) in 1 resource`))
  })

  it('a user who may not list webhook configurations gets a warning and webhooksListError; the rewrite runs', async () => {
    // A ServiceAccount that may rewrite Secrets in the namespace, and nothing else.
    await ok('kubectl', ['create', 'serviceaccount', 'rewriter', '-n', NS])
    await ok('kubectl', ['create', 'role', 'rewriter', '-n', NS, '--verb=get,list,update', '--resource=secrets'])
    await ok('kubectl', [
      'create',
      'rolebinding',
      'rewriter',
      '-n',
      NS,
      '--role=rewriter',
      `--serviceaccount=${NS}:rewriter`,
    ])
    const token = (await ok('kubectl', ['create', 'token', 'rewriter', '-n', NS, '--duration=10m'])).trim()
    const view = JSON.parse(
      await ok('kubectl', ['config', 'view', '--raw', '--minify', '--flatten', '-o', 'json']),
    ) as {clusters: Array<{name: string; cluster: Record<string, unknown>}>}
    const kubeconfig = path.join(tmp, 'rewriter.kubeconfig')
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{name: 'sandbox', cluster: view.clusters[0]!.cluster}],
        users: [{name: 'rewriter', user: {token}}],
        contexts: [{name: 'rewriter', context: {cluster: 'sandbox', user: 'rewriter', namespace: NS}}],
        'current-context': 'rewriter',
      }),
      {mode: 0o600},
    )
    const r = await plugin(['rewrite', '--resource', 'secrets', '-o', 'json'], {KUBECONFIG: kubeconfig})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(
      /^Warning: could not list admission webhook configurations \(403 Forbidden: .*validatingwebhookconfigurations.* is forbidden: User "system:serviceaccount:rwh-\w+:rewriter" cannot list resource.*\); a webhook matching UPDATE could still deny or slow the rewrite$/m,
    )
    const doc = JSON.parse(r.stdout)
    expect(doc.webhooksListError).toMatch(/^403 Forbidden: .*forbidden/)
    expect(doc.webhooks).toEqual([])
    // /metrics is forbidden to it too: no size, and no warning about that
    expect(doc.estimate.resources).toEqual([{resource: 'secrets', objects: COUNT, bytes: null}])
    expect(r.stderr).toMatch(new RegExp(`^Estimate: ${COUNT} objects in 1 resource, `, 'm'))
    expect(r.stderr).not.toMatch(/metrics/i)
    expect(doc.totals).toMatchObject({listed: COUNT, failed: 0})
    // no key material or token in any output
    expect(r.stdout + r.stderr).not.toContain(token)
  })
})
