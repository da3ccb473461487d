import {readFileSync} from 'node:fs'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {
  checkManifest,
  disableEncryptionInManifest,
  enableEncryptionInManifest,
  kmsSocketDirs,
  readManifestEncryption,
} from '../../../src/controlplane/apiserver-manifest.js'

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/manifests/${name}`, import.meta.url), 'utf8')
const settings = {configPath: '/etc/kubernetes/enc/enc.yaml'}

interface Pod {
  spec: {
    containers: Array<{
      command?: string[]
      args?: string[]
      volumeMounts?: Array<{name: string; mountPath: string; readOnly?: boolean}>
    }>
    volumes?: Array<{name: string; hostPath?: {path: string; type?: string}}>
  }
}

describe('kube-apiserver manifest editing', () => {
  it('mounts the directory of each KMS plugin socket (hostPath, same path), once, unless already visible', () => {
    const edit = enableEncryptionInManifest(fixture('kubeadm-comments.yaml'), {
      ...settings,
      socketDirs: ['/var/run/kmsplugin', '/etc/kubernetes/enc'],
    })
    const pod = parse(edit.text) as Pod
    expect(pod.spec.volumes).toContainEqual({
      hostPath: {path: '/var/run/kmsplugin', type: 'DirectoryOrCreate'},
      name: 'kms-socket',
    })
    expect(pod.spec.containers[0]!.volumeMounts).toContainEqual({mountPath: '/var/run/kmsplugin', name: 'kms-socket'})
    // /etc/kubernetes/enc is the config's own mount: nothing more for a socket there
    expect(pod.spec.volumes!.filter((v) => v.hostPath?.path === '/etc/kubernetes/enc')).toHaveLength(1)
    expect(edit.changes).toContain(
      'added hostPath volume kms-socket (/var/run/kmsplugin, DirectoryOrCreate) for the KMS plugin socket',
    )
    expect(enableEncryptionInManifest(edit.text, {...settings, socketDirs: ['/var/run/kmsplugin']}).changed).toBe(false)
  })

  it("finds the socket directories of a config's kms providers", () => {
    const kms = (endpoint: string) => ({kms: {apiVersion: 'v2', name: endpoint, endpoint}})
    expect(
      kmsSocketDirs({
        apiVersion: 'v1',
        kind: 'EncryptionConfiguration',
        resources: [
          {
            resources: ['secrets'],
            providers: [
              kms('unix:///var/run/kmsplugin/socket.sock'),
              kms('unix:///var/run/kmsplugin/b.sock'),
              kms('unix:///etc/kubernetes/enc/kms.sock'),
              {identity: {}},
            ],
          },
        ],
      }),
    ).toEqual(['/etc/kubernetes/enc', '/var/run/kmsplugin'])
    expect(kmsSocketDirs(undefined)).toEqual([])
  })

  it('enables on a kubeadm manifest with comments: golden output, comments and flag order kept', () => {
    const input = fixture('kubeadm-comments.yaml')
    const edit = enableEncryptionInManifest(input, settings)
    expect(edit.changed).toBe(true)
    expect(edit.text).toBe(fixture('kubeadm-comments.enabled.yaml'))
    expect(edit.text).toContain('# stacked etcd on this node')
    expect(edit.text).toContain('--tls-private-key-file=/etc/kubernetes/pki/apiserver.key # rotated yearly')
    expect(edit.text).toContain('# PKI from kubeadm')
    const pod = parse(edit.text) as Pod
    const command = pod.spec.containers[0]?.command ?? []
    expect(command.filter((f) => f.startsWith('--'))).toEqual([...command.filter((f) => f.startsWith('--'))].sort())
    expect(pod.spec.containers[0]?.volumeMounts).toContainEqual({
      mountPath: '/etc/kubernetes/enc',
      name: 'enc',
      readOnly: true,
    })
    expect(pod.spec.volumes).toContainEqual({
      hostPath: {path: '/etc/kubernetes/enc', type: 'DirectoryOrCreate'},
      name: 'enc',
    })
    expect(readManifestEncryption(edit.text)).toEqual({
      configPath: '/etc/kubernetes/enc/enc.yaml',
      automaticReload: false,
      flagsIn: 'command',
    })
    checkManifest(edit.text)
  })

  it('is idempotent: a second run changes nothing, byte for byte', () => {
    for (const name of [
      'kubeadm-comments.enabled.yaml',
      'already-configured.yaml',
      'flags-in-args.enabled.yaml',
      'volume-name-conflict.enabled.yaml',
    ]) {
      const text = fixture(name)
      const reload = name.startsWith('flags-in-args') ? true : undefined
      const again = enableEncryptionInManifest(text, {...settings, automaticReload: reload})
      expect({name, changed: again.changed, changes: again.changes}).toEqual({name, changed: false, changes: []})
      expect(again.text).toBe(text)
    }
  })

  it('puts the flags in args when the installer keeps them there, with automatic reload', () => {
    const edit = enableEncryptionInManifest(fixture('flags-in-args.yaml'), {...settings, automaticReload: true})
    expect(edit.text).toBe(fixture('flags-in-args.enabled.yaml'))
    const pod = parse(edit.text) as Pod
    expect(pod.spec.containers[0]?.command).toEqual(['/usr/local/bin/kube-apiserver'])
    expect(pod.spec.containers[0]?.args?.slice(-2)).toEqual([
      '--encryption-provider-config=/etc/kubernetes/enc/enc.yaml',
      '--encryption-provider-config-automatic-reload=true',
    ])
    expect(readManifestEncryption(edit.text)).toEqual({
      configPath: '/etc/kubernetes/enc/enc.yaml',
      automaticReload: true,
      flagsIn: 'args',
    })
  })

  it('picks a free volume name when "enc" is taken by another volume', () => {
    const edit = enableEncryptionInManifest(fixture('volume-name-conflict.yaml'), settings)
    expect(edit.text).toBe(fixture('volume-name-conflict.enabled.yaml'))
    const pod = parse(edit.text) as Pod
    expect(pod.spec.volumes?.find((v) => v.name === 'enc')?.hostPath?.path).toBe('/srv/enc-audit')
    expect(pod.spec.volumes?.find((v) => v.name === 'enc-2')?.hostPath?.path).toBe('/etc/kubernetes/enc')
    expect(edit.text).toContain("name: enc # someone's audit policy, not ours")
  })

  it('refuses when another host directory is already mounted at the config directory', () => {
    expect(() => enableEncryptionInManifest(fixture('mount-path-conflict.yaml'), settings)).toThrow(
      expect.objectContaining({
        code: 'MANIFEST_MOUNT_CONFLICT',
        exitCode: 3,
        message: expect.stringContaining('secrets-store'),
      }),
    )
  })

  it('needs no new mount when the directory is already visible (e.g. /etc/kubernetes mounted whole)', () => {
    const text = fixture('already-configured.yaml').replace(
      '--encryption-provider-config=/etc/kubernetes/enc/enc.yaml',
      '--secure-port=6443',
    )
    const edit = enableEncryptionInManifest(text.replaceAll('/etc/kubernetes/enc', '/etc/kubernetes/pki2'), {
      configPath: '/etc/kubernetes/enc/enc.yaml',
    })
    const covered = enableEncryptionInManifest(edit.text, {configPath: '/etc/kubernetes/pki2/sub/enc.yaml'})
    expect(covered.changes).toEqual(['set flag --encryption-provider-config=/etc/kubernetes/pki2/sub/enc.yaml'])
  })

  it('changes the path of an existing flag in place and can switch automatic reload off', () => {
    const withReload = enableEncryptionInManifest(fixture('already-configured.yaml'), {
      ...settings,
      automaticReload: true,
    })
    expect(withReload.changes).toEqual(['added flag --encryption-provider-config-automatic-reload=true'])
    const off = enableEncryptionInManifest(withReload.text, {...settings, automaticReload: false})
    expect(off.text).toBe(fixture('already-configured.yaml'))
  })

  it('disables: the exact reverse of enable (round trip gives the original bytes)', () => {
    for (const name of ['kubeadm-comments', 'flags-in-args', 'volume-name-conflict']) {
      const original = fixture(`${name}.yaml`)
      const back = disableEncryptionInManifest(fixture(`${name}.enabled.yaml`))
      expect(back.changed).toBe(true)
      expect(back.text).toBe(original)
      expect(disableEncryptionInManifest(original)).toEqual({text: original, changed: false, changes: []})
    }
  })

  it('disables with the KMS socket directories: their mounts go too (round trip gives the original bytes)', () => {
    const original = fixture('kubeadm-comments.yaml')
    const socketDirs = ['/var/run/kmsplugin']
    const on = enableEncryptionInManifest(original, {...settings, socketDirs})
    expect(on.text).toContain('kms-socket')
    const off = disableEncryptionInManifest(on.text, {socketDirs})
    expect(off.changes).toContain('removed volumeMount kms-socket at /var/run/kmsplugin for the KMS plugin socket')
    expect(off.changes).toContain('removed hostPath volume kms-socket (/var/run/kmsplugin)')
    expect(off.text).toBe(original)
    // without the socket directories (a config with no kms provider) the mount is not touched
    expect(disableEncryptionInManifest(on.text).text).toContain('kms-socket')
  })

  it('leaves a wider mount that only covers the socket directory (not ours to remove)', () => {
    const original = fixture('kubeadm-comments.yaml')
    const on = enableEncryptionInManifest(original, {...settings, socketDirs: ['/etc/kubernetes/pki/kms']})
    // /etc/kubernetes/pki is mounted whole by kubeadm: nothing was added for the socket, nothing is removed
    expect(on.changes.some((c) => c.includes('KMS'))).toBe(false)
    const off = disableEncryptionInManifest(on.text, {socketDirs: ['/etc/kubernetes/pki/kms']})
    expect(off.text).toBe(original)
  })

  it('keeps a volume another container still mounts when disabling', () => {
    const text = fixture('already-configured.yaml').replace(
      '  hostNetwork: true',
      '  initContainers:\n  - name: check\n    image: busybox\n    volumeMounts:\n    - mountPath: /etc/kubernetes/enc\n      name: enc\n  hostNetwork: true',
    )
    const edit = disableEncryptionInManifest(text)
    expect(edit.changes).toEqual([
      'removed flag --encryption-provider-config',
      'removed volumeMount enc at /etc/kubernetes/enc',
    ])
    expect((parse(edit.text) as Pod).spec.volumes?.map((v) => v.name)).toContain('enc')
  })

  it('rejects bad input with clear errors', () => {
    expect(() => enableEncryptionInManifest('a: [', settings)).toThrow(
      expect.objectContaining({code: 'MANIFEST_INVALID'}),
    )
    expect(() =>
      enableEncryptionInManifest(
        'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: other\n    image: x\n',
        settings,
      ),
    ).toThrow(/no kube-apiserver container/)
    expect(() => enableEncryptionInManifest(fixture('kubeadm-comments.yaml'), {configPath: 'enc.yaml'})).toThrow(
      expect.objectContaining({code: 'CONFIG_PATH_INVALID', exitCode: 2}),
    )
    expect(() =>
      enableEncryptionInManifest(fixture('kubeadm-comments.yaml'), {configPath: '/etc/kubernetes/manifests/enc.yaml'}),
    ).toThrow(/manifests/)
  })

  it('reads the separate-value flag form too', () => {
    const text = fixture('already-configured.yaml').replace(
      '- --encryption-provider-config=/etc/kubernetes/enc/enc.yaml',
      '- --encryption-provider-config\n    - /etc/kubernetes/enc/enc.yaml',
    )
    expect(readManifestEncryption(text).configPath).toBe('/etc/kubernetes/enc/enc.yaml')
    expect(enableEncryptionInManifest(text, settings).changes).toEqual([
      'set flag --encryption-provider-config=/etc/kubernetes/enc/enc.yaml',
    ])
  })
})
