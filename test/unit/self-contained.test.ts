// The repository is self-contained: tests read only files inside it, and comments cite only our own
// docs (docs/architecture.md, docs/kubernetes-behaviour.md), never notes kept outside the repository.
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {describe, expect, it} from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const self = fileURLToPath(import.meta.url)

// Do not add to this list.
const leaving: RegExp[] = []

const TEXT = /\.(ts|js|mjs|cjs|json|ya?ml|md|sh|txt)$/
function files(dir: string): string[] {
  return readdirSync(path.join(root, dir)).flatMap((name) => {
    const rel = `${dir}/${name}`
    if (name === 'node_modules' || name.startsWith('.')) return []
    return statSync(path.join(root, rel)).isDirectory() ? files(rel) : TEXT.test(name) ? [rel] : []
  })
}
const read = (rel: string) => readFileSync(path.join(root, rel), 'utf8')
const ours = (dirs: string[]) =>
  dirs.flatMap(files).filter((rel) => path.join(root, rel) !== self && !leaving.some((re) => re.test(rel)))

function hits(rels: string[], find: (text: string) => string[]): string[] {
  return rels.flatMap((rel) =>
    read(rel)
      .split('\n')
      .flatMap((line, i) => find(line).map((what) => `${rel}:${i + 1}: ${what}`)),
  )
}

describe('the repository is self-contained', () => {
  it('no test, script or bench names a path outside the repository', () => {
    const outside = /\/work\/|\.\.\/shared\b|\bshared\/(vectors|reference)\b/g
    expect(hits(ours(['test', 'scripts', 'bench']), (line) => line.match(outside) ?? [])).toEqual([])
  })

  it('no relative URL in a test, script or bench climbs out of the repository', () => {
    const url = /new URL\(\s*(['"`])([^'"`$]*)\1\s*,\s*import\.meta\.url/g
    const escapes = (rel: string) => (line: string) =>
      [...line.matchAll(url)]
        .map((m) => m[2] ?? '')
        .filter((target) =>
          path.relative(root, path.resolve(path.dirname(path.join(root, rel)), target)).startsWith('..'),
        )
    const rels = ours(['test', 'scripts', 'bench'])
    expect(rels.flatMap((rel) => hits([rel], escapes(rel)))).toEqual([])
  })

  it('no comment cites DESIGN.md or the old spec; they cite docs/ instead', () => {
    const stale = /DESIGN\.md|\bspec §|wire-and-config-spec|prior-art\.md|reference\/encrypt-data-at-rest/g
    const code = ours(['src', 'test', 'scripts', 'bench']).filter((rel) => !rel.endsWith('.json')) // data files are copied unchanged
    expect(hits(code, (line) => line.match(stale) ?? [])).toEqual([])
  })

  it('the docs those comments cite exist', () => {
    for (const doc of ['docs/architecture.md', 'docs/kubernetes-behaviour.md'])
      expect(statSync(path.join(root, doc)).isFile()).toBe(true)
  })
})
