import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources, so `pnpm test` needs no build first.
    alias: [
      { find: /^@verdict\/core\/internal$/, replacement: src('./packages/core/src/node/internal.ts') },
      { find: /^@verdict\/core\/internal\/portable$/, replacement: src('./packages/core/src/internal.ts') },
      { find: /^@verdict\/core\/testing$/, replacement: src('./packages/core/src/testing/index.ts') },
      { find: /^@verdict\/mcp\/testing$/, replacement: src('./packages/mcp/src/testing/mcp-peers.ts') },
      { find: /^@verdict\/core\/middleware$/, replacement: src('./packages/core/src/node/middleware.ts') },
      // In Node, core's entries carry the host functions of @verdict/node (the "node" condition).
      { find: /^@verdict\/core$/, replacement: src('./packages/core/src/node/index.ts') },
      { find: /^@verdict\/([a-z-]+)$/, replacement: src('./packages/$1/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    coverage: {
      provider: 'v8',
      include: ['packages/*/src/**/*.ts'],
      exclude: ['**/*.test.ts', '**/testing/**'],
      reporter: ['text-summary', 'text'],
      thresholds: {
        'packages/core/src/**': { lines: 90 },
      },
    },
  },
})
