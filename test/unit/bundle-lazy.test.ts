import {describe, expect, it} from 'vitest'

import {type LazyImports, recordLazyImports, vendorEntry} from '../../scripts/bundle.js'

describe('lazy libraries: a vendor file holds only the exports our code takes', () => {
  it('records the names destructured from each await import, across files', () => {
    const lazy: LazyImports = new Map()
    recordLazyImports('const { Etcd3 } = await import(\'etcd3\');\nconst {Range} = await import("etcd3")', lazy)
    recordLazyImports("const {default: ora} = await import('ora')", lazy)
    recordLazyImports("const {KubeConfig} = await import('@kubernetes/client-node')", lazy)
    expect(Object.fromEntries([...lazy].map(([k, v]) => [k, v === 'all' ? v : [...v].sort()]))).toEqual({
      etcd3: ['Etcd3', 'Range'],
      ora: ['default'],
      '@kubernetes/client-node': ['KubeConfig'],
    })
  })

  it('takes the whole module once any import is not a plain destructuring (a namespace, a rest element)', () => {
    const lazy: LazyImports = new Map()
    recordLazyImports("const {KubeConfig} = await import('@kubernetes/client-node')", lazy)
    recordLazyImports("const k8s = await import('@kubernetes/client-node')", lazy)
    recordLazyImports("const {Etcd3, ...rest} = await import('etcd3')", lazy)
    expect(lazy.get('@kubernetes/client-node')).toBe('all')
    expect(lazy.get('etcd3')).toBe('all')
    recordLazyImports("const {Range} = await import('etcd3')", lazy)
    expect(lazy.get('etcd3')).toBe('all')
  })

  it('leaves out node built-ins and relative imports', () => {
    const lazy: LazyImports = new Map()
    recordLazyImports("const {readFile} = await import('node:fs')\nconst {x} = await import('./local.js')", lazy)
    expect(lazy.size).toBe(0)
  })

  it('the entry re-exports the names taken, or requires the whole module', () => {
    expect(vendorEntry('etcd3', new Set(['Range', 'Etcd3']))).toBe('export {Etcd3, Range} from "etcd3"')
    expect(vendorEntry('@kubernetes/client-node', 'all')).toBe('module.exports = require("@kubernetes/client-node")')
  })
})
