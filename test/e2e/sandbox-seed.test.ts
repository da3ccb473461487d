// The seed workflow's own commands (the Kubernetes task page, see docs/architecture.md), with the real kubectl,
// etcdctl and hexdump against the sandbox, before any encryption is configured.
import {afterAll, describe, expect, it} from 'vitest'
import {kubectl, ok, run, sandbox} from './helpers/sandbox.js'

const NS = 'default'
const NAME = 'secret1'

describe('seed commands against the sandbox (no encryption configured)', () => {
  afterAll(async () => {
    await kubectl(['delete', 'secret', NAME, '-n', NS, '--ignore-not-found'])
  })

  it('kubectl create secret generic secret1 -n default --from-literal=mykey=mydata', async () => {
    await kubectl(['delete', 'secret', NAME, '-n', NS, '--ignore-not-found'])
    const out = await ok('kubectl', ['create', 'secret', 'generic', NAME, '-n', NS, '--from-literal=mykey=mydata'])
    expect(out).toContain(`secret/${NAME} created`)
    const again = await kubectl(['create', 'secret', 'generic', NAME, '-n', NS, '--from-literal=mykey=mydata'])
    expect(again.code).not.toBe(0)
    expect(again.stderr).toContain(`secrets "${NAME}" already exists`)
  })

  it('kubectl get secret secret1 -n default -o yaml shows mykey: bXlkYXRh', async () => {
    const yaml = await ok('kubectl', ['get', 'secret', NAME, '-n', NS, '-o', 'yaml'])
    expect(yaml).toMatch(/^\s+mykey: bXlkYXRh$/m)
  })

  it('etcdctl get /registry/secrets/default/secret1 | hexdump -C shows the plaintext protobuf envelope', async () => {
    const r = await run('sh', ['-c', `etcdctl get /registry/secrets/${NS}/${NAME} | hexdump -C`])
    expect(r.code).toBe(0)
    // key line, then the k8s\0 protobuf magic of docs/kubernetes-behaviour.md §13.2: no encryption yet
    expect(r.stdout).toContain('|/registry/secret|')
    expect(r.stdout).toMatch(/6b 38 73 00/)
    expect(r.stdout).not.toContain('k8s:enc:')
  })

  it('kubectl exec -n kube-system etcd-<node> -- etcdctl … get reads the key through the API', async () => {
    const {nodes, nodeIps} = sandbox()
    const node = nodes[1]!
    const r = await kubectl([
      'exec',
      '-n',
      'kube-system',
      `etcd-${node}`,
      '--',
      'etcdctl',
      `--endpoints=https://${nodeIps[node]}:2379`,
      '--cacert=/etc/kubernetes/pki/etcd/ca.crt',
      '--cert=/etc/kubernetes/pki/etcd/server.crt',
      '--key=/etc/kubernetes/pki/etcd/server.key',
      'get',
      `/registry/secrets/${NS}/${NAME}`,
      '--print-value-only=false',
      '-w',
      'json',
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const parsed = JSON.parse(r.stdout) as {kvs: Array<{key: string; value: string}>}
    expect(Buffer.from(parsed.kvs[0]!.key, 'base64').toString()).toBe(`/registry/secrets/${NS}/${NAME}`)
    expect(Buffer.from(parsed.kvs[0]!.value, 'base64').subarray(0, 4).toString('latin1')).toBe('k8s\0')
  })

  it('kubectl get secrets --all-namespaces -o json | kubectl replace -f - rewrites every secret', async () => {
    const before = JSON.parse(await ok('kubectl', ['get', 'secret', NAME, '-n', NS, '-o', 'json'])) as {
      metadata: {resourceVersion: string}
    }
    const r = await run('sh', ['-c', 'kubectl get secrets --all-namespaces -o json | kubectl replace -f -'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`secret/${NAME} replaced`)
    const after = JSON.parse(await ok('kubectl', ['get', 'secret', NAME, '-n', NS, '-o', 'json'])) as {
      metadata: {resourceVersion: string}
    }
    // identity -> identity: nothing is stale, the no-op update is skipped (docs/kubernetes-behaviour.md §4.2)
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion)
  })
})
