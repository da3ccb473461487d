// The sandbox's release table (test/sandbox/kube-binaries.ts) must agree with the go.mod each release
// is built from: the Kubernetes version, the etcd that release's kubeadm pins, and every staging module
// pinned to the same release (a mismatch builds a mixed, unreleased Kubernetes).
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {kubeModuleDir, kubeReleases, selectedRelease} from '../sandbox/kube-binaries.js'

describe('sandbox Kubernetes releases', () => {
  it.each(kubeReleases.map((r) => [r.version, r] as const))(
    '%s: go.mod pins the same Kubernetes, etcd and staging modules',
    (_v, release) => {
      const mod = readFileSync(path.join(kubeModuleDir, release.modfile), 'utf8')
      expect(mod).toMatch(new RegExp(`^\\tk8s\\.io/kubernetes ${release.version.replace(/\./g, '\\.')}$`, 'm'))
      for (const tool of ['server', 'etcdctl', 'etcdutl']) {
        expect(mod).toMatch(
          new RegExp(
            `^\\tgo\\.etcd\\.io/etcd/${tool}/v3 v${release.etcdVersion.replace(/\./g, '\\.')}( // indirect)?$`,
            'm',
          ),
        )
      }
      const staging = [...mod.matchAll(/^\t(k8s\.io\/[\w-]+) => \1 (v\S+)$/gm)]
      expect(staging.length).toBeGreaterThan(30)
      for (const [, , version] of staging) expect(version).toBe(`v0.${release.version.slice(3)}`)
    },
  )

  it('selects by full version or minor, and names the choices for anything else', () => {
    expect(selectedRelease(undefined).version).toBe(kubeReleases[0]!.version)
    expect(selectedRelease('1.36').version).toBe('v1.36.3')
    expect(selectedRelease('v1.37.2').version).toBe('v1.37.2')
    expect(() => selectedRelease('1.30')).toThrow(/SANDBOX_KUBE_VERSION=1\.30: the sandbox builds v1\.37\.2, v1\.36\.3/)
  })
})
