import {execFileSync, spawnSync} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {complete, type CompletionCommand, DIRECTIVE, formatCompletion} from '../../src/cli/completion.js'

const output = {name: 'output', char: 'o', type: 'option', options: ['table', 'wide', 'json', 'yaml']} as const
const tree: CompletionCommand[] = [
  {id: 'version', flags: {output}},
  {id: 'config:validate', flags: {output, 'target-version': {name: 'target-version', type: 'option'}}},
  {
    id: 'config:generate',
    flags: {output, force: {name: 'force', type: 'boolean'}, secret: {name: 'secret', type: 'boolean', hidden: true}},
  },
  {id: 'status', flags: {output}},
  {id: 'debug', hidden: true, flags: {}},
  {id: '__complete', flags: {}},
]

describe('complete', () => {
  const candidates = (...words: string[]) => complete(tree, words).candidates

  it('offers the top-level commands and topics, not hidden ones', () => {
    expect(candidates('')).toEqual(['config', 'status', 'version'])
    expect(candidates('s')).toEqual(['status'])
    expect(candidates('x')).toEqual([])
  })

  it('offers the commands of a topic', () => {
    expect(candidates('config', '')).toEqual(['generate', 'validate'])
    expect(candidates('config', 'v')).toEqual(['validate'])
  })

  it('offers a command’s flags, not hidden ones', () => {
    expect(candidates('config', 'generate', '--')).toEqual(['--force', '--output'])
    expect(candidates('config', 'generate', '-')).toEqual(['--force', '--output', '-o'])
  })

  it('offers the choices of an option flag, after a space or an =', () => {
    expect(candidates('status', '-o', '')).toEqual(['table', 'wide', 'json', 'yaml'])
    expect(candidates('status', '--output', 'j')).toEqual(['json'])
    expect(candidates('status', '--output=y')).toEqual(['--output=yaml'])
  })

  it('leaves file names to the shell for arguments and free-form flag values', () => {
    expect(complete(tree, ['config', 'validate', 'enc']).directive).toBe(DIRECTIVE.default)
    expect(complete(tree, ['config', 'validate', '--target-version', '']).directive).toBe(DIRECTIVE.default)
    expect(complete(tree, ['config', 'validate', 'file.yaml', '-o', '']).candidates).toContain('json')
  })

  it('prints cobra’s format: candidates, then the directive', () => {
    expect(formatCompletion({candidates: ['a', 'b'], directive: 4})).toBe('a\nb\n:4\n')
  })
})

describe('the completion scripts', () => {
  const binDir = mkdtempSync(join(tmpdir(), 'completion-'))
  const run = new URL('../../bin/run.js', import.meta.url).pathname
  const env = {...process.env, PATH: `${binDir}:${process.env.PATH}`}
  const hasZsh = spawnSync('zsh', ['--version']).status === 0

  beforeAll(() => {
    // The CLI on PATH under its plugin name, as an install puts it there.
    writeFileSync(join(binDir, 'kubectl-encryption'), `#!/bin/sh\nexec "${process.execPath}" "${run}" "$@"\n`)
    chmodSync(join(binDir, 'kubectl-encryption'), 0o755)
  })
  afterAll(() => rmSync(binDir, {recursive: true, force: true}))

  const script = (shell: string) => execFileSync('kubectl-encryption', ['completion', shell], {env, encoding: 'utf8'})

  it('bash: the script is valid and completes command names and flag values', () => {
    const bash = script('bash')
    expect(spawnSync('bash', ['-n'], {input: bash}).status).toBe(0)
    const probe =
      `source /dev/stdin <<'EOF'\n${bash}\nEOF\n` +
      `COMP_WORDS=(kubectl-encryption vers); COMP_CWORD=1; _kubectl_encryption; echo "1:\${COMPREPLY[*]}"\n` +
      `COMP_WORDS=(kubectl-encryption version -o j); COMP_CWORD=3; _kubectl_encryption; echo "2:\${COMPREPLY[*]}"\n`
    const out = execFileSync('bash', ['-c', probe], {env, encoding: 'utf8'})
    expect(out).toContain('1:version\n')
    expect(out).toContain('2:json\n')
  })

  it.skipIf(!hasZsh)('zsh: the script is valid and completes command names', () => {
    const zsh = script('zsh')
    expect(spawnSync('zsh', ['-n'], {input: zsh}).status).toBe(0)
    // Without the completion system loaded: compdef is a no-op, compadd prints what it is given.
    const probe =
      `compdef() { :; }\ncompadd() { shift; print -r -- "added:$*"; }\n${zsh}\n` +
      `words=(kubectl-encryption comp); CURRENT=2; _kubectl_encryption\n`
    const out = execFileSync('zsh', ['-f', '-c', probe], {env, encoding: 'utf8'})
    expect(out).toContain('added:completion\n')
  })

  it('refuses a shell it does not know with a usage error', () => {
    const result = spawnSync('kubectl-encryption', ['completion', 'fish'], {env, encoding: 'utf8'})
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain('Expected fish to be one of: bash, zsh')
  })
})
