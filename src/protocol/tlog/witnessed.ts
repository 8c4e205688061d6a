/**
 * Whether a message is in a log checkpoint that enough trusted witnesses cosigned: the
 * check `verify` and `status` make when a trust policy has a `witnesses` section. It needs
 * only the inclusion answer (as `/tlog/inclusion` serves it) and the policy.
 */
import type { KeyObject } from 'node:crypto'
import { keyIdOf } from '../keys.js'
import { parseCheckpoint } from './checkpoint.js'
import { checkCosignature } from './cosignature.js'
import { entryLeafHash, keyIdOfName, witnessName, type EntryKind } from './entry.js'
import { ALG_ED25519, openNote, parseVerifierKey, type ParsedNote } from './note.js'
import { verifyInclusion } from './proof.js'

export interface InclusionEvidence {
  id: string
  kind: EntryKind
  vkey: string
  index: number
  size: number
  proof: string[]
  checkpoint: string
}

export interface WitnessRequirement {
  threshold: number
  /** Witness key by key id; `cosigner`, the name its cosignatures carry, is a node witness's name when absent. */
  keys: ReadonlyMap<string, { name: string, publicKey: KeyObject, cosigner?: string }>
}

export type WitnessedResult = { ok: true, origin: string, cosigners: string[] } | { ok: false, reason: string }

/** The key ids among `witnesses` (by key id) whose valid cosignature the opened note carries. */
export function cosignersOf (note: ParsedNote, witnesses: ReadonlyMap<string, { publicKey: KeyObject, cosigner?: string }>): string[] {
  const out: string[] = []
  for (const [keyId, w] of witnesses) {
    const name = w.cosigner ?? witnessName(keyId)
    if (note.signatures.some(s => checkCosignature(note.text, s, name, w.publicKey) !== undefined)) out.push(keyId)
  }
  return out
}

/** Checks one message's inclusion evidence against the policy's witnesses. Never throws. */
export function checkWitnessed (kind: EntryKind, id: string, evidence: InclusionEvidence | undefined, req: WitnessRequirement): WitnessedResult {
  if (evidence === undefined) return { ok: false, reason: 'no inclusion proof' }
  try {
    if (evidence.id !== id || evidence.kind !== kind) return { ok: false, reason: 'the inclusion proof is for another message' }
    const v = parseVerifierKey(evidence.vkey)
    if (v.alg !== ALG_ED25519 || keyIdOfName(v.name) !== keyIdOf(v.publicKey)) return { ok: false, reason: 'the log key is not named after its key id' }
    const note = openNote(evidence.checkpoint, v.name, v.publicKey)
    const cp = parseCheckpoint(note.text)
    if (cp.origin !== v.name || cp.size !== evidence.size) return { ok: false, reason: 'the checkpoint does not match the proof' }
    verifyInclusion(evidence.index, cp.size, entryLeafHash(kind, id), evidence.proof.map(p => Buffer.from(p, 'base64')), cp.rootHash)
    const cosigners = cosignersOf(note, req.keys).map(keyId => req.keys.get(keyId)?.name ?? keyId)
    if (cosigners.length < req.threshold) {
      return { ok: false, reason: `checkpoint ${cp.size} of ${cp.origin.slice(-16)} is cosigned by ${cosigners.length} of the policy's witnesses, ${req.threshold} needed` }
    }
    return { ok: true, origin: cp.origin, cosigners }
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  }
}

const INCLUSION_LINE = /^\s*\{\s*"tlogInclusion"\s*:/

/**
 * A bundle may carry, besides its envelope lines, lines `{"tlogInclusion": <evidence>}`
 * (the answer of `/tlog/inclusion`). Returns the bundle with those lines blanked (so line
 * numbers stay right), as text and split at `\n`, and the evidence by message id; a
 * malformed evidence line is reported. A bundle without such lines comes back as it came:
 * joining its lines again would copy all of it (hundreds of MB) for nothing.
 */
export function takeInclusionLines (text: string): { text: string, lines: string[], evidence: Map<string, InclusionEvidence>, errors: Array<{ line: number, reason: string }> } {
  const evidence = new Map<string, InclusionEvidence>()
  const errors: Array<{ line: number, reason: string }> = []
  const lines = text.split('\n')
  let taken = false
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    // An envelope line starts `{"p` or `{"s`: no need to run the pattern on it.
    if ((l.charCodeAt(0) === 0x7b && l.charCodeAt(1) === 0x22 && l.charCodeAt(2) !== 0x74) || !INCLUSION_LINE.test(l)) continue
    try {
      const e = (JSON.parse(l) as { tlogInclusion?: unknown }).tlogInclusion as InclusionEvidence
      if (typeof e?.id !== 'string' || (e.kind !== 'claim' && e.kind !== 'announcement') || typeof e.vkey !== 'string' || !Number.isSafeInteger(e.index) ||
        !Number.isSafeInteger(e.size) || !Array.isArray(e.proof) || e.proof.length > 64 || !e.proof.every(p => typeof p === 'string') || typeof e.checkpoint !== 'string') {
        throw new Error('not {id, kind, vkey, index, size, proof, checkpoint}')
      }
      evidence.set(e.id, e)
    } catch (err) {
      errors.push({ line: i + 1, reason: (err as Error).message })
    }
    lines[i] = ''
    taken = true
  }
  return { text: taken ? lines.join('\n') : text, lines, evidence, errors }
}
