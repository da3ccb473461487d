import {describe, expect, it} from 'vitest'

import {EXIT, PluginError} from '../../src/errors.js'
import {parseKubectlDuration} from '../../src/flags/kube.js'
import {formatTable, renderResult} from '../../src/output/render.js'

describe('renderers', () => {
  it('aligns kubectl-style tables', () => {
    expect(
      formatTable(
        ['name', 'provider'],
        [
          ['secrets', 'aescbc'],
          ['configmaps.x', 'identity'],
        ],
      ),
    ).toBe('NAME           PROVIDER\nsecrets        aescbc\nconfigmaps.x   identity')
  })
  it('renders one document per run in json and yaml', () => {
    expect(JSON.parse(renderResult({a: 1}, 'json', () => 'x'))).toEqual({a: 1})
    expect(renderResult({a: 1}, 'yaml', () => 'x')).toBe('a: 1\n')
    expect(renderResult({a: 1}, 'table', () => 'x')).toBe('x\n')
  })
})

describe('error table', () => {
  it('maps kinds to the documented exit codes', () => {
    expect(new PluginError('precondition', 'CONFIG_INVALID', 'm').exitCode).toBe(3)
    expect(new PluginError('rollbackFailed', 'NODE_ROLLBACK_FAILED', 'm').exitCode).toBe(7)
    expect(EXIT.checkFailed).toBe(5)
  })
})

describe('kubectl durations', () => {
  it('parses kubectl --request-timeout values', () => {
    expect(parseKubectlDuration('0')).toBe(0)
    expect(parseKubectlDuration('30')).toBe(30_000)
    expect(parseKubectlDuration('1m')).toBe(60_000)
    expect(parseKubectlDuration('250ms')).toBe(250)
    expect(() => parseKubectlDuration('soon')).toThrow(/invalid duration/)
  })
})
