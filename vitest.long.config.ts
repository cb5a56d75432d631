import { defineConfig } from 'vitest/config';

// `npm run test:long`: the long seeded runs (LONG=1 raises run counts in the regular suites too).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    pool: 'forks',
  },
});
