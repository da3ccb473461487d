// A KMS plugin outage on the sandbox's real control plane (issue 15, item 7): the sandbox's KMS v2
// plugin down on one node of three, then on every node, with what status, verify and rewrite say,
// and the recovery.
//
// Two facts of kube-apiserver shape the test (k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go):
// the KMS health check is one of /readyz's, so the sandbox's load balancer (test/sandbox/load-balancer.ts,
// haproxy-like: only backends whose /readyz answers 200) stops sending requests to the node whose plugin is
// down; and an apiserver keeps encrypting with its cached DEK for up to 3 minutes after its last good
// Status call (kmsv2PluginWriteDEKSourceMaxTTL). So with one node out, writes through the load balancer
// keep working, and the node is found by status and verify; for writes that fail, the plugin is stopped on
// every node and the test waits until each apiserver refuses a write.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  everyApiserverReports,
  hashOf,
  KMS_NAME,
  type KmsCluster,
  kmsNodes as nodes,
  secretsScan,
  setUpKms,
  statusReportsUnhealthy,
  tearDownKms,
} from './helpers/kms-cluster.js'
import {json, plugin, pluginOutputs, sshArgs} from './helpers/plugin.js'
import {kubectl, kubectlOnNode, ok, waitFor} from './helpers/sandbox.js'

const ns = `kms-out-${Date.now().toString(36)}`
let kms: KmsCluster | undefined
const SECRETS = 30
const secretValue = (i: number) => `value-${i}`

interface RewriteJson {
  totals: {listed: number; rewritten: number; alreadyCurrent: number; failed: number}
  failures: Array<{
    resource: string
    namespace?: string
    name?: string
    reason: string
    status?: number
    message: string
  }>
}

/** Every Secret of the namespace, read through `node`'s apiserver (or the load balancer), decoded. */
async function readSecrets(node?: string): Promise<Record<string, string>> {
  const args = ['get', 'secrets', '-n', ns, '-o', 'json']
  const r = node ? await kubectlOnNode(node, args) : await kubectl(args)
  if (r.code !== 0) throw new Error(`kubectl get secrets${node ? ` on ${node}` : ''}: ${r.stderr}`)
  const items = (JSON.parse(r.stdout) as {items: Array<{metadata: {name: string}; data?: {k?: string}}>}).items
  return Object.fromEntries(
    items
      .filter((s) => s.metadata.name.startsWith('s-'))
      .map((s) => [s.metadata.name, Buffer.from(s.data?.k ?? '', 'base64').toString()]),
  )
}
const expected = () => Object.fromEntries(Array.from({length: SECRETS}, (_, i) => [`s-${i}`, secretValue(i)]))

beforeAll(async () => {
  kms = await setUpKms()
  await ok('kubectl', ['create', 'namespace', ns])
  for (let i = 0; i < SECRETS; i++)
    await ok('kubectl', ['create', 'secret', 'generic', `s-${i}`, '-n', ns, `--from-literal=k=${secretValue(i)}`])
  await everyApiserverReports(kms.plugins.get(nodes()[0]!)!.keyId())
}, 900_000)

afterAll(() => tearDownKms(kms, [ns]), 900_000)

describe('a KMS plugin outage', {timeout: 600_000}, () => {
  it('down on one node: status (JSON and table) exits 5 naming the node and what its apiserver reports; writes go on through the others', async () => {
    const node = nodes()[1]!
    await kms!.plugins.get(node)!.stop()
    try {
      const s = await statusReportsUnhealthy(node)
      const kmsProblems = s.doc.problems.filter((p) => p.includes('KMS provider unhealthy'))
      expect(kmsProblems).toHaveLength(1)
      // The apiserver's own text varies between two reads (gRPC "code = DeadlineExceeded" or
      // "code = Canceled", as its health check's deadline falls), so each output is matched, not compared.
      const problem = `${node}: KMS provider unhealthy: its apiserver reports kms-providers failed: kms-provider-0: .*dial unix /etc/kubernetes/kms/kms\\.sock.* \\(the apiserver is not ready\\)`
      expect(kmsProblems[0]).toMatch(new RegExp(`^${problem}$`))
      expect(s.doc.nodes.find((n) => n.node === node)!.kms).toEqual([
        expect.objectContaining({name: 'kms-providers', ok: false}),
      ])
      const table = await plugin(['status', ...sshArgs()])
      expect(table.code).toBe(5)
      expect(table.stdout).toMatch(new RegExp(`^${node}\\s.*\\sfailing ${KMS_NAME}=sha256:`, 'm'))
      expect(table.stdout).toMatch(new RegExp(`^  - ${problem}$`, 'm'))

      // The load balancer checks /readyz, which includes the KMS check: writes go to the other two.
      await ok('kubectl', ['create', 'secret', 'generic', 'during-one-node-outage', '-n', ns, '--from-literal=k=v'])

      // verify: its test write succeeds elsewhere, and the node is named: exit 5, one line, no stack trace.
      const v = await plugin(['verify', ...sshArgs()])
      expect(v.code, v.stdout + v.stderr).toBe(5)
      expect(v.stdout).toMatch(new RegExp(`^  - ${problem}$`, 'm'))
      expect(v.stdout + v.stderr).not.toMatch(/\n\s+at /)
      const vj = await plugin(['verify', ...sshArgs(), '-o', 'json'])
      expect(vj.code).toBe(5)
      const doc = json<{ok: boolean; problems: string[]; cleanup: string}>(vj)
      expect(doc.ok).toBe(false)
      expect(doc.problems).toEqual([expect.stringMatching(new RegExp(`^${problem}$`))])
      expect(doc.cleanup).toBe('deleted')
    } finally {
      await kms!.restart(node)
    }
    // Back: the apiserver re-checks a failing plugin every 10 s.
    await everyApiserverReports(kms!.plugins.get(node)!.keyId())
    const v = await plugin(['verify', ...sshArgs()])
    expect(v.code, v.stdout + v.stderr).toBe(0)
  })

  it('down on every node during a KEK rotation: rewrite reports Unavailable with the apiserver reason and exits 4; nothing is lost; a second run after recovery completes', async () => {
    const [first, ...others] = [...kms!.plugins.values()]
    const oldId = first!.keyId()
    const newId = first!.rotate()
    for (const p of others) p.sync()
    await everyApiserverReports(newId)
    const before = await secretsScan()
    expect(before.secrets.kmsKeys!.find((k) => k.keyId === oldId)!.count).toBeGreaterThanOrEqual(SECRETS)

    for (const p of kms!.plugins.values()) await p.stop()
    try {
      // Each apiserver coasts on its cached DEK for up to 3 minutes; wait until every one refuses a write.
      let probe = 0
      await waitFor(
        'every apiserver to refuse writes without its KMS plugin',
        async () => {
          const refused = await Promise.all(
            nodes().map(async (node) => {
              const r = await kubectlOnNode(node, [
                'create',
                'secret',
                'generic',
                `probe-${probe++}`,
                '-n',
                ns,
                '--from-literal=k=v',
              ])
              return r.code !== 0 && /encryptedDEKSource with keyID hash .* expired/.test(r.stderr)
            }),
          )
          return refused.every(Boolean)
        },
        300_000,
        5000,
      )
      // verify: no apiserver can store its test object: one line, exit 5 (soft: the rewrite below still runs).
      const v = await plugin(['verify', ...sshArgs()])
      expect.soft(v.code, v.stdout + v.stderr).toBe(5)
      expect
        .soft(v.stderr)
        .toMatch(
          /the apiserver could not store a secrets object with kms:sandbox-kms \(KMS provider unhealthy on cp-1, cp-2, cp-3\): Internal error occurred: encryptedDEKSource with keyID hash .* expired at/,
        )
      expect.soft(v.stdout + v.stderr).not.toMatch(/\n\s+at /)

      const table = await plugin(['rewrite', '-A', '--only-stale', ...sshArgs()], {timeoutMs: 600_000})
      expect(table.code, table.stdout + table.stderr).toBe(4)
      expect(table.stdout).toMatch(
        new RegExp(
          `^secrets/s-0 -n ${ns}\\s+Unavailable\\s+500 InternalError: Internal error occurred: encryptedDEKSource with keyID hash "${hashOf(newId)}" expired at`,
          'm',
        ),
      )
      expect(table.stderr).toMatch(
        /object\(s\) could not be rewritten \(\d+ Unavailable: the API server could not store them; for KMS, see 'kubectl encryption status'\)\. Fix the cause and run the same command again/,
      )
      expect(table.stdout + table.stderr).not.toMatch(/\n\s+at /)

      const r = await plugin(['rewrite', '-A', '--only-stale', ...sshArgs(), '-o', 'json'], {timeoutMs: 600_000})
      expect(r.code, r.stderr).toBe(4)
      const doc = json<RewriteJson>(r)
      // s-0..s-N, and the Secret test 1 wrote before the rotation: every stale value in the namespace.
      const ours = doc.failures.filter((f) => f.namespace === ns && f.name?.startsWith('s-'))
      expect(ours.map((f) => f.name).sort()).toEqual(Array.from({length: SECRETS}, (_, i) => `s-${i}`).sort())
      expect(new Set(doc.failures.map((f) => f.reason))).toEqual(new Set(['Unavailable']))
      for (const f of doc.failures) {
        expect(f.status).toBe(500)
        expect(f.message).toMatch(
          /^500 InternalError: Internal error occurred: encryptedDEKSource with keyID hash .* expired at/,
        )
      }
      expect(doc.totals.failed).toBe(doc.failures.length)
      expect(doc.totals.rewritten).toBe(0)

      // Nothing was written: the values are still under the old key ID, readable.
      const during = await secretsScan()
      expect(during.secrets.kmsKeys!.find((k) => k.keyId === oldId)!.count).toBeGreaterThanOrEqual(SECRETS)
    } finally {
      for (const node of nodes()) await kms!.restart(node)
    }

    await everyApiserverReports(newId)
    const again = await plugin(['rewrite', '-A', '--only-stale', ...sshArgs(), '-o', 'json'], {timeoutMs: 600_000})
    expect(again.code, again.stdout + again.stderr).toBe(0)
    const done = json<RewriteJson>(again)
    expect(done.failures).toEqual([])
    expect(done.totals.rewritten).toBeGreaterThanOrEqual(SECRETS)

    const after = await secretsScan()
    expect(after.secrets.stale).toBe(0)
    expect(after.secrets.kmsKeys!.find((k) => k.keyId === oldId)).toBeUndefined()
    expect(after.code, after.doc.problems.join('\n')).toBe(0)
    // Nothing lost: every Secret reads back with its value, through every apiserver.
    for (const node of nodes()) expect(await readSecrets(node)).toEqual(expected())
  })

  it('no KEK in any output of the plugin', () => {
    const out = pluginOutputs.join('\n')
    expect(out.length).toBeGreaterThan(0)
    for (const k of kms!.keks) {
      expect(out).not.toContain(k.toString('base64'))
      expect(out).not.toContain(k.toString('hex'))
    }
  })
})
