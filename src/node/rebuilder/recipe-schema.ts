/**
 * JSON Schema of a recipe (draft-07, as ajv's default). Every string and array is bounded:
 * recipes come from repositories and announcements, not only from this package.
 */
const name = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }
const path = { type: 'string', minLength: 1, maxLength: 512 }
const stringMap = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' },
  additionalProperties: { type: 'string', maxLength: 4096 }
}

export const recipeSchema = {
  type: 'object',
  required: ['name', 'variants'],
  additionalProperties: false,
  properties: {
    name,
    // The published targets are read from the commit's own workflows (workflow-targets.ts).
    targetsFrom: { enum: ['workflows'] },
    variants: {
      type: 'array',
      minItems: 1,
      maxItems: 128,
      items: {
        type: 'object',
        required: ['name', 'platforms', 'build'],
        additionalProperties: false,
        properties: {
          name,
          platforms: {
            type: 'array',
            minItems: 1,
            maxItems: 16,
            items: { type: 'string', pattern: '^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$', maxLength: 64 }
          },
          image: { type: 'string', pattern: '^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$', maxLength: 255 },
          prepare: {
            type: 'array',
            maxItems: 16,
            items: {
              type: 'object',
              required: ['image', 'command'],
              additionalProperties: false,
              properties: {
                image: { type: 'string', pattern: '^[^\\s@]+@sha256:[a-f0-9]{64}$', maxLength: 512 },
                command: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', maxLength: 4096 } },
                env: stringMap,
                stdout: path
              }
            }
          },
          build: {
            type: 'object',
            required: ['context', 'dockerfile'],
            additionalProperties: false,
            properties: {
              context: path,
              dockerfile: path,
              target: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' },
              args: stringMap
            }
          },
          requires: {
            type: 'object',
            additionalProperties: false,
            properties: { nvidia: { type: 'boolean' } }
          },
          from: { ...stringMap, additionalProperties: name },
          smoke: {
            type: 'object',
            required: ['command'],
            additionalProperties: false,
            properties: {
              command: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', maxLength: 1024 } },
              gpu: { type: 'boolean' },
              timeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600 }
            }
          }
        }
      }
    }
  }
} as const
