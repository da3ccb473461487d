// A build step whose output should be the same every time but, rarely, is not (scripts/package.ts:
// the V8 code cache). Run it until two outputs agree and take that one.

/** What agreedOutput found: the output two runs agreed on, or every output when none did. */
export type Agreement = {agreed: Buffer; runs: number; odd: number} | {agreed: undefined; outputs: Buffer[]}

/**
 * Calls `make(run)` (run = 1, 2, …) until an output equals an earlier one, at most `maxRuns` times.
 * `odd` counts the outputs that differed from the agreed one.
 */
export function agreedOutput(make: (run: number) => Buffer, maxRuns: number): Agreement {
  const outputs: Buffer[] = []
  for (let run = 1; run <= maxRuns; run++) {
    const output = make(run)
    if (outputs.some((earlier) => earlier.equals(output))) return {agreed: output, runs: run, odd: run - 2}
    outputs.push(output)
  }
  return {agreed: undefined, outputs}
}
