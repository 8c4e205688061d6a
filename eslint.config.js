import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// The rebuild engine, OCI archives and image comparison each have one door: their index.
// Their own files import each other directly.
const engineDoor = { regex: '(^|/)(rebuilder|oci|compare)/(?!index\\.js$)[^/]+$', message: 'use the rebuild engine, OCI archives and image comparison through their index.ts (src/node/rebuilder, src/node/oci, src/node/compare), not their internals' }

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-artifacts/**', 'src/node/http/dashboard/**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off'
    }
  },
  {
    // Layers: the CLI sits on top; the node and the audit never reach up into it.
    files: ['src/node/**/*.ts', 'src/audit/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)cli/', message: 'src/node and src/audit must not import from src/cli; shared facts live in src/tool.ts' }, engineDoor] }]
    }
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [engineDoor] }]
    }
  },
  {
    // The protocol is pure: no I/O, and nothing of the layers above it.
    files: ['src/protocol/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./', message: 'src/protocol imports only its own modules and libraries' }] }]
    }
  },
  {
    // Its sub-folders (tlog) may reach the protocol's own modules one level up, nothing beyond.
    files: ['src/protocol/*/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./\\.\\./', message: 'src/protocol imports only its own modules and libraries' }] }]
    }
  }
)
