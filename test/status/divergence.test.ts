import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { describeDivergence, firstDivergence } from '../../src/protocol/divergence.js'
import type { ImageResult } from '../../src/protocol/types.js'
import { digestOf } from '../http/fixtures.js'

function image (layers: string[], extra: Partial<ImageResult> = {}): ImageResult {
  return {
    indexDigest: digestOf(`index ${layers.join()}`),
    manifestDigest: digestOf(`manifest ${layers.join()}`),
    configDigest: digestOf(`config ${layers.join()}`),
    diffIds: layers.map(l => digestOf(l)),
    layerSteps: layers.map(l => `RUN build ${l}`),
    ...extra
  }
}

describe('firstDivergence', () => {
  it('is undefined for the same image', () => {
    const a = image(['a', 'b'])
    expect(firstDivergence(a, { ...a })).toBeUndefined()
  })

  it('names the first differing layer, both diffIDs and the step that made it', () => {
    const d = firstDivergence(image(['a', 'b', 'c']), image(['a', 'x', 'y']))
    expect(d).toEqual({ kind: 'layer', index: 1, expected: digestOf('b'), actual: digestOf('x'), step: 'RUN build b', actualStep: 'RUN build x' })
    expect(describeDivergence(d!)).toBe(`layer 1 (RUN build b): ${digestOf('b').slice(0, 19)} vs ${digestOf('x').slice(0, 19)}`)
  })

  it('takes the step from the candidate when the reference does not record steps', () => {
    const ref = image(['a', 'b'])
    delete ref.layerSteps
    expect(firstDivergence(ref, image(['a', 'x']))).toMatchObject({ index: 1, step: 'RUN build x' })
  })

  it('reports extra or missing layers after a common prefix', () => {
    expect(firstDivergence(image(['a']), image(['a', 'b']))).toEqual({ kind: 'layer-count', index: 1, actual: digestOf('b'), step: 'RUN build b' })
    expect(firstDivergence(image(['a', 'b']), image(['a']))).toEqual({ kind: 'layer-count', index: 1, expected: digestOf('b'), step: 'RUN build b' })
  })

  it('falls back to config, manifest and index when every layer matches', () => {
    const a = image(['a'])
    expect(firstDivergence(a, { ...a, configDigest: digestOf('other') })).toEqual({ kind: 'config' })
    expect(firstDivergence(a, { ...a, manifestDigest: digestOf('other') })).toEqual({ kind: 'manifest' })
    expect(firstDivergence(a, { ...a, indexDigest: digestOf('other') })).toEqual({ kind: 'index' })
  })

  it('finds the first index where the layer lists differ, for any lists', () => {
    const layers = fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 8 })
    fc.assert(fc.property(layers, layers, (x, y) => {
      const d = firstDivergence(image(x), image(y))
      let i = 0
      while (i < x.length && i < y.length && x[i] === y[i]) i++
      if (i === x.length && i === y.length) {
        // Same layers: the rest of the image is derived from the same list here, so no difference.
        expect(d).toBeUndefined()
      } else {
        expect(d?.index).toBe(i)
        expect(d?.kind).toBe(i < x.length && i < y.length ? 'layer' : 'layer-count')
      }
    }))
  })
})
