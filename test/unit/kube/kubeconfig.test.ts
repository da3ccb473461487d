import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {PluginError} from '../../../src/errors.js'
import {loadKubeConfig} from '../../../src/kube/kubeconfig.js'
import {fileTempDir} from '../../helpers/temp-dir.js'

const dir = fileTempDir('kubeconfig-test')

function write(name: string, body: string): string {
  const file = join(dir, name)
  writeFileSync(file, body)
  return file
}

const config = (opts: {
  clusters: Array<[string, string]>
  contexts: Array<[string, string, string?]>
  current?: string
}) => `apiVersion: v1
kind: Config
clusters:
${opts.clusters.map(([name, server]) => `- name: ${name}\n  cluster:\n    server: ${server}\n    insecure-skip-tls-verify: true`).join('\n')}
users:
- name: u
  user:
    token: not-a-real-token
contexts:
${opts.contexts.map(([name, cluster, ns]) => `- name: ${name}\n  context:\n    cluster: ${cluster}\n    user: u${ns ? `\n    namespace: ${ns}` : ''}`).join('\n')}
${opts.current ? `current-context: ${opts.current}` : ''}
`

const first = write(
  'first',
  config({clusters: [['a', 'https://first.example:6443']], contexts: [['ctx-a', 'a', 'team-a']]}),
)
const second = write(
  'second',
  config({
    clusters: [
      ['a', 'https://second.example:6443'],
      ['b', 'https://b.example:6443'],
    ],
    contexts: [
      ['ctx-b', 'b'],
      ['ctx-a', 'b'],
    ],
    current: 'ctx-b',
  }),
)

async function failure(promise: Promise<unknown>): Promise<PluginError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(PluginError)
  return error as PluginError
}

describe('loadKubeConfig (kubectl loading rules)', () => {
  it('merges the KUBECONFIG list: first file wins for names, current-context from the first file that sets one', async () => {
    const loaded = await loadKubeConfig({}, {KUBECONFIG: [join(dir, 'missing'), first, second].join(':')}, dir)
    expect(loaded.context).toMatchObject({
      contextName: 'ctx-b',
      server: 'https://b.example:6443',
      namespace: 'default',
      files: [first, second],
    })
    const a = await loadKubeConfig({context: 'ctx-a'}, {KUBECONFIG: `${first}:${second}`}, dir)
    expect(a.context).toMatchObject({
      contextName: 'ctx-a',
      cluster: 'a',
      server: 'https://first.example:6443',
      namespace: 'team-a',
    })
  })

  it('--kubeconfig beats KUBECONFIG', async () => {
    const loaded = await loadKubeConfig({kubeconfig: second, context: 'ctx-a'}, {KUBECONFIG: first}, dir)
    expect(loaded.context.server).toBe('https://b.example:6443')
  })

  it('an unknown --context is a usage error that lists the known contexts', async () => {
    const error = await failure(loadKubeConfig({context: 'nope'}, {KUBECONFIG: `${first}:${second}`}, dir))
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain('context "nope" does not exist')
    expect(error.hint).toContain('ctx-a, ctx-b')
  })

  it('a missing --kubeconfig file is a usage error; no config anywhere is a precondition', async () => {
    expect((await failure(loadKubeConfig({kubeconfig: join(dir, 'nope')}, {}, dir))).exitCode).toBe(2)
    const none = await failure(loadKubeConfig({}, {}, join(dir, 'home-without-kube')))
    expect(none.exitCode).toBe(3)
    expect(none.message).toContain('.kube/config')
  })

  it('a file without a current context, or with broken YAML, is a precondition naming the file and no secret', async () => {
    const noCurrent = write('no-current', config({clusters: [['a', 'https://x:1']], contexts: [['c', 'a']]}))
    const error = await failure(loadKubeConfig({kubeconfig: noCurrent}, {}, dir))
    expect(error.code).toBe('KUBECONFIG_NO_CONTEXT')
    const broken = write('broken', 'users:\n- name: u\n  user:\n    token: super-secret-token\n  - bad: [\n')
    const bad = await failure(loadKubeConfig({kubeconfig: broken}, {}, dir))
    expect(bad.exitCode).toBe(3)
    expect(bad.message).toContain(broken)
    expect(`${bad.message} ${bad.hint}`).not.toContain('super-secret-token')
  })

  it('a context naming a cluster that is not defined says so', async () => {
    const dangling = write(
      'dangling',
      config({clusters: [['a', 'https://x:1']], contexts: [['c', 'zzz']], current: 'c'}),
    )
    const error = await failure(loadKubeConfig({kubeconfig: dangling}, {}, dir))
    expect(error.code).toBe('KUBECONFIG_CLUSTER_NOT_FOUND')
    expect(error.message).toContain('"zzz"')
  })
})
