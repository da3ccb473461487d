// `recover` on the real control plane: aescbc key1 switched on by hand on every node, Secrets
// written through the API, then three of them made unreadable as if their key had been removed
// (their etcd values re-labelled to a key `old` that no config has; etcdctl put, so no apiserver
// restarts while they are stored). A dry run lists them and changes nothing; a service account
// with delete on secrets but not unsafe-delete-ignore-read-errors is refused (exit 3) with the RBAC
// to add, and the hint's own commands make it allowed; a wrong context name refuses; the right one
// backs up (0600) and deletes them, and the namespace can then be deleted. The README's `etcdctl put`
// puts a backed-up value back byte for byte. afterAll removes every key, the namespace, the
// cluster-scoped RBAC and puts the manifests back.
import {mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {aescbcConfig, enableOnNode, MANIFEST, newKey, restoreNodes} from './helpers/encryption-setup.js'
import {json, plugin, pluginOutputs, sshArgs} from './helpers/plugin.js'
import {kubectl, ok, readNodeFile, run, sandbox, waitFor} from './helpers/sandbox.js'
import {onTerminal} from './helpers/terminal.js'
import {etcdFlags} from '../sandbox/etcd-flags.js'

const ns = `recover-${Date.now().toString(36)}`
const sa = 'recover-tester'
const LOST = ['lost-0', 'lost-1', 'lost-2']
const key1 = newKey('key1')
const saved = new Map<string, string>()
const dir = mkdtempSync(join(tmpdir(), 'recover-e2e-'))
const backupDir = join(dir, 'backups')
const original = new Map<string, Buffer>()
let context = ''
let saKubeconfig = ''
// KEP-3926's delete is served by default from 1.37 (AllowUnsafeMalformedObjectDeletion on); 1.32–1.36
// have the gate off unless the apiservers are started with it, as this sandbox (like kubeadm) does not.
const unsafeDeleteServed = () => Number((sandbox().env.SANDBOX_KUBE_VERSION ?? 'v1.37').split('.')[1]) >= 37

interface RecoverDoc {
  dryRun: boolean
  scope: {resources: string[]; namespace?: string}
  feature?: {served: boolean; evidence: string}
  access: Array<{verb: string; allowed: boolean}>
  backupFile?: string
  objects: Array<{
    namespace: string
    name: string
    etcdKey: string
    storedAs: string
    foundBy: string[]
    status: string
  }>
  totals: {found: number; deleted: number; failed: number}
}

const etcdKey = (name: string) => `/registry/secrets/${ns}/${name}`
async function etcdValue(key: string): Promise<Buffer | undefined> {
  const out = JSON.parse(await ok('etcdctl', ['get', key, '-w', 'json'])) as {kvs?: Array<{value: string}>}
  return out.kvs?.[0] ? Buffer.from(out.kvs[0].value, 'base64') : undefined
}
const backups = () =>
  readdirSync(backupDir, {withFileTypes: true})
    .filter((e) => e.isFile())
    .map((e) => join(backupDir, e.name))
const etcdArgs = () => etcdFlags(sandbox().env)

beforeAll(async () => {
  const {nodes} = sandbox()
  for (const node of nodes) saved.set(node, await readNodeFile(node, MANIFEST))
  context = (await ok('kubectl', ['config', 'current-context'])).trim()
  await ok('kubectl', ['create', 'namespace', ns])
  for (const node of nodes) await enableOnNode(node, aescbcConfig([key1]))
  for (const name of ['keep', ...LOST])
    await ok('kubectl', ['create', 'secret', 'generic', name, '-n', ns, '--from-literal=k=v'])
  // "the key was removed": the same ciphertext, labelled with a key no config has
  for (const name of LOST) {
    const value = (await etcdValue(etcdKey(name)))!
    expect(value.subarray(0, 23).toString()).toBe('k8s:enc:aescbc:v1:key1:')
    const lost = Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:old:'), value.subarray(23)])
    await ok('etcdctl', ['put', etcdKey(name)], {input: lost})
    original.set(name, lost)
  }
  // a service account with delete on secrets in the namespace, but not the unsafe verb
  await ok('kubectl', ['create', 'serviceaccount', sa, '-n', ns])
  await ok('kubectl', ['create', 'role', 'secret-deleter', '-n', ns, '--verb=get,list,delete', '--resource=secrets'])
  await ok('kubectl', [
    'create',
    'rolebinding',
    'secret-deleter',
    '-n',
    ns,
    '--role=secret-deleter',
    `--serviceaccount=${ns}:${sa}`,
  ])
  const token = (await ok('kubectl', ['create', 'token', sa, '-n', ns, '--duration=1h'])).trim()
  saKubeconfig = join(dir, 'sa.kubeconfig')
  writeFileSync(saKubeconfig, await ok('kubectl', ['config', 'view', '--raw', '--minify', '--flatten']), {mode: 0o600})
  const asSa = {env: {KUBECONFIG: saKubeconfig}}
  await ok('kubectl', ['config', 'set-credentials', sa, `--token=${token}`], asSa)
  await ok('kubectl', ['config', 'set-context', '--current', `--user=${sa}`], asSa)
  writeFileSync(join(dir, 'enc.yaml'), aescbcConfig([key1]), {mode: 0o600})
}, 600_000)

afterAll(async () => {
  // The unreadable values go first (directly in etcd), then the namespace, while every node still
  // has key1; only then do the API servers restart without it.
  await run('etcdctl', ['del', '--prefix', `/registry/secrets/${ns}/`])
  await kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=300s'])
  await kubectl(['delete', 'clusterrole,clusterrolebinding', 'kubectl-encryption-recover', '--ignore-not-found'])
  await restoreNodes(saved)
  rmSync(dir, {recursive: true, force: true})
}, 900_000)

describe('kubectl encryption recover', {timeout: 300_000}, () => {
  it("the API cannot list the namespace's Secrets (the problem recover is for)", async () => {
    const r = await kubectl(['get', 'secrets', '-n', ns])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/StorageReadError|failed to read one or more secrets|no matching key was found/)
  })

  it.runIf(unsafeDeleteServed())(
    '--dry-run lists the three, from etcd and from the API, checks the feature and RBAC, and changes nothing',
    async () => {
      const r = await plugin(['recover', '-n', ns, '--dry-run', '--backup-dir', backupDir, ...sshArgs(), '-o', 'json'])
      expect(r.code, r.stdout + r.stderr).toBe(0)
      const doc = json<RecoverDoc>(r)
      expect(doc.dryRun).toBe(true)
      expect(doc.scope).toEqual({resources: ['secrets'], namespace: ns})
      expect(doc.objects.map((o) => [o.name, o.storedAs, o.status])).toEqual(
        LOST.map((name) => [name, 'aescbc:old', 'listed']),
      )
      // the etcd scan and the API's StorageReadError causes agree, and that reason shows the feature is served
      expect(doc.objects.map((o) => o.foundBy)).toEqual(LOST.map(() => ['etcd', 'api']))
      expect(doc.feature).toEqual({served: true, evidence: "the API's list of secrets answered StorageReadError"})
      expect(doc.access.every((a) => a.allowed)).toBe(true)
      expect(doc.backupFile).toBeUndefined()
      for (const name of LOST) expect((await etcdValue(etcdKey(name)))!.equals(original.get(name)!)).toBe(true)
      expect(() => backups()).toThrow() // the backup dir was not even created
      const table = await plugin(['recover', '-n', ns, '--dry-run', ...sshArgs()])
      expect(table.code).toBe(0)
      expect(table.stdout).toContain('Dry run: nothing was changed. 3 objects would be deleted.')
      for (const name of LOST)
        expect(table.stdout).toMatch(new RegExp(`^secrets\\s+${ns}\\s+${name}\\s+aescbc:old\\s+listed`, 'm'))
    },
  )

  it.runIf(unsafeDeleteServed())(
    'refused without the unsafe-delete-ignore-read-errors verb: exit 3 with the RBAC to add; nothing deleted',
    async () => {
      const args = [
        'recover',
        '-n',
        ns,
        '--yes',
        '--backup-dir',
        backupDir,
        '--config',
        join(dir, 'enc.yaml'),
        ...etcdArgs(),
      ]
      const r = await plugin(args, {env: {KUBECONFIG: saKubeconfig}})
      expect(r.code, r.stdout + r.stderr).toBe(3)
      expect(r.stderr).toContain(
        `error: not allowed to unsafe-delete-ignore-read-errors secrets in namespace ${ns} (SelfSubjectAccessReview); nothing was deleted.`,
      )
      expect(r.stderr).toContain('verbs: ["delete", "unsafe-delete-ignore-read-errors"]')
      const commands = r.stderr.split('\n').filter((l) => l.trim().startsWith('kubectl create '))
      expect(commands).toEqual([
        `  kubectl create role kubectl-encryption-recover -n ${ns} --verb=delete,unsafe-delete-ignore-read-errors --resource=secrets`,
        `  kubectl create rolebinding kubectl-encryption-recover -n ${ns} --role=kubectl-encryption-recover --user=system:serviceaccount:${ns}:${sa}`,
      ])
      for (const name of LOST) expect((await etcdValue(etcdKey(name)))!.equals(original.get(name)!)).toBe(true)
      expect(() => backups()).toThrow()

      // the hint's own commands grant it: the same user's dry run is then allowed
      for (const line of commands) await ok('kubectl', line.trim().split(/\s+/).slice(1))
      const allowed = await waitFor(
        'the new Role to be in effect',
        async () => {
          const d = await plugin(
            ['recover', '-n', ns, '--dry-run', '--config', join(dir, 'enc.yaml'), ...etcdArgs(), '-o', 'json'],
            {env: {KUBECONFIG: saKubeconfig}},
          )
          return d.code === 0 ? d : undefined
        },
        60_000,
        1000,
      )
      expect(json<RecoverDoc>(allowed).objects).toHaveLength(3)
    },
  )

  it.runIf(unsafeDeleteServed())(
    'a wrong context name on the terminal refuses: exit 3, nothing backed up or deleted',
    async () => {
      const r = await onTerminal(['recover', '-n', ns, '--backup-dir', backupDir, ...sshArgs()], {
        size: {cols: 160, rows: 40},
        type: {after: 'to continue: ', keys: `${context}x\r`},
      })
      expect(r.code, r.screen).toBe(3)
      expect(r.screen).toContain(`secrets ${ns}/lost-0 (aescbc:old)`)
      expect(r.screen).toContain('Delete these 3 objects that no configured key can read?')
      expect(r.screen).toContain('error: Aborted: nothing was changed.')
      for (const name of LOST) expect((await etcdValue(etcdKey(name)))!.equals(original.get(name)!)).toBe(true)
      expect(() => backups()).toThrow()
    },
  )

  it.runIf(unsafeDeleteServed())(
    'the context name typed: each raw value is backed up (0600) first, then deleted; the Secrets list again; the namespace can be deleted after',
    async () => {
      const out = join(dir, 'result.json')
      const r = await onTerminal(['recover', '-n', ns, '--backup-dir', backupDir, ...sshArgs(), '-o', 'json'], {
        size: {cols: 160, rows: 40},
        type: {after: 'to continue: ', keys: `${context}\r`},
        redirect: `> ${out}`,
      })
      expect(r.code, r.screen).toBe(0)
      const doc = JSON.parse(readFileSync(out, 'utf8')) as RecoverDoc
      expect(doc.totals).toMatchObject({found: 3, deleted: 3, failed: 0})
      expect(doc.objects.map((o) => o.status)).toEqual(['deleted', 'deleted', 'deleted'])
      expect(backups()).toEqual([doc.backupFile])
      expect(statSync(doc.backupFile!).mode & 0o777).toBe(0o600)
      const backup = JSON.parse(readFileSync(doc.backupFile!, 'utf8')) as {
        objects: Array<{etcdKey: string; name: string; namespace: string; resource: string; valueBase64: string}>
      }
      expect(backup.objects.map((o) => [o.etcdKey, o.resource, o.namespace, o.name])).toEqual(
        LOST.map((name) => [etcdKey(name), 'secrets', ns, name]),
      )
      for (const o of backup.objects)
        expect(Buffer.from(o.valueBase64, 'base64').equals(original.get(o.name)!)).toBe(true)
      for (const name of LOST) expect(await etcdValue(etcdKey(name))).toBeUndefined()
      // the API lists the namespace's Secrets again; the readable one was left alone
      const names = await waitFor('the Secrets to list', async () => {
        const g = await kubectl(['get', 'secrets', '-n', ns, '-o', 'jsonpath={.items[*].metadata.name}'])
        return g.code === 0 ? g.stdout : undefined
      })
      expect(names.split(' ')).toEqual(['keep'])
      // the table names the backup file
      const again = await plugin(['recover', '-n', ns, '--yes', '--backup-dir', backupDir, ...sshArgs()])
      expect(again.code, again.stdout + again.stderr).toBe(0)
      expect(again.stdout).toContain('Nothing to recover')
    },
  )

  it.runIf(unsafeDeleteServed())(
    "the README's etcdctl put puts a backed-up value back byte for byte; recover --yes removes it again",
    async () => {
      const file = backups()[0]!
      const script = `jq -r '.objects[] | select(.name == "lost-0") | .valueBase64' ${file} | base64 -d | etcdctl put ${etcdKey('lost-0')}`
      await ok('sh', ['-c', script])
      expect((await etcdValue(etcdKey('lost-0')))!.equals(original.get('lost-0')!)).toBe(true)
      const r = await plugin(['recover', '-n', ns, '--yes', '--backup-dir', backupDir, ...sshArgs()])
      expect(r.code, r.stdout + r.stderr).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`^secrets\\s+${ns}\\s+lost-0\\s+aescbc:old\\s+deleted`, 'm'))
      expect(r.stdout).toMatch(/^Backup:\s+\S+recover-\S+\.json \(0600/m)
      expect(await etcdValue(etcdKey('lost-0'))).toBeUndefined()
      expect(backups()).toHaveLength(2)
    },
  )

  it.runIf(unsafeDeleteServed())('the namespace can be deleted now', async () => {
    await ok('kubectl', ['delete', 'namespace', ns, '--wait=true', '--timeout=180s'], {timeoutMs: 200_000})
    expect((await kubectl(['get', 'namespace', ns])).code).not.toBe(0)
  })

  it.runIf(!unsafeDeleteServed())(
    'a release that does not serve the unsafe delete (1.36 by default): exit 3 naming the gate, also in a dry run; nothing backed up or deleted',
    async () => {
      for (const extra of [['--dry-run'], ['--yes']]) {
        const r = await plugin(['recover', '-n', ns, ...extra, '--backup-dir', backupDir, ...sshArgs()])
        expect(r.code, r.stdout + r.stderr).toBe(3)
        expect(r.stderr).toContain(
          "error: the server does not serve ignoreStoreReadErrorWithClusterBreakingPotential (the API's list of secrets answered a plain 500 for unreadable values, not StorageReadError (AllowUnsafeMalformedObjectDeletion is off)); nothing was deleted.",
        )
        expect(r.stderr).toContain('--feature-gates=AllowUnsafeMalformedObjectDeletion=true')
        for (const name of LOST) expect((await etcdValue(etcdKey(name)))!.equals(original.get(name)!)).toBe(true)
        expect(() => backups()).toThrow()
      }
    },
  )

  it('no key material in any output', () => {
    expect(pluginOutputs.join('\n')).not.toContain(key1.secret)
  })
})
