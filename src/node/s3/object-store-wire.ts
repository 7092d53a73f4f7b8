// What crosses between WorkerObjectStore and the worker thread that runs its S3ObjectStore: one
// request per ObjectStore call, one reply per request. Owns how values survive the trip: a
// StoreError keeps its kind and key (structured clone would drop both), a Buffer arrives as a
// Buffer, and large buffers are moved rather than copied.
import type { TransferListItem } from 'node:worker_threads';
import { StoreError, type ObjectStore, type StoreErrorKind } from './object-store.js';

/** The ObjectStore methods a worker serves (every method of the interface). */
export const STORE_METHODS = [
  'checkAccess',
  'head',
  'list',
  'getRange',
  'getTail',
  'put',
  'createMultipart',
  'uploadPart',
  'uploadPartCopy',
  'completeMultipart',
  'abortMultipart',
  'copy',
  'delete',
  'deleteMany',
] as const satisfies ReadonlyArray<keyof ObjectStore>;
export type StoreMethod = (typeof STORE_METHODS)[number];

export interface StoreRequest {
  id: number;
  method: StoreMethod;
  args: unknown[];
}

/** A buffer getRange returned, moved back for the worker's next read (see ObjectStore.recycle). */
export interface RecycleMessage {
  recycle: Uint8Array;
}

export interface WireError {
  /** Set for a StoreError. */
  kind?: StoreErrorKind;
  message: string;
  key?: string;
}

export type StoreReply = { id: number; value: unknown } | { id: number; error: WireError };

/**
 * A value ready for postMessage, with what to transfer: a Buffer travels as a Uint8Array that owns
 * exactly its bytes and is moved, not copied again (the sender's own memory is moved only when
 * `detachable` says the sender is done with it and the buffer spans all of it); a Map
 * (deleteMany's refusals) travels as its entries with errors encoded.
 */
export function toWire(value: unknown, transfer: TransferListItem[], detachable: boolean): unknown {
  if (value instanceof Uint8Array) {
    const whole = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
    const owned = detachable && whole ? value : new Uint8Array(value);
    transfer.push(owned.buffer as ArrayBuffer);
    return owned;
  }
  if (value instanceof Map) return { wireMap: [...value].map(([k, v]) => [k, v instanceof Error ? errorToWire(v) : v]) };
  return value;
}

/** The value toWire encoded, on the receiving side. */
export function fromWire(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, 'wireMap')) {
    const entries = (value as { wireMap: Array<[unknown, unknown]> }).wireMap;
    return new Map(entries.map(([k, v]) => [k, isWireError(v) ? errorFromWire(v) : v]));
  }
  return value;
}

export function errorToWire(error: unknown): WireError {
  if (error instanceof StoreError) {
    return { kind: error.kind, message: error.message, ...(error.key !== undefined ? { key: error.key } : {}) };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

export function errorFromWire(error: WireError): Error {
  return error.kind !== undefined ? new StoreError(error.kind, error.message, error.key) : new Error(error.message);
}

function isWireError(value: unknown): value is WireError {
  return typeof value === 'object' && value !== null && typeof (value as WireError).message === 'string';
}
