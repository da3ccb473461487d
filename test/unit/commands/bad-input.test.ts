import {spawn} from 'node:child_process'
import {mkdir, mkdtemp, readdir, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {KubeApiError} from '../../../src/kube/types.js'
import {serveFakeCluster} from '../helpers/fake-apiserver.js'
import {FakeCluster, SECRETS} from '../helpers/fake-cluster.js'

/**
 * Issue 13: bad input to the commands that reach a cluster. Each case runs the built CLI against an
 * in-memory apiserver and asserts one `error:` line naming the problem, the documented exit code,
 * no stack trace, and no write and no checkpoint left behind.
 */

const bin = new URL('../../../bin/run.js', import.meta.url).pathname

let dir: string
let cluster: FakeCluster
let api: Awaited<ReturnType<typeof serveFakeCluster>>

function plugin(...args: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: {...process.env, XDG_STATE_HOME: join(dir, 'state'), CI: '1', HOME: dir},
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))
}

/** One line `error: …` (plus an optional `hint: …`; warnings aside), no stack trace, nothing on stdout. */
function expectCleanError(r: {code: number | null; stdout: string; stderr: string}, code: number, pattern: RegExp) {
  const what = `${r.stderr}`
  expect(r.code, what).toBe(code)
  expect(r.stdout, what).toBe('')
  const lines = r.stderr
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('Warning: '))
  expect(lines[0], what).toMatch(/^error: /)
  expect(lines[0], what).toMatch(pattern)
  expect(
    lines.slice(1).every((l) => l.startsWith('hint: ')),
    what,
  ).toBe(true)
  expect(r.stderr).not.toMatch(/\n\s+at |Error: /)
}

async function checkpoints(): Promise<string[]> {
  return readdir(join(dir, 'state', 'kubectl-encryption')).catch(() => [])
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bad-input-'))
  cluster = new FakeCluster()
  for (const ns of ['alpha', 'beta']) for (let i = 0; i < 3; i++) cluster.seed(SECRETS, ns, `s-${i}`, {v: `${ns}-${i}`})
  api = await serveFakeCluster(cluster, dir)
})

afterEach(async () => {
  await api.close()
  await rm(dir, {recursive: true, force: true})
})

describe('bad input to rewrite (issue 13)', {timeout: 120_000}, () => {
  const rewrite = (...args: string[]) => plugin('rewrite', '--kubeconfig', api.kubeconfig, '--no-ssh', ...args)

  it('item 2: an empty namespace is exit 2, never "every namespace"', async () => {
    for (const args of [['-n', ''], ['-n', 'alpha', '-n', ''], ['--namespace=']]) {
      expectCleanError(await rewrite(...args), 2, /namespace must not be empty/)
    }
    expect(cluster.calls).toEqual({list: 0, get: 0, replace: 0})
  })

  it('item 2: verify and inspect refuse an empty namespace too', async () => {
    expectCleanError(
      await plugin('verify', '--kubeconfig', api.kubeconfig, '--no-ssh', '-n', ''),
      2,
      /namespace must not be empty/,
    )
    expectCleanError(
      await plugin('inspect', 'secret/s-0', '--kubeconfig', api.kubeconfig, '-n', ''),
      2,
      /namespace must not be empty/,
    )
  })

  it('item 3: an invalid namespace name is exit 2, a missing namespace exit 3; nothing written', async () => {
    expectCleanError(
      await rewrite('-n', 'BAD_NS!'),
      2,
      /invalid namespace "BAD_NS!": a namespace is a lowercase RFC 1123 label/,
    )
    expectCleanError(await rewrite('-n', 'a'.repeat(64)), 2, /invalid namespace/)
    expectCleanError(await rewrite('-n', 'does-not-exist'), 3, /namespaces "does-not-exist" not found/)
    expectCleanError(await rewrite('-n', 'alpha', '-n', 'gone'), 3, /namespaces "gone" not found/)
    expect(cluster.calls.replace).toBe(0)
    expect(await checkpoints()).toEqual([])
    // an existing one still works
    const ok = await rewrite('-n', 'beta')
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/secrets\s+3\s+3\s/)
  })

  it('item 3: a deleted namespace that still holds objects (orphans) is listed and reported, not refused', async () => {
    cluster.seed(SECRETS, 'gone', 'orphan', {v: 'x'})
    cluster.namespaces.delete('gone')
    const r = await rewrite('-n', 'gone')
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(/namespace gone no longer exists; its stored objects \(orphans\) are listed/)
    expect(r.stdout).toMatch(/secrets\/orphan -n gone\s+NamespaceGone/)
  })

  it('item 3: without `get namespaces` (403) the check is skipped, not failed', async () => {
    cluster.namespaceFault = (name) => {
      throw new KubeApiError(
        403,
        'Forbidden',
        `namespaces "${name}" is forbidden: User "dev" cannot get resource "namespaces" in API group "" in the namespace "${name}"`,
      )
    }
    const r = await rewrite('-n', 'alpha')
    expect(r.code, r.stderr).toBe(0)
    expect(cluster.calls.replace).toBe(3)
  })

  it('item 8: a context that may not list secrets is exit 3 (RBAC), with no checkpoint', async () => {
    cluster.fault = ({verb}) => {
      if (verb === 'list')
        throw new KubeApiError(
          403,
          'Forbidden',
          'secrets is forbidden: User "dev" cannot list resource "secrets" in API group "" at the cluster scope',
        )
    }
    const r = await rewrite('-A')
    expectCleanError(r, 3, /not allowed to list secrets.*cannot list resource "secrets"/)
    expect(r.stderr).not.toMatch(/--resume|progress saved/)
    expect(await checkpoints()).toEqual([])
    expect(cluster.calls.replace).toBe(0)
  })

  it('item 8: a bad label selector is exit 2 before any request, with no checkpoint', async () => {
    for (const selector of ['===', 'a=b=c', 'app in (a', '!', 'Bad Key=x', 'a=b,', 'x>y']) {
      expectCleanError(await rewrite('-A', '-l', selector), 2, /invalid label selector/)
    }
    expect(await checkpoints()).toEqual([])
    expect(cluster.calls).toEqual({list: 0, get: 0, replace: 0})
    // valid ones, as kube-apiserver's parser takes them (an empty value included)
    for (const selector of ['app in (web, db),!legacy,tier!=x', 'tier!=', 'example.com/team=a', 'gen>3']) {
      const ok = await rewrite('-A', '-l', selector)
      expect(ok.code, `${selector}: ${ok.stderr}`).toBe(0)
    }
  })

  it('item 8: a selector the server refuses (400) is exit 2, with no checkpoint', async () => {
    cluster.fault = ({verb}) => {
      if (verb === 'list')
        throw new KubeApiError(
          400,
          'BadRequest',
          'unable to parse requirement: values[0][app]: Invalid value: "x": too long',
        )
    }
    const r = await rewrite('-A', '-l', 'app=x')
    expectCleanError(r, 2, /the server rejected the label selector "app=x": unable to parse requirement/)
    expect(await checkpoints()).toEqual([])
  })

  it('item 9: --state-file in a missing directory is exit 3 and creates nothing; a directory is exit 2', async () => {
    const missing = join(dir, 'nonexistent', 'dir', 's.json')
    expectCleanError(
      await rewrite('-A', '--state-file', missing),
      3,
      /the directory of --state-file .*nonexistent\/dir\/s.json does not exist/,
    )
    await expect(stat(join(dir, 'nonexistent'))).rejects.toThrow(/ENOENT/)
    const isDir = join(dir, 'somedir')
    await mkdir(isDir)
    expectCleanError(await rewrite('-A', '--state-file', isDir), 2, /--state-file .*somedir is a directory/)
    expectCleanError(await rewrite('-A', '--state-file', ''), 2, /--state-file must not be empty/)
    expect(cluster.calls).toEqual({list: 0, get: 0, replace: 0})
    // a file in an existing directory is fine
    const ok = await rewrite('-A', '--state-file', join(dir, 's.json'))
    expect(ok.code, ok.stderr).toBe(0)
  })

  it('item 10: out-of-range numbers name the value and the allowed range (exit 2)', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--concurrency', '-1'], /^error: --concurrency "-1" is not allowed: use a whole number from 1 to 256$/m],
      [['--concurrency', '0'], /--concurrency "0" is not allowed: use a whole number from 1 to 256/],
      [['--qps', '-5'], /--qps "-5" is not allowed: use a whole number of 0 or more/],
      [['--qps', 'fast'], /--qps "fast" is not allowed: use a whole number of 0 or more/],
      [['--chunk-size', '0'], /--chunk-size "0" is not allowed: use a whole number from 1 to 10000/],
      [['--ssh-port', '99999'], /--ssh-port "99999" is not allowed: use a whole number from 1 to 65535/],
      [['--ssh-timeout', '-1'], /--ssh-timeout "-1" is not allowed: use a whole number of 1 or more/],
    ]
    for (const [args, pattern] of cases) expectCleanError(await rewrite('-A', ...args), 2, pattern)
    expect(cluster.calls).toEqual({list: 0, get: 0, replace: 0})
  })
})
