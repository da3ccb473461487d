import {defineConfig} from 'vitest/config'

// Unit tests run in parallel; the crosscheck starts real kube-apiservers but no sandbox; end-to-end tests share one sandbox (see test/e2e/global-setup.ts)
// and run one file at a time, because they mutate the same cluster.
export default defineConfig({
  test: {
    projects: [
      {test: {name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000, hookTimeout: 60_000}},
      // `config validate` against the real kube-apiserver of each release the sandbox builds; builds
      // them first when they are not cached (about 20 min each on 2 cores), hence the hook timeout.
      {
        test: {
          name: 'crosscheck',
          include: ['test/crosscheck/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60 * 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          // each file starts from the sandbox as the first file found it (test/e2e/helpers/baseline.ts)
          setupFiles: ['test/e2e/setup-file.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
