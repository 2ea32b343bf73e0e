/**
 * No cache: every needed expert is read from the checkpoint each time it is used and dropped right after (the
 * baseline that offloading caches are measured against). The cache keeps at most the expert in use.
 */
import type { EvictionPolicy } from './policy.js';
import { LruPolicy } from './lru.js';

export class NoCachePolicy extends LruPolicy implements EvictionPolicy {
  override readonly name: string = 'none';
  /** The cache evicts everything else before each load, and never counts a hit. */
  readonly retain = false;
}
