/**
 * `status --scan --snapshot`: argument errors, as a user meets them (bin/run.js). Each is one
 * `error:` line (plus a hint), the documented exit code, nothing on stdout, and neither a cluster
 * (the kubeconfig points at nothing) nor etcdutl (PATH holds none) is needed to say so.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

const bin = new URL('../../../bin/run.js', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'status-snapshot-cli-'))
const snapshot = join(dir, 'backup.db')
writeFileSync(snapshot, 'not looked at: every case fails before the file is read')

afterAll(() => rmSync(dir, {recursive: true, force: true}))

function plugin(...args: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: {
      ...process.env,
      CI: '1',
      HOME: dir,
      KUBECONFIG: join(dir, 'none'),
      PATH: join(dir, 'no-bin'),
      KUBECTL_ENCRYPTION_ETCDUTL: '',
      KUBECTL_ENCRYPTION_ETCD: '',
    },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))
}

const CASES: Array<[string, string[], number, RegExp]> = [
  ['--snapshot without --scan', ['--snapshot', snapshot], 2, /^error: --snapshot needs --scan$/],
  [
    '--snapshot with --etcd-endpoints',
    ['--scan', '--snapshot', snapshot, '--etcd-endpoints', 'https://10.0.0.1:2379'],
    2,
    /^error: --etcd-endpoints cannot be used with --snapshot: the snapshot file is read, not the cluster's etcd$/,
  ],
  [
    '--snapshot with --etcd-via',
    ['--scan', '--snapshot', snapshot, '--etcd-via', 'exec'],
    2,
    /^error: --etcd-via cannot be used with --snapshot/,
  ],
  [
    '--snapshot with --resource',
    ['--scan', '--snapshot', snapshot, '--resource', 'secrets'],
    2,
    /^error: --resource cannot be used with --snapshot/,
  ],
  ['--etcdutl without --snapshot', ['--scan', '--etcdutl', '/usr/bin/true'], 2, /^error: --etcdutl needs --snapshot$/],
  [
    '--etcd-binary without --snapshot',
    ['--etcd-binary', '/usr/bin/true'],
    2,
    /^error: --etcd-binary needs --snapshot$/,
  ],
  [
    "a missing --config: config validate's error, before the snapshot",
    ['--scan', '--snapshot', snapshot, '--config', join(dir, 'missing.yaml')],
    3,
    /^error: .*missing\.yaml.*no such file or directory/,
  ],
  [
    'a missing snapshot, before looking for etcdutl',
    ['--scan', '--snapshot', join(dir, 'missing.db')],
    3,
    /^error: cannot read --snapshot \S+missing\.db: no such file$/,
  ],
  [
    'no etcdutl on PATH',
    ['--scan', '--snapshot', snapshot],
    3,
    /^error: etcdutl was not found on PATH; reading a snapshot needs etcd's etcdutl$/,
  ],
]

describe('status --scan --snapshot: bad input', () => {
  for (const [what, args, code, message] of CASES) {
    it(`${what}: exit ${code}`, async () => {
      const r = await plugin('status', ...args)
      expect(r.code, r.stderr).toBe(code)
      expect(r.stdout).toBe('')
      const lines = r.stderr.trimEnd().split('\n')
      expect(lines[0]).toMatch(message)
      expect(
        lines.slice(1).every((l) => l.startsWith('hint: ')),
        r.stderr,
      ).toBe(true)
    })
  }
})
