// Where the e2e baseline (helpers/baseline.ts) lives for a run: in the sandbox's state dir. Its own module
// because global-setup runs outside the test workers and must not import the helpers that use vitest.
import path from 'node:path'

export const baselineFile = (stateDir: string) => path.join(stateDir, 'e2e-baseline.json')
