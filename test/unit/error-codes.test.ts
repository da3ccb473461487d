// The registry of error codes (src/error-codes.ts) against the code: every place in src/ that raises a
// PluginError with a literal kind must use a kind the registry lists for its code, and every code in the
// registry must be raised somewhere (a dead code in the table would document an error that never comes).
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import ts from 'typescript'
import {describe, expect, it} from 'vitest'
import {ERROR_CODES, type ErrorCode, type ErrorKind, kindsOf} from '../../src/error-codes.js'

const srcDir = join(import.meta.dirname, '../../src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** The kind each error factory raises, for calls whose kind is in the callee's name. */
const factoryKinds: Record<string, ErrorKind> = {
  usageError: 'usage',
  preconditionError: 'precondition',
  unexpectedError: 'unexpected',
  configError: 'precondition', // src/encryption/config/edit.ts
}

/** String literals an expression can evaluate to (a literal, or either arm of a conditional). */
function literals(node: ts.Expression): string[] {
  if (ts.isStringLiteralLike(node)) return [node.text]
  if (ts.isConditionalExpression(node)) return [...literals(node.whenTrue), ...literals(node.whenFalse)]
  if (ts.isParenthesizedExpression(node)) return literals(node.expression)
  return []
}

interface Use {
  code: string
  kind: string
  where: string
}

function collect(): {uses: Use[]; mentioned: Set<string>} {
  const uses: Use[] = []
  const mentioned = new Set<string>()
  for (const file of sourceFiles(srcDir)) {
    if (file.endsWith('error-codes.ts')) continue
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const where = (node: ts.Node) =>
      `${file.slice(srcDir.length + 1)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
    const visit = (node: ts.Node): void => {
      if (ts.isStringLiteralLike(node)) mentioned.add(node.text)
      if ((ts.isCallExpression(node) || ts.isNewExpression(node)) && node.arguments) {
        const callee = node.expression.getText(sf)
        const args = node.arguments
        let kinds: string[] = []
        let codeArg: ts.Expression | undefined
        if (ts.isNewExpression(node) && callee === 'PluginError' && args[0] && args[1]) {
          kinds = literals(args[0])
          codeArg = args[1]
        } else if (callee in factoryKinds && args[0]) {
          kinds = [factoryKinds[callee]!]
          codeArg = args[0]
        }
        for (const code of codeArg ? literals(codeArg) : [])
          for (const kind of kinds) uses.push({code, kind, where: where(node)})
      }
      ts.forEachChild(node, visit)
    }
    visit(sf)
  }
  return {uses, mentioned}
}

describe('the registry of error codes', () => {
  const {uses, mentioned} = collect()

  it('finds the raising sites (the scan itself works)', () => {
    expect(uses.length).toBeGreaterThan(150)
    expect(uses).toContainEqual(expect.objectContaining({code: 'INTERRUPTED', kind: 'partial'}))
    expect(uses).toContainEqual(expect.objectContaining({code: 'CONFIG_KEY_IN_USE', kind: 'precondition'}))
  })

  it('every literal code is raised with a kind the registry lists for it', () => {
    const wrong = uses
      .filter((u) => !(u.code in ERROR_CODES) || !kindsOf(u.code as ErrorCode).includes(u.kind as ErrorKind))
      .map((u) => `${u.where}: ${u.code} as ${u.kind} (registry: ${String(ERROR_CODES[u.code as ErrorCode])})`)
    expect(wrong).toEqual([])
  })

  it('every code in the registry is raised somewhere in src/', () => {
    const unused = Object.keys(ERROR_CODES).filter((code) => !mentioned.has(code))
    expect(unused).toEqual([])
  })

  it('codes are SCREAMING_SNAKE_CASE and sorted, so a duplicate stands out', () => {
    const codes = Object.keys(ERROR_CODES)
    for (const code of codes) expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/)
    expect(codes).toEqual([...codes].sort())
  })
})
