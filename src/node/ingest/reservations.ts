/**
 * Slots taken by messages that passed the check and are on their way to the store. A count
 * read from the store misses them: without the slots, many claims arriving together would
 * each see room under a cap and all be stored.
 */
export interface Reservations {
  /** Ids holding a slot under `group` (expired ones dropped). */
  ids: (group: string, now?: number) => Iterable<string>
  /** Holds a slot under `group` for `id` until it expires. */
  take: (group: string, id: string, now?: number) => void
}

export function createReservations (init: { ttlMs: number, maxGroups?: number }): Reservations {
  const groups = new Map<string, Map<string, number>>()
  const maxGroups = init.maxGroups ?? 10_000
  let nextSweep = 0

  function sweep (now: number): void {
    for (const [group, slots] of groups) {
      for (const [id, until] of slots) if (until <= now) slots.delete(id)
      if (slots.size === 0) groups.delete(group)
    }
    nextSweep = now + init.ttlMs
  }

  return {
    ids (group, now = Date.now()) {
      const slots = groups.get(group)
      if (slots === undefined) return []
      for (const [id, until] of slots) if (until <= now) slots.delete(id)
      return slots.keys()
    },
    take (group, id, now = Date.now()) {
      if (now >= nextSweep) sweep(now)
      let slots = groups.get(group)
      if (slots === undefined) {
        // Oldest group out first: its messages have been stored long since, or never will be.
        if (groups.size >= maxGroups) groups.delete(groups.keys().next().value as string)
        groups.set(group, slots = new Map())
      }
      slots.set(id, now + init.ttlMs)
    }
  }
}
