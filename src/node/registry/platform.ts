import { ValidationError } from '../../protocol/errors.js'
import { ATTESTATION_MANIFEST, REFERENCE_TYPE_ANNOTATION } from './media-types.js'

/** An OCI platform as written in an index entry. */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

/** One entry of an image index or manifest list, as far as platform choice needs it. */
export interface IndexEntry {
  mediaType?: string
  digest: string
  size?: number
  platform?: Platform
  annotations?: Record<string, string>
}

/** Parses `os/arch[/variant]` (`linux/arm64`, `linux/arm/v7`). */
export function parsePlatform (s: string, field = 'platform'): Platform {
  const parts = s.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some(p => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new ValidationError(field, `${JSON.stringify(s)} is not os/arch[/variant]`)
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined]
  return variant != null ? { os, architecture, variant } : { os, architecture }
}

/** Variants that are the default for their architecture, so `linux/arm64` and `linux/arm64/v8` match. */
function normalVariant (architecture: string, variant: string | undefined): string {
  if (variant == null || variant === '') return ''
  if (architecture === 'arm64' && variant === 'v8') return ''
  if (architecture === 'amd64' && variant === 'v1') return ''
  return variant
}

export function formatPlatform (p: Platform): string {
  const variant = normalVariant(p.architecture, p.variant)
  return `${p.os}/${p.architecture}${variant !== '' ? `/${variant}` : ''}`
}

/**
 * Whether an entry holds attestations rather than an image: BuildKit marks them with an
 * annotation and the platform `unknown/unknown`.
 */
export function isAttestation (entry: IndexEntry): boolean {
  if (entry.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_MANIFEST) return true
  return entry.platform?.os === 'unknown' && entry.platform.architecture === 'unknown'
}

/** Image entries (attestations dropped) with their platform. */
export function imageEntries (entries: IndexEntry[]): Array<IndexEntry & { platform: Platform }> {
  return entries.filter((e): e is IndexEntry & { platform: Platform } => e.platform != null && !isAttestation(e))
}

export function platformMatches (want: Platform, have: Platform): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false
  // `linux/arm` without a variant accepts any arm variant; with one, it must agree.
  if (want.variant == null) return true
  return normalVariant(want.architecture, want.variant) === normalVariant(have.architecture, have.variant)
}

/**
 * The entry for `want`, or undefined. Among several matches (only possible when `want` has
 * no variant) the one without a variant or with the default variant wins, then the first.
 */
export function selectPlatform (entries: IndexEntry[], want: Platform): (IndexEntry & { platform: Platform }) | undefined {
  const matches = imageEntries(entries).filter(e => platformMatches(want, e.platform))
  return matches.find(e => normalVariant(e.platform.architecture, e.platform.variant) === '') ?? matches[0]
}
