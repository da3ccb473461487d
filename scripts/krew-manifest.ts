// krew-manifest.yaml: the rules krew applies to a Plugin manifest, and the update that
// `npm run package` makes (one platform entry per archive, with its sha256).
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {isMap, isSeq, parse, parseDocument, Scalar, type YAMLMap, type YAMLSeq} from 'yaml'

import {archiveName, PLATFORMS} from './platforms.js'

export const KREW_API_VERSION = 'krew.googlecontainertools.github.com/v1alpha2'

interface FileOperation {
  from?: string
  to?: string
}

interface KrewPlatform {
  selector?: {
    matchLabels?: Record<string, string>
    matchExpressions?: {key: string; operator: string; values?: string[]}[]
  }
  uri?: string
  sha256?: string
  bin?: string
  files?: FileOperation[]
}

export interface KrewPlugin {
  apiVersion?: string
  kind?: string
  metadata?: {name?: string}
  spec?: {
    version?: string
    homepage?: string
    shortDescription?: string
    description?: string
    caveats?: string
    platforms?: KrewPlatform[]
  }
}

// Semantic versioning 2.0.0 (semver.org), with the `v` krew requires in front.
const SEMVER =
  /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/
// Names Windows reserves for devices: krew refuses them as plugin names.
const WINDOWS_RESERVED = new Set([
  'CON',
  'PRN',
  'AUX',
  'NUL',
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].flatMap((n) => [`COM${n}`, `LPT${n}`]),
])
const OS_VALUES = ['linux', 'darwin', 'windows']
const ARCH_VALUES = ['amd64', 'arm64', '386', 'arm', 'ppc64le', 's390x']

/**
 * The problems krew would find in a Plugin manifest: what `krew install --manifest` checks before
 * installing (api version, kind, a safe name, a one-line short description, a `v`-prefixed semver,
 * per platform a uri, a lowercase hex sha256, a bin, complete file operations, a selector on os/arch
 * only) and what the krew-index checks add (no two platforms for the same os/arch, the bin is
 * among the installed files). Empty when the manifest is valid.
 */
export function lintKrewManifest(plugin: KrewPlugin): string[] {
  const problems: string[] = []
  const spec = plugin.spec ?? {}
  if (plugin.apiVersion !== KREW_API_VERSION)
    problems.push(`apiVersion must be ${KREW_API_VERSION}, not ${plugin.apiVersion}`)
  if (plugin.kind !== 'Plugin') problems.push(`kind must be Plugin, not ${plugin.kind}`)
  const name = plugin.metadata?.name ?? ''
  if (!/^[\w-]+$/.test(name)) problems.push(`metadata.name ${JSON.stringify(name)} must match ^[\\w-]+$`)
  if (WINDOWS_RESERVED.has(name.toUpperCase())) problems.push(`metadata.name ${name} is reserved on Windows`)
  if (!spec.version) problems.push('spec.version must be set')
  else if (!SEMVER.test(spec.version))
    problems.push(`spec.version ${spec.version} must be a semantic version with a leading v`)
  if (!spec.shortDescription) problems.push('spec.shortDescription must be set')
  else if (/[\r\n]/.test(spec.shortDescription)) problems.push('spec.shortDescription must be one line')
  for (const field of ['homepage', 'description', 'caveats'] as const) {
    if (!spec[field]?.trim()) problems.push(`spec.${field} must be set`)
  }
  if (spec.homepage && !/^https?:\/\//.test(spec.homepage))
    problems.push(`spec.homepage ${spec.homepage} must be a URL`)
  const platforms = spec.platforms ?? []
  if (platforms.length === 0) problems.push('spec.platforms must list at least one platform')
  const claimed = new Map<string, number>()
  platforms.forEach((platform, i) => {
    const at = `spec.platforms[${i}]`
    if (!platform.uri) problems.push(`${at}.uri must be set`)
    else if (!/\.(tar\.gz|zip)$/.test(platform.uri)) problems.push(`${at}.uri must name a .tar.gz or .zip archive`)
    if (!platform.sha256) problems.push(`${at}.sha256 must be set`)
    else if (!/^[a-f0-9]{64}$/.test(platform.sha256)) problems.push(`${at}.sha256 must match ^[a-f0-9]{64}$`)
    if (!platform.bin) problems.push(`${at}.bin must be set`)
    if (platform.files !== undefined) {
      if (platform.files.length === 0) problems.push(`${at}.files must be left out or non-empty`)
      platform.files.forEach((op, j) => {
        if (!op.from) problems.push(`${at}.files[${j}].from must be set`)
        if (!op.to) problems.push(`${at}.files[${j}].to must be set`)
      })
      const installed = platform.files.map((op) =>
        (op.to === '.' || op.to === './' ? op.from : op.to)?.replace(/^\.\//, ''),
      )
      if (platform.bin && !installed.includes(platform.bin.replace(/^\.\//, ''))) {
        problems.push(`${at}.bin ${platform.bin} is not among the installed files`)
      }
    }
    const selector = platform.selector
    const labels = selector?.matchLabels
    const expressions = selector?.matchExpressions
    if (!selector || (labels === undefined && !expressions?.length))
      problems.push(`${at}.selector must be set and not empty`)
    if (labels !== undefined && Object.keys(labels).length === 0) problems.push(`${at}.selector.matchLabels is empty`)
    if (expressions !== undefined && expressions.length === 0) problems.push(`${at}.selector.matchExpressions is empty`)
    for (const key of [...Object.keys(labels ?? {}), ...(expressions ?? []).map((e) => e.key)]) {
      if (key !== 'os' && key !== 'arch') problems.push(`${at}.selector key ${key} is not supported (only os, arch)`)
    }
    for (const os of OS_VALUES) {
      for (const arch of ARCH_VALUES) {
        if (!selects(platform, os, arch)) continue
        const other = claimed.get(`${os}/${arch}`)
        if (other !== undefined) problems.push(`${at} and spec.platforms[${other}] both match ${os}/${arch}`)
        else claimed.set(`${os}/${arch}`, i)
      }
    }
  })
  return problems
}

/** Whether a platform's selector matches os/arch (matchLabels and In/NotIn/Exists expressions). */
export function selects(platform: KrewPlatform, os: string, arch: string): boolean {
  const value: Record<string, string> = {os, arch}
  const labels = platform.selector?.matchLabels ?? {}
  if (!Object.entries(labels).every(([key, v]) => value[key] === v)) return false
  return (platform.selector?.matchExpressions ?? []).every((e) => {
    const v = value[e.key]
    if (e.operator === 'In') return v !== undefined && (e.values ?? []).includes(v)
    if (e.operator === 'NotIn') return v === undefined || !(e.values ?? []).includes(v)
    if (e.operator === 'Exists') return v !== undefined
    if (e.operator === 'DoesNotExist') return v === undefined
    return false
  })
}

/**
 * Puts one platform entry per built archive into the manifest (selector, uri of the release
 * asset, sha256, bin, files), keeping everything else and its comments as written.
 */
export function updateKrewManifest(text: string, shas: Record<string, string>): string {
  const doc = parseDocument(text)
  const spec = doc.get('spec') as YAMLMap
  const version = String(spec.get('version'))
  const homepage = String(spec.get('homepage')).replace(/\/$/, '')
  let platforms = spec.get('platforms')
  if (!isSeq(platforms)) {
    platforms = doc.createNode([])
    spec.set('platforms', platforms)
  }
  const seq = platforms as YAMLSeq
  for (const platform of PLATFORMS) {
    const sha = shas[`${platform.os}-${platform.arch}`]
    if (!sha) continue
    const entry = {
      selector: {matchLabels: {os: platform.os, arch: platform.arch}},
      uri: `${homepage}/releases/download/${version}/${archiveName(platform)}`,
      sha256: sha,
      bin: platform.bin,
      files: [
        {from: platform.bin, to: '.'},
        {from: 'LICENSE', to: '.'},
      ],
    }
    const index = seq.items.findIndex((item) => {
      const labels = isMap(item) ? (item.toJSON() as KrewPlatform).selector?.matchLabels : undefined
      return labels?.os === platform.os && labels?.arch === platform.arch
    })
    const node = doc.createNode(entry) as YAMLMap
    // Quoted, so no YAML reader takes a hex digest such as 1e5… for a number.
    const digest = new Scalar(sha)
    digest.type = Scalar.QUOTE_DOUBLE
    node.set('sha256', digest)
    if (index >= 0) seq.items[index] = node
    else seq.items.push(node)
  }
  return doc.toString({lineWidth: 0})
}

export function readKrewManifest(path: string): KrewPlugin {
  return parse(readFileSync(path, 'utf8')) as KrewPlugin
}

// `tsx scripts/krew-manifest.ts [FILE]`: lint a manifest from the command line.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2] ?? 'krew-manifest.yaml'
  const problems = lintKrewManifest(readKrewManifest(file))
  for (const p of problems) console.error(`${file}: ${p}`)
  process.exit(problems.length ? 1 : 0)
}
