/** Task priorities: a higher number runs first. Someone waiting on a page outranks the schedule. */
export const PRIORITIES = { high: 30, normal: 20, low: 10 } as const;

export type PriorityName = keyof typeof PRIORITIES;

export const isPriorityName = (v: string): v is PriorityName => Object.hasOwn(PRIORITIES, v);

export function priorityName(n: number): PriorityName {
  return n >= PRIORITIES.high ? 'high' : n >= PRIORITIES.normal ? 'normal' : 'low';
}
