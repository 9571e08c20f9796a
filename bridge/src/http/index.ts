/** The door to the HTTP layer. */
export { createApp, BODY_LIMIT_BYTES } from './app';
export type { AppOptions } from './app';
export { LoadShedding } from './overload';
export { refusedRecord } from './observe';
export type { LoadSheddingOptions } from './overload';
