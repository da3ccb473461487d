import {readFileSync} from 'node:fs'
import {parse} from 'yaml'
import {describe, expect, it} from 'vitest'

import {type KrewPlugin, lintKrewManifest, readKrewManifest, updateKrewManifest} from '../../scripts/krew-manifest.js'
import {archiveName, PLATFORMS} from '../../scripts/platforms.js'

const manifestPath = new URL('../../krew-manifest.yaml', import.meta.url).pathname
const pjson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {version: string}
const committed = (): KrewPlugin => readKrewManifest(manifestPath)
const sha = (c: string) => c.repeat(64)

describe('the committed krew-manifest.yaml', () => {
  it('passes krew’s manifest rules', () => {
    expect(lintKrewManifest(committed())).toEqual([])
  })

  it('is the plugin `encryption` at the package version', () => {
    const plugin = committed()
    expect(plugin.metadata?.name).toBe('encryption')
    expect(plugin.spec?.version).toBe(`v${pjson.version}`)
  })

  it('has one platform per archive that `npm run package` builds, each installing the executable and LICENSE', () => {
    const platforms = committed().spec!.platforms!
    for (const target of PLATFORMS) {
      const entry = platforms.find(
        (p) => p.selector?.matchLabels?.os === target.os && p.selector?.matchLabels?.arch === target.arch,
      )
      expect(entry, `${target.os}/${target.arch}`).toBeDefined()
      expect(entry!.uri).toMatch(new RegExp(`/releases/download/v${pjson.version}/${archiveName(target)}$`))
      expect(entry!.bin).toBe(target.bin)
      expect(entry!.files).toEqual([
        {from: target.bin, to: '.'},
        {from: 'LICENSE', to: '.'},
      ])
    }
    expect(platforms).toHaveLength(PLATFORMS.length)
  })

  it('covers linux, darwin and windows on amd64 and arm64, the Windows ones as kubectl-encryption.exe', () => {
    const platforms = committed().spec!.platforms!
    const names = platforms.map((p) => `${p.selector?.matchLabels?.os}/${p.selector?.matchLabels?.arch}:${p.bin}`)
    expect(names.sort()).toEqual([
      'darwin/amd64:kubectl-encryption',
      'darwin/arm64:kubectl-encryption',
      'linux/amd64:kubectl-encryption',
      'linux/arm64:kubectl-encryption',
      'windows/amd64:kubectl-encryption.exe',
      'windows/arm64:kubectl-encryption.exe',
    ])
  })

  it('says in its caveats what the plugin needs on the cluster side', () => {
    const caveats = committed().spec!.caveats!
    expect(caveats).toMatch(/SSH/)
    expect(caveats).toMatch(/control-plane nodes/)
    expect(caveats).toMatch(/etcd/)
  })
})

describe('lintKrewManifest', () => {
  const valid = (): KrewPlugin => structuredClone(committed())
  const cases: [string, (p: KrewPlugin) => void, RegExp][] = [
    [
      'another apiVersion',
      (p) => (p.apiVersion = 'krew.googlecontainertools.github.com/v1alpha1'),
      /^apiVersion must be/,
    ],
    ['another kind', (p) => (p.kind = 'Plugins'), /^kind must be Plugin/],
    ['a name with a dot', (p) => (p.metadata!.name = 'encryption.v2'), /^metadata.name .* must match/],
    ['a name Windows reserves', (p) => (p.metadata!.name = 'aux'), /reserved on Windows/],
    ['a version without v', (p) => (p.spec!.version = '0.1.0'), /semantic version with a leading v/],
    ['a version that is not semver', (p) => (p.spec!.version = 'v1.2'), /semantic version/],
    ['no version', (p) => delete p.spec!.version, /^spec.version must be set/],
    ['no short description', (p) => (p.spec!.shortDescription = ''), /^spec.shortDescription must be set/],
    ['a short description on two lines', (p) => (p.spec!.shortDescription = 'one\ntwo'), /must be one line/],
    ['no caveats', (p) => delete p.spec!.caveats, /^spec.caveats must be set/],
    ['no description', (p) => (p.spec!.description = '  '), /^spec.description must be set/],
    ['no homepage', (p) => delete p.spec!.homepage, /^spec.homepage must be set/],
    ['no platforms', (p) => (p.spec!.platforms = []), /at least one platform/],
    ['a platform without uri', (p) => delete p.spec!.platforms![0]!.uri, /\.uri must be set/],
    [
      'a uri that is no archive',
      (p) => (p.spec!.platforms![0]!.uri = 'https://example.com/x.exe'),
      /\.tar\.gz or \.zip/,
    ],
    ['an uppercase sha256', (p) => (p.spec!.platforms![0]!.sha256 = sha('A')), /sha256 must match/],
    ['a short sha256', (p) => (p.spec!.platforms![0]!.sha256 = 'abc'), /sha256 must match/],
    ['no bin', (p) => delete p.spec!.platforms![0]!.bin, /\.bin must be set/],
    ['a bin that is not installed', (p) => (p.spec!.platforms![0]!.bin = 'other'), /not among the installed files/],
    ['empty files', (p) => (p.spec!.platforms![0]!.files = []), /left out or non-empty/],
    ['a file without to', (p) => delete p.spec!.platforms![0]!.files![1]!.to, /files\[1\]\.to must be set/],
    ['no selector', (p) => delete p.spec!.platforms![0]!.selector, /selector must be set/],
    ['empty matchLabels', (p) => (p.spec!.platforms![0]!.selector = {matchLabels: {}}), /matchLabels is empty/],
    [
      'a selector key other than os/arch',
      (p) => (p.spec!.platforms![0]!.selector!.matchLabels!.libc = 'musl'),
      /key libc is not supported/,
    ],
    [
      'two platforms for linux/amd64',
      (p) => (p.spec!.platforms![1]!.selector = {matchExpressions: [{key: 'os', operator: 'In', values: ['linux']}]}),
      /both match linux\/amd64/,
    ],
  ]
  it.each(cases)('rejects %s', (_name, breakIt, problem) => {
    const plugin = valid()
    breakIt(plugin)
    const problems = lintKrewManifest(plugin)
    expect(
      problems.some((p) => problem.test(p)),
      problems.join('\n'),
    ).toBe(true)
  })
})

describe('updateKrewManifest', () => {
  const text = readFileSync(manifestPath, 'utf8')

  it('writes each archive’s sha256, quoted, and keeps the rest and its comments', () => {
    const withComment = text.replace('spec:\n', 'spec:\n  # kept\n')
    const updated = updateKrewManifest(withComment, {'linux-amd64': sha('1'), 'linux-arm64': sha('e')})
    expect(updated).toContain('  # kept\n')
    expect(updated).toContain(`sha256: "${sha('1')}"`)
    const plugin = parse(updated) as KrewPlugin
    const shas = Object.fromEntries(
      plugin.spec!.platforms!.map((p) => [`${p.selector!.matchLabels!.os}-${p.selector!.matchLabels!.arch}`, p.sha256]),
    )
    const committedShas = Object.fromEntries(
      committed().spec!.platforms!.map((p) => [
        `${p.selector!.matchLabels!.os}-${p.selector!.matchLabels!.arch}`,
        p.sha256,
      ]),
    )
    expect(shas).toEqual({...committedShas, 'linux-amd64': sha('1'), 'linux-arm64': sha('e')})
    const before = parse(text) as KrewPlugin
    expect({...plugin.spec, platforms: undefined}).toEqual({...before.spec, platforms: undefined})
    expect(lintKrewManifest(plugin)).toEqual([])
  })

  it('leaves the platforms it did not build as they were', () => {
    const before = parse(text) as KrewPlugin
    const updated = parse(updateKrewManifest(text, {'linux-arm64': sha('2')})) as KrewPlugin
    const amd64 = (p: KrewPlugin) => p.spec!.platforms!.find((x) => x.selector!.matchLabels!.arch === 'amd64')
    expect(amd64(updated)).toEqual(amd64(before))
  })
})
